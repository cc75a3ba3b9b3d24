// What a channel app form sends: the fields of its channel only, and of an edit only what was typed (a secret left
// empty keeps the one the API has; it is write-only and never shown back).
export type Channel = 'wechat' | 'alipay'

export interface AppDraft {
  channel: Channel
  name: string
  app_id: string
  mch_id: string
  api_key: string
  app_secret: string
  sign_type: 'MD5' | 'HMAC-SHA256'
  api_base_url: string
  login_base_url: string
  cert_pem: string
  key_pem: string
  app_private_key: string
  alipay_public_key: string
}

export const FIELDS_OF: Record<Channel, readonly (keyof AppDraft)[]> = {
  wechat: ['name', 'app_id', 'mch_id', 'api_key', 'app_secret', 'sign_type', 'api_base_url', 'login_base_url',
    'cert_pem', 'key_pem'],
  alipay: ['name', 'app_id', 'mch_id', 'app_private_key', 'alipay_public_key', 'api_base_url'],
}

/** The fields in words, for confirmations. */
export const FIELD_LABEL: Record<keyof AppDraft, string> = {
  channel: '渠道', name: '名称', app_id: 'AppID', mch_id: '商户号', api_key: 'API 密钥', app_secret: 'AppSecret',
  sign_type: '签名方式', api_base_url: '接口地址', login_base_url: '登录接口地址', cert_pem: '商户证书', key_pem: '证书私钥',
  app_private_key: '应用私钥', alipay_public_key: '支付宝公钥',
}

export const SECRETS: readonly (keyof AppDraft)[] = ['api_key', 'app_secret', 'cert_pem', 'key_pem', 'app_private_key',
  'alipay_public_key']

/** What a new app needs before it can be sent. */
export const REQUIRED_OF: Record<Channel, readonly (keyof AppDraft)[]> = {
  wechat: ['app_id', 'mch_id', 'api_key', 'app_secret'],
  alipay: ['app_id', 'app_private_key', 'alipay_public_key'],
}

export function emptyDraft(channel: Channel = 'wechat'): AppDraft {
  return { channel, name: '', app_id: '', mch_id: '', api_key: '', app_secret: '', sign_type: 'MD5', api_base_url: '',
    login_base_url: '', cert_pem: '', key_pem: '', app_private_key: '', alipay_public_key: '' }
}

/** The body of a POST (new app: channel and every filled field) or a PATCH (only what changed; never app_id). */
export function appBody(draft: AppDraft, before?: Partial<Record<keyof AppDraft, unknown>>): Record<string, string> {
  const body: Record<string, string> = before ? {} : { channel: draft.channel }
  for (const field of FIELDS_OF[draft.channel]) {
    if (before && field === 'app_id') continue
    const value = SECRETS.includes(field) ? draft[field] : draft[field].trim()
    if (!value) continue
    if (before && !SECRETS.includes(field) && value === (before[field] ?? '')) continue
    body[field] = value
  }
  return body
}

export function missingFields(draft: AppDraft): (keyof AppDraft)[] {
  return REQUIRED_OF[draft.channel].filter((field) => !draft[field].trim())
}

/** The secrets a PATCH replaces, for the confirmation (the API and wechat keys rotate with a grace period). */
export function replacedSecrets(body: Record<string, string>): string[] {
  return SECRETS.filter((field) => field in body)
}
