import { describe, expect, it } from 'vitest'

import { canUse } from '@/nav/menu'
import {
  bodyFromForm, describeBody, formFromTemplates, type Options, purposesOff, type Template,
} from '@/views/setup/parts/messageTemplates'

const OPTIONS: Options = {
  app: { id: 7, name: '演示小程序', channel: 'wechat', app_id: 'wxdemo', clinic_code: 'demo' },
  default_page: 'pages/bills/index',
  purposes: [
    { purpose: 'bill_created', sources: ['title', 'amount', 'time', 'clinic', 'card_no'],
      usual_sources: ['title', 'amount', 'time', 'clinic'] },
    { purpose: 'payment_succeeded', sources: ['order_no', 'amount', 'time', 'title', 'clinic'],
      usual_sources: ['order_no', 'amount'] },
  ],
}

const BILL: Template = {
  purpose: 'bill_created', template_id: 'TPL-BILL', fields: { thing1: 'title', amount2: 'amount' },
  page: 'pages/bills/index', updated_at: '2026-12-06T00:00:00+00:00', updated_by: 'admin',
}

describe('the message templates form', () => {
  it('shows each purpose the API offers: saved ones as they are, the others off with their usual facts', () => {
    const forms = formFromTemplates(OPTIONS, [BILL])

    expect(forms.map((f) => [f.purpose, f.enabled, f.template_id])).toEqual([
      ['bill_created', true, 'TPL-BILL'], ['payment_succeeded', false, '']])
    expect(forms[0].rows).toEqual([{ keyword: 'thing1', source: 'title' }, { keyword: 'amount2', source: 'amount' }])
    expect(forms[0].page).toBe('pages/bills/index')
    expect(forms[1].page).toBe('pages/bills/index')  // the API's default until changed
    expect(forms[0].sources).toContain('card_no')
    expect(forms[1].rows).toEqual([{ keyword: '', source: 'order_no' }, { keyword: '', source: 'amount' }])
  })

  it('sends the enabled purposes with their filled rows, trimmed, an emptied page as the default', () => {
    const forms = formFromTemplates(OPTIONS, [BILL])
    forms[0].template_id = '  TPL-NEW '
    forms[0].page = ' '
    forms[0].rows.push({ keyword: ' time3 ', source: 'time' }, { keyword: '', source: '' })
    forms[1].enabled = true
    forms[1].template_id = 'TPL-PAY'
    forms[1].page = 'pages/orders/detail'
    forms[1].rows = [{ keyword: 'character_string1', source: 'order_no' }]

    const { body, problems } = bodyFromForm(forms, 'pages/default')

    expect(problems).toEqual([])
    expect(body).toEqual([
      { purpose: 'bill_created', template_id: 'TPL-NEW', fields: { thing1: 'title', amount2: 'amount', time3: 'time' },
        page: 'pages/default' },
      { purpose: 'payment_succeeded', template_id: 'TPL-PAY', fields: { character_string1: 'order_no' },
        page: 'pages/orders/detail' },
    ])
  })

  it('catches what the body would lose: a keyword twice, a keyword without a fact, a fact without a keyword', () => {
    const forms = formFromTemplates(OPTIONS, [BILL])
    forms[0].rows.push({ keyword: 'thing1', source: 'clinic' }, { keyword: 'thing5', source: '' })
    forms[1].enabled = true  // its usual facts, no keywords yet

    const { problems } = bodyFromForm(forms, 'pages/bills/index', (p) => `<${p}>`)

    expect(problems).toEqual([
      '<bill_created>：关键词 thing1 填了两次', '<bill_created>：关键词 thing5 没有选择显示的内容',
      '<payment_succeeded>：有一行选了内容但没有填关键词', '<payment_succeeded>：有一行选了内容但没有填关键词'])
  })

  it('lists a saved template\'s keywords in the template\'s order, whatever order the API\'s object has', () => {
    const forms = formFromTemplates(OPTIONS, [{ ...BILL, fields: { amount2: 'amount', thing10: 'card_no', thing1: 'title',
      time3: 'time' } }])
    expect(forms[0].rows.map((r) => r.keyword)).toEqual(['thing1', 'amount2', 'time3', 'thing10'])
  })

  it('leaves to the API what only it knows (a keyword it does not take)', () => {
    const forms = formFromTemplates(OPTIONS, [{ ...BILL, fields: { 'Thing 1': 'title' } }])
    const { body, problems } = bodyFromForm(forms, 'pages/bills/index')
    expect(problems).toEqual([])
    expect(body[0].fields).toEqual({ 'Thing 1': 'title' })
  })

  it('says that saving nothing turns pushing off, and which purposes will not be pushed', () => {
    const forms = formFromTemplates(OPTIONS, [BILL])
    forms[0].enabled = false
    const { body } = bodyFromForm(forms, 'pages/bills/index')

    expect(body).toEqual([])
    expect(describeBody(body).join()).toContain('关闭此应用的消息推送')
    expect(purposesOff(forms, body)).toEqual(['bill_created', 'payment_succeeded'])
    expect(describeBody(bodyFromForm(formFromTemplates(OPTIONS, [BILL]), 'pages/bills/index').body, String, (f) => f.toUpperCase()))
      .toEqual(['bill_created：模板 TPL-BILL，thing1=TITLE、amount2=AMOUNT'])
  })

  it('is for operators and admins, and is not in anyone\'s menu', () => {
    expect(canUse('operator', 'message-templates') && canUse('admin', 'message-templates')).toBe(true)
    expect(canUse('staff', 'message-templates') || canUse('finance', 'message-templates')).toBe(false)
  })
})
