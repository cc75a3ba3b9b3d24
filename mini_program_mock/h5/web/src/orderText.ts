import type { Order } from '@/api/types'
import { ORDER_TYPE, formatTime, label } from '@/format'

/** A line that says what an order was for. */
export function orderTitle(order: Order): string {
  if (order.type === 'booking') return `${order.item?.name ?? '预约'}${order.slot ? ` · ${formatTime(order.slot.starts_at)}` : ''}`
  if (order.type === 'topup') return `就诊卡充值 ${order.card_no ?? ''}`
  return `门诊缴费 ${order.bill_ids?.length ?? 0} 笔 · ${order.card_no ?? ''}`
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
