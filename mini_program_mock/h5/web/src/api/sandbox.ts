// The sandbox world's stand-ins for what the channels' apps do on the phone: wx.login / my.getAuthCode hand out a
// one-time code, wx.requestPayment / my.tradePay let the patient confirm, and the SMS gateway's outbox is the
// phone's inbox. None of this exists in production: there the mini-program's own runtime does it.
import type { Channel } from '@/config'

import { ApiError, toApiError } from './http'

export interface SandboxMerchant { clinic_code?: string; appid?: string; app_id?: string }
export interface SandboxText { request_id: string; phone: string; text: string; sent_at: string }

export class SandboxClient {
  constructor(private readonly baseUrl: () => string, private readonly fetchImpl: typeof fetch = (...a) => fetch(...a)) {}

  private async request<T>(path: string, body?: unknown): Promise<T> {
    let resp: Response
    try {
      resp = await this.fetchImpl(`${this.baseUrl()}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      })
    } catch {
      throw new ApiError(0, '沙箱不可达，请确认 make run 正在运行')
    }
    if (!resp.ok) throw toApiError(resp.status, await resp.json().catch(() => null))
    return resp.json() as Promise<T>
  }

  /** The app id of the clinic's sandbox app on this channel (what the real mini-program has built in). */
  async appId(channel: Channel, clinic: string): Promise<string> {
    const all = await this.request<Record<string, SandboxMerchant[]>>('/sandbox/merchants')
    const found = (all[channel] ?? []).find((m) => (m.clinic_code ?? 'demo') === clinic)
    const id = found && (channel === 'wechat' ? found.appid : found.app_id)
    if (!id) throw new ApiError(404, `沙箱里没有诊所 ${clinic} 的${channel === 'wechat' ? '微信' : '支付宝'}小程序`)
    return id
  }

  /** wx.login / my.getAuthCode: a one-time code for this user of the app. */
  async loginCode(channel: Channel, appId: string, userId: string): Promise<string> {
    const body = channel === 'wechat' ? { appid: appId, openid: userId } : { app_id: appId, user_id: userId }
    return (await this.request<{ code: string }>(`/sandbox/${channel}/codes`, body)).code
  }

  /** The patient's answer on the payment sheet. */
  async pay(channel: Channel, reference: string, outcome: 'success' | 'fail'): Promise<void> {
    const body = channel === 'wechat' ? { prepay_id: reference, outcome } : { trade_no: reference, outcome }
    await this.request(`/sandbox/${channel}/pay`, body)
  }

  /** wx.requestSubscribeMessage / my.requestSubscribeMessage: the patient's answer for these templates, which the
   * channel records (each accept lets the app send one message of that template). */
  async subscribe(channel: Channel, appId: string, userId: string, templateIds: string[],
    result: 'accept' | 'reject'): Promise<void> {
    const who = channel === 'wechat' ? { appid: appId, openid: userId } : { app_id: appId, user_id: userId }
    await this.request(`/sandbox/${channel}/subscriptions`, { ...who, template_ids: templateIds, result })
  }

  /** Texts the SMS gateway stand-in delivered (to one phone, or to all), oldest first. */
  async texts(phone?: string): Promise<SandboxText[]> {
    return this.request<SandboxText[]>(`/sandbox/sms${phone ? `?phone=${encodeURIComponent(phone)}` : ''}`)
  }
}

/** "138****5678" matches 13800005678: the inbox of the phone a masked `sent_to` names. */
export function matchesMasked(phone: string, masked: string): boolean {
  const match = /^(\d{3})\*+(\d{4})$/.exec(masked.trim())
  return !!match && phone.length === 11 && phone.startsWith(match[1]) && phone.endsWith(match[2])
}

/** The 6-digit code in a text, as the patient reads it. */
export function codeIn(text: string): string | null {
  return /(?<![0-9])[0-9]{6}(?![0-9])/.exec(text)?.[0] ?? null
}
