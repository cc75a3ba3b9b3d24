// What a booking allows at the desk, by status (the API decides; this only offers the buttons that can work).
import type { Schemas } from '@/api'

export type Booking = Schemas['Booking']

export type DeskAction = 'confirm' | 'change' | 'redeem' | 'no_show' | 'reschedule' | 'cancel'

const BY_STATUS: Record<string, DeskAction[]> = {
  paid: ['confirm', 'cancel'],
  booked: ['redeem', 'change', 'no_show', 'cancel'],
  rescheduled: ['redeem', 'reschedule', 'no_show', 'cancel'],
  no_show: ['reschedule', 'cancel'],
}

export function deskActions(booking: Booking, now: Date = new Date()): DeskAction[] {
  const begun = appointmentOf(booking) !== null && new Date(appointmentOf(booking) as string) <= now
  return (BY_STATUS[booking.status] ?? []).filter((action) => action !== 'no_show' || begun)
}

/** When the patient comes: the agreed time, or the slot booked in the mini-program before staff confirmed. */
export function appointmentOf(booking: Booking): string | null {
  return booking.appointment_at ?? booking.slot?.starts_at ?? null
}

/** What cancelling gives back: the amount not yet refunded. */
export function refundableFen(booking: Booking): number {
  return booking.amount_fen - booking.refunded_fen
}
