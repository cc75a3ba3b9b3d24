// What the console does with live events: a pop-up with a sound for a booking paid and waiting for the desk,
// a pop-up for finance's news (a late payment, a reconciliation's discrepancies, a HIS write flagged), and
// the waiting count in the header kept live. The stream runs while someone is signed in (AppShell).
import { ElNotification } from 'element-plus'
import { onBeforeUnmount, ref, watch } from 'vue'

import { api, call, type Query } from '@/api'
import { clinicQuery, session } from '@/auth/session'
import { formatFen } from '@/format/money'
import { formatTime } from '@/format/time'

import { playChime } from './chime'
import { startLiveEvents, stopLiveEvents, useLiveEvent, type LiveEvent } from './liveEvents'

export const MONEY_NEWS: Record<string, string> = {
  late_payment: '迟到的付款',
  discrepancy_found: '对账发现差异',
  his_write_flagged: 'HIS 写入需人工处理',
}

function text(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : ''
}

export function bookingPaidMessage(data: Record<string, unknown>): string {
  const parts = [text(data.item) || '预约', formatTime(text(data.appointment_at) || null)]
  if (typeof data.amount_fen === 'number') parts.push(formatFen(data.amount_fen))
  return `${parts.join(' · ')}（${text(data.order_no)}）`
}

export function moneyNewsMessage(event: LiveEvent): string {
  const data = event.data
  if (event.type === 'discrepancy_found') {
    return `${text(data.date)} ${text(data.source)} 对账：${text(data.open)} 条待处理`
  }
  if (event.type === 'his_write_flagged') return `${text(data.kind)} ${text(data.order_no)}：${text(data.last_error)}`
  const amount = typeof data.amount_fen === 'number' ? formatFen(data.amount_fen) : ''
  return `订单 ${text(data.order_no)} ${amount}（${text(data.outcome)}）`
}

/** Open the live stream for the signed-in user and show what it brings; call once, in the signed-in shell. */
export function useLiveNotifications(): void {
  // The platform's operator has no clinic whose events it follows (the stream admits staff and finance).
  watch(() => session.token, (token) => startLiveEvents(session.user?.role === 'operator' ? null : token),
    { immediate: true })
  onBeforeUnmount(stopLiveEvents)
  useLiveEvent('booking_paid', (event) => {
    playChime()
    ElNotification({ title: '新预约已付款，待确认', message: bookingPaidMessage(event.data), type: 'success',
      position: 'bottom-right', duration: 8000, customClass: 'live-booking-paid' })
  })
  useLiveEvent(Object.keys(MONEY_NEWS), (event) => {
    ElNotification({ title: MONEY_NEWS[event.type], message: moneyNewsMessage(event), type: 'warning',
      position: 'bottom-right', duration: 10000, customClass: `live-${event.type.replace(/_/g, '-')}` })
  })
}

/** Bookings paid and waiting for the desk in the picked clinic, kept up to date by booking_paid events. */
export function useWaitingCount(enabled: () => boolean) {
  const count = ref<number | null>(null)

  async function refresh(): Promise<void> {
    if (!enabled()) return
    try {
      const page = await call(api.GET('/api/admin/v1/bookings', {
        params: { query: { status: 'paid', limit: 1, ...clinicQuery() } as Query<'/api/admin/v1/bookings'> },
      }))
      count.value = page.total
    } catch {
      // the count is a convenience: the list screen shows the same and says when it cannot load
    }
  }

  watch(() => [session.clinic, enabled()], () => { void refresh() }, { immediate: true })
  useLiveEvent('booking_paid', () => { void refresh() })
  return { count, refresh }
}
