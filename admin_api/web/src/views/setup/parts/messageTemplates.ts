// The message templates form of a channel app: one section per purpose (the API's options say which purposes
// there are and which facts each may show), each a template id, a page and keyword -> fact rows; and the PUT
// body made from it. The API checks what is sent (a keyword it does not take, a fact a purpose cannot show) and
// its 422 message is shown as it is; here only what the form itself would lose is caught (a keyword given
// twice, a keyword without a fact), and the body is nothing but what the person filled in.
import type { Schemas } from '@/api'

export type Template = Schemas['MessageTemplate']
export type TemplateIn = Schemas['MessageTemplateIn']
export type Options = Schemas['MessageTemplateOptions']
export type Purpose = TemplateIn['purpose']
export type Fact = TemplateIn['fields'][string]

/** The API's limit on a template's keywords (app/domain/messaging.py MAX_KEYWORDS). */
export const MAX_KEYWORDS = 10

export interface KeywordRow {
  keyword: string
  source: Fact | ''
}

export interface PurposeForm {
  purpose: Purpose
  /** whether the app has a template for this purpose (one without is never pushed) */
  enabled: boolean
  template_id: string
  /** the mini-program page a message opens (the API's default page until changed; empty sends that default) */
  page: string
  rows: KeywordRow[]
  /** the facts a keyword of this purpose may show */
  sources: Fact[]
}

/** The form for the app's templates as the API has them; a purpose without one starts off with its usual facts. */
export function formFromTemplates(options: Options, templates: Template[]): PurposeForm[] {
  return options.purposes.map((offered) => {
    const saved = templates.find((t) => t.purpose === offered.purpose)
    const rows: KeywordRow[] = saved
      ? Object.entries(saved.fields).map(([keyword, source]) => ({ keyword, source })).sort(byKeywordNumber)
      : offered.usual_sources.map((source) => ({ keyword: '', source }))
    return {
      purpose: offered.purpose,
      enabled: Boolean(saved),
      template_id: saved?.template_id ?? '',
      page: saved?.page ?? options.default_page,
      rows,
      sources: [...offered.sources],
    }
  })
}

// A template's keywords in its own order (thing1, amount2, time3…): the number each ends with. The API's object
// comes back in its database's key order, which is not the template's.
function keywordNumber(keyword: string): number {
  const digits = /([0-9]+)$/.exec(keyword)
  return digits ? Number(digits[1]) : Number.MAX_SAFE_INTEGER
}

function byKeywordNumber(a: KeywordRow, b: KeywordRow): number {
  return keywordNumber(a.keyword) - keywordNumber(b.keyword) || a.keyword.localeCompare(b.keyword)
}

export interface Body {
  body: TemplateIn[]
  /** what keeps the form from being sent, for the person; empty when it may be sent */
  problems: string[]
}

/** The PUT body: the enabled purposes, each with its non-empty keyword rows (an empty page is `defaultPage`). */
export function bodyFromForm(forms: PurposeForm[], defaultPage: string,
  label: (purpose: string) => string = String): Body {
  const problems: string[] = []
  const body: TemplateIn[] = []
  for (const form of forms.filter((f) => f.enabled)) {
    const name = label(form.purpose)
    const fields: Record<string, Fact> = {}
    for (const row of form.rows) {
      const keyword = row.keyword.trim()
      if (!keyword && !row.source) continue
      if (!keyword) problems.push(`${name}：有一行选了内容但没有填关键词`)
      else if (!row.source) problems.push(`${name}：关键词 ${keyword} 没有选择显示的内容`)
      else if (keyword in fields) problems.push(`${name}：关键词 ${keyword} 填了两次`)
      else fields[keyword] = row.source
    }
    body.push({ purpose: form.purpose, template_id: form.template_id.trim(), fields, page: form.page.trim() || defaultPage })
  }
  return { body, problems }
}

/** What saving will do, one line per purpose, for the confirmation. */
export function describeBody(body: TemplateIn[], label: (purpose: string) => string = String,
  factName: (fact: string) => string = String): string[] {
  if (!body.length) return ['不配置任何模板：将关闭此应用的消息推送，不再推送任何消息。']
  return body.map((entry) => {
    const shown = Object.entries(entry.fields).map(([keyword, fact]) => `${keyword}=${factName(fact)}`).join('、')
    return `${label(entry.purpose)}：模板 ${entry.template_id}，${shown || '无关键词'}`
  })
}

/** The purposes that will not be pushed after saving (those left out of the body). */
export function purposesOff(forms: PurposeForm[], body: TemplateIn[]): Purpose[] {
  const on = new Set(body.map((entry) => entry.purpose))
  return forms.map((f) => f.purpose).filter((purpose) => !on.has(purpose))
}
