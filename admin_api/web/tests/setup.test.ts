import { describe, expect, it } from 'vitest'

import { matchesText, pageLocally } from '@/composables/localPage'
import { fenToYuanInput, yuanToFen } from '@/format/money'
import { draftOf, emptyItem, itemBody } from '@/views/admin/parts/itemForm'
import {
  addDays, isoWeekday, mondayOf, releaseFields, releaseRuleText, slotState, weekGrid, type GridSlot,
} from '@/views/admin/parts/schedule'
import { generatePassword } from '@/views/admin/parts/userForm'
import { appBody, emptyDraft, missingFields, replacedSecrets } from '@/views/platform/parts/channelApp'

function slot(id: number, startsAt: string, extra: Partial<GridSlot> = {}): GridSlot {
  return { id, starts_at: startsAt, ends_at: startsAt, capacity: 5, reserved: 1, remaining: 4, closed: false,
    release_at: null, ...extra }
}

describe('calendar days', () => {
  it('adds days across months and years, and numbers weekdays as the API does (1 = Monday)', () => {
    expect(addDays('2026-12-30', 3)).toBe('2027-01-02')
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28')
    expect(isoWeekday('2026-12-07')).toBe(1)
    expect(isoWeekday('2026-12-06')).toBe(7)
    expect(mondayOf('2026-12-06')).toBe('2026-11-30')
    expect(mondayOf('2026-12-07')).toBe('2026-12-07')
    expect(() => addDays('7/12/2026', 1)).toThrow(RangeError)
  })
})

describe('weekGrid', () => {
  it('puts each slot in its Shanghai day and time, rows sorted by time, empty cells null', () => {
    const slots = [
      slot(1, '2026-12-07T01:00:00+00:00'), // Monday 09:00 Shanghai
      slot(2, '2026-12-08T01:30:00+00:00'), // Tuesday 09:30
      slot(3, '2026-12-08T01:00:00+00:00'), // Tuesday 09:00
      slot(4, '2026-12-13T15:30:00+00:00'), // Sunday 23:30 Shanghai (still the 13th in UTC)
      slot(5, '2026-12-13T16:00:00+00:00'), // Monday the 14th 00:00 Shanghai: next week, left out
    ]
    const grid = weekGrid(slots, '2026-12-07')
    expect(grid.days.map((d) => d.date)).toEqual(['2026-12-07', '2026-12-08', '2026-12-09', '2026-12-10', '2026-12-11',
      '2026-12-12', '2026-12-13'])
    expect(grid.days[0].weekday).toBe('周一')
    expect(grid.rows.map((r) => r.time)).toEqual(['09:00', '09:30', '23:30'])
    expect(grid.rows[0].cells.map((c) => c?.id ?? null)).toEqual([1, 3, null, null, null, null, null])
    expect(grid.rows[1].cells.map((c) => c?.id ?? null)).toEqual([null, 2, null, null, null, null, null])
    expect(grid.rows[2].cells[6]?.id).toBe(4)
  })

  it('has no rows for a week without slots', () => {
    expect(weekGrid([slot(1, '2026-12-07T01:00:00+00:00')], '2026-12-14').rows).toEqual([])
  })
})

describe('slotState', () => {
  const now = new Date('2026-12-05T00:00:00Z')
  it('says closed before anything else, then unreleased, full, open', () => {
    expect(slotState(slot(1, 'x', { closed: true, release_at: '2027-01-01T00:00:00Z', remaining: 0 }), now)).toBe('closed')
    expect(slotState(slot(1, 'x', { release_at: '2026-12-06T00:00:00Z' }), now)).toBe('unreleased')
    expect(slotState(slot(1, 'x', { release_at: '2026-12-04T00:00:00Z', remaining: 0 }), now)).toBe('full')
    expect(slotState(slot(1, 'x', { release_at: '2026-12-04T00:00:00Z' }), now)).toBe('open')
  })
})

describe('release rules', () => {
  it('read as words and become the schedule body\'s fields', () => {
    expect(releaseRuleText({ mode: 'now' })).toBe('生成后立即开放预约')
    expect(releaseRuleText({ mode: 'at', at: '2026-12-10 08:00' })).toBe('所有时段于 2026-12-10 08:00 开放预约')
    expect(releaseRuleText({ mode: 'days_before', days: 7, time: '08:00' })).toBe('每个时段在其日期前 7 天的 08:00 开放预约')
    expect(releaseRuleText({ mode: 'days_before', days: 0, time: '07:30' })).toBe('每个时段在当天 07:30 开放预约')
    expect(releaseFields({ mode: 'now' })).toEqual({})
    expect(releaseFields({ mode: 'at', at: '2026-12-10 08:00' })).toEqual({ release_at: '2026-12-10T08:00:00+08:00' })
    expect(releaseFields({ mode: 'days_before', days: 3, time: '20:00' }))
      .toEqual({ release_days_before: 3, release_time: '20:00' })
  })
})

describe('yuan in a form', () => {
  it('shows fen as the yuan a person would type, and reads them back to the same fen', () => {
    for (const fen of [0, 1, 10, 99, 100, 8050, 19900, 123456789]) expect(yuanToFen(fenToYuanInput(fen))).toBe(fen)
    expect(fenToYuanInput(8000)).toBe('80')
    expect(fenToYuanInput(8005)).toBe('80.05')
    expect(fenToYuanInput(null)).toBe('')
    expect(() => fenToYuanInput(1.5)).toThrow(RangeError)
  })
})

