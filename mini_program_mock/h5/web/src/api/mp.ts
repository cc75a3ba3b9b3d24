// The mini-program API, one function per call (paths and fields of API.md).
import { platform } from '@/session'

import type { Bill, Card, CardRef, CodeSent, Item, MessagePage, NewOrder, NewPatient, Order, Patient, PayResult,
  RefundRequest, Slot, Subscription } from './types'

const post = (body?: unknown, idempotencyKey?: string) => ({ method: 'POST' as const, body: body ?? {}, idempotencyKey })
const seg = encodeURIComponent

export const listPatients = () => platform.json<Patient[]>('/patients')
export const addPatient = (body: NewPatient, key?: string) => platform.json<Patient>('/patients', post(body, key))

/** Bind an existing card: without `sms_code` the platform texts a code (202); with it, binds (200/201). */
export async function bindCard(patientId: number, cardNo: string, smsCode?: string, key?: string):
  Promise<{ sent: CodeSent } | { bound: CardRef }> {
  const body = smsCode ? { card_no: cardNo, sms_code: smsCode } : { card_no: cardNo }
  const { status, data } = await platform.call<CodeSent | CardRef>(`/patients/${patientId}/cards`, post(body, key))
  return status === 202 ? { sent: data as CodeSent } : { bound: data as CardRef }
}
export const openCard = (patientId: number, key?: string) =>
  platform.json<CardRef>(`/patients/${patientId}/cards`, post({ create: true }, key))

export const getCard = (cardNo: string) => platform.json<Card>(`/cards/${seg(cardNo)}`)
export const listBills = (cardNo: string) => platform.json<Bill[]>(`/cards/${seg(cardNo)}/bills`)

export const listItems = () => platform.json<Item[]>('/items')
export const listSlots = (itemId: number, date: string) => platform.json<Slot[]>(`/items/${itemId}/slots`, { query: { date } })

export const createOrder = (body: NewOrder, key?: string) => platform.json<Order>('/orders', post(body, key))
export const listOrders = () => platform.json<Order[]>('/orders', { query: { limit: 50 } })
export const getOrder = (orderNo: string) => platform.json<Order>(`/orders/${seg(orderNo)}`)
export const startPayment = (orderNo: string) => platform.json<PayResult>(`/orders/${seg(orderNo)}/pay`, post())
export const cancelOrder = (orderNo: string, reason?: string) =>
  platform.json<Order>(`/orders/${seg(orderNo)}/cancel`, post(reason ? { reason } : {}))
export const inquireOrder = (orderNo: string) => platform.json<Order>(`/orders/${seg(orderNo)}/inquiry`, post())
export const receipt = (orderNo: string) => platform.blob(`/orders/${seg(orderNo)}/receipt`)

export const requestCardRefund = (cardNo: string, amountFen: number, key?: string) =>
  platform.json<RefundRequest>(`/cards/${seg(cardNo)}/refunds`, post({ amount_fen: amountFen }, key))
export const getRefund = (no: string) => platform.json<RefundRequest>(`/refunds/${seg(no)}`)

/** The message templates of this mini-program, with how many messages of each may still be sent to this user. */
export const listSubscriptions = () => platform.json<Subscription[]>('/subscriptions')
/** What the patient answered in wx.requestSubscribeMessage / my.requestSubscribeMessage. */
export const answerSubscriptions = (templateIds: string[], result: 'accept' | 'reject', key?: string) =>
  platform.json<Subscription[]>('/subscriptions', post({ template_ids: templateIds, result }, key))
export const listMessages = (limit = 20, offset = 0) => platform.json<MessagePage>('/messages', { query: { limit, offset } })
