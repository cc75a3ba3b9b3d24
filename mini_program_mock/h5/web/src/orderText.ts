import type { Order } from '@/api/types'
import { ORDER_TYPE, formatTime, label } from '@/format'

/** What an order was for, in a few words. */
export function orderTitle(order: Order): string {
  if (order.type === 'booking') return order.item?.name ?? '预约'
  if (order.type === 'topup') return `就诊卡充值 ${order.card_no ?? ''}`
  return `门诊缴费 ${order.bill_ids?.length ?? 0} 笔`
}

/** The detail line under the title: the appointment or the card. */
export function orderDetail(order: Order): string {
  if (order.type === 'booking') return order.slot ? `预约 ${formatTime(order.slot.starts_at)}` : '预约'
  return `${orderKind(order)} · 卡号 ${order.card_no ?? '—'}`
}

export function orderKind(order: Order): string {
  return label(ORDER_TYPE, order.type)
}

export function statusTagType(status: string): 'primary' | 'success' | 'warning' | 'danger' | 'default' {
  if (status === 'created') return 'warning'
  if (['paid', 'booked', 'redeemed', 'completed'].includes(status)) return 'success'
  if (['refunding', 'refunded', 'partially_refunded'].includes(status)) return 'primary'
  if (['cancelled', 'closed', 'no_show'].includes(status)) return 'default'
  return 'danger'
}
