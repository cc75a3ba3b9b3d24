// The patient's messages: bills the platform announced to them (GET /messages), the badge of those not seen yet
// on this phone, and the bill template they may subscribe to (wx.requestSubscribeMessage's stand-in).
import type { Message, Subscription } from '@/api/types'

export const SEEN_KEY_PREFIX = 'h5.messages.seen.'

/** The newest message id this user has looked at on this phone (0: none). */
export function lastSeen(userId: number | undefined, storage: Storage = localStorage): number {
  return userId ? Number(storage.getItem(SEEN_KEY_PREFIX + userId) ?? 0) || 0 : 0
}

export function markSeen(userId: number | undefined, messages: Message[], storage: Storage = localStorage): void {
  const newest = Math.max(0, ...messages.map((m) => m.id))
  if (userId && newest > lastSeen(userId, storage)) storage.setItem(SEEN_KEY_PREFIX + userId, String(newest))
}

export function unread(messages: Message[], seen: number): number {
  return messages.filter((m) => m.id > seen).length
}

export function billTemplate(subscriptions: Subscription[]): Subscription | undefined {
  return subscriptions.find((s) => s.purpose === 'bill_created')
}

export const PUSHED: Record<string, string> = {
  sent: '已推送到微信/支付宝',
  pending: '推送中',
  refused: '未能推送',
  failed: '未能推送',
}

/** The H5 page a message opens: its card (the mini-program's pages/bills/index?card_no=…). */
export function pageOf(message: Message): string {
  return `/cards/${encodeURIComponent(message.card_no)}`
}