describe('itemBody', () => {
  it('sends the price in fen and no purchase prices for a clinic-collected item', () => {
    const draft = { ...emptyItem(), code: ' X-RAY ', name: '全景片', price: '199.5' }
    expect(itemBody(draft, { withCode: true })).toEqual({ code: 'X-RAY', name: '全景片', description: null, price_fen: 19950,
      kind: 'item', channels: ['wechat', 'alipay'], collected_by: 'clinic', purchase_price_fen: null, active: true })
  })

  it('needs a purchase price for each offered channel when the platform collects', () => {
    const draft = { ...emptyItem(), code: 'P', name: '洁牙', price: '100', collected_by: 'platform' as const,
      channels: ['wechat' as const], purchase: { wechat: '', alipay: '' } }
    expect(itemBody(draft, { withCode: true })).toBe('平台代收须填写微信渠道的采购价（元）')
    draft.purchase.wechat = '80'
    expect(itemBody(draft, { withCode: true })).toMatchObject({ purchase_price_fen: { wechat: 8000 } })
  })

  it('refuses what is not an amount, no name or no channel, and leaves the code out of an edit', () => {
    expect(itemBody({ ...emptyItem(), code: 'A', name: 'n', price: '1.234' }, { withCode: true })).toMatch(/价格/)
    expect(itemBody({ ...emptyItem(), code: 'A', name: 'n', price: '0' }, { withCode: true })).toMatch(/价格/)
    expect(itemBody({ ...emptyItem(), code: 'A', name: ' ', price: '1' }, { withCode: true })).toBe('请填写名称')
    expect(itemBody({ ...emptyItem(), code: 'A', name: 'n', price: '1', channels: [] }, { withCode: true })).toMatch(/渠道/)
    const edited = draftOf({ code: 'A', name: 'n', price_fen: 8050, kind: 'package', channels: ['alipay'],
      collected_by: 'platform', purchase_price_fen: { alipay: 7000 }, active: false, description: 'd' })
    expect(edited.price).toBe('80.50')
    expect(itemBody(edited, { withCode: false })).toEqual({ name: 'n', description: 'd', price_fen: 8050, kind: 'package',
      channels: ['alipay'], collected_by: 'platform', purchase_price_fen: { alipay: 7000 }, active: false })
  })
})

describe('channel app bodies', () => {
  it('a new app sends its channel\'s filled fields only', () => {
    const draft = { ...emptyDraft('alipay'), app_id: ' 2021 ', app_private_key: 'PRIV', alipay_public_key: 'PUB',
      api_key: 'a wechat field' }
    expect(missingFields(draft)).toEqual([])
    expect(appBody(draft)).toEqual({ channel: 'alipay', app_id: '2021', app_private_key: 'PRIV', alipay_public_key: 'PUB' })
    expect(missingFields(emptyDraft('wechat'))).toEqual(['app_id', 'mch_id', 'api_key', 'app_secret'])
  })

  it('an edit sends what changed and the secrets typed, never the app id', () => {
    const before = { name: 'mp', app_id: 'wx1', mch_id: '100', sign_type: 'MD5', api_base_url: 'https://a/',
      login_base_url: 'https://b/' }
    const draft = { ...emptyDraft('wechat'), ...before, sign_type: 'MD5' as const, app_id: 'wx-other', api_key: 'NEWKEY' }
    const body = appBody(draft, before)
    expect(body).toEqual({ api_key: 'NEWKEY' })
    expect(replacedSecrets(body)).toEqual(['api_key'])
    expect(appBody({ ...draft, api_key: '', name: 'renamed' }, before)).toEqual({ name: 'renamed' })
  })
})

describe('lists answered whole', () => {
  it('are filtered and cut into the page asked for', () => {
    const rows = Array.from({ length: 25 }, (_, n) => ({ code: `C${n}` }))
    expect(pageLocally(rows, { limit: 10, offset: 20 })).toEqual({ items: rows.slice(20), total: 25 })
    const kept = pageLocally(rows, { limit: 10, offset: 0 }, (r) => matchesText('c1', r.code))
    expect(kept.items.map((r) => r.code)).toEqual(['C1', 'C10', 'C11', 'C12', 'C13', 'C14', 'C15', 'C16', 'C17', 'C18'])
    expect(kept.total).toBe(11)
    expect(matchesText('', 'x')).toBe(true)
    expect(matchesText('  ', null)).toBe(true)
    expect(matchesText('y', null, 'x')).toBe(false)
  })
})

describe('generatePassword', () => {
  it('makes passwords of the asked length from the unambiguous alphabet, skipping biased bytes', () => {
    const password = generatePassword(14)
    expect(password).toMatch(/^[A-HJ-NP-Za-km-z2-9]{14}$/)
    // 255 is above the largest multiple of the alphabet's size: it is skipped, not folded onto a character
    let calls = 0
    const fixed = generatePassword(3, (n) => (calls++ === 0 ? new Uint8Array(n).fill(255) : new Uint8Array(n).fill(0)))
    expect(fixed).toBe('AAA')
    expect(calls).toBe(2)
  })
})
