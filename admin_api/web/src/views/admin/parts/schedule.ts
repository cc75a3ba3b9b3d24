// An item's schedule as people read it: a week grid of slots (rows = start times, columns = days, Asia/Shanghai),
// each slot's state, and the release rule of a schedule posting in words. Pure: the screens and vitest use it.
import { formatTime } from '@/format/time'

export interface GridSlot {
  id: number
  starts_at: string
  ends_at: string
  capacity: number
  reserved: number
  remaining: number
  closed: boolean
  release_at?: string | null
}

export const WEEKDAY_NAMES = ['周一', '周二', '周三', '周四', '周五', '周六', '周日']

function utcDay(day: string): Date {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new RangeError(`not a date: ${day}`)
  return new Date(`${day}T00:00:00Z`)
}

/** "2026-12-05" + 3 days -> "2026-12-08" (calendar days; no zone involved). */
export function addDays(day: string, days: number): string {
  const moment = utcDay(day)
  moment.setUTCDate(moment.getUTCDate() + days)
  return moment.toISOString().slice(0, 10)
}

/** The ISO weekday of a date: 1 = Monday ... 7 = Sunday (the API's numbering). */
export function isoWeekday(day: string): number {
  return ((utcDay(day).getUTCDay() + 6) % 7) + 1
}

/** The Monday of the week a date is in. */
export function mondayOf(day: string): string {
  return addDays(day, 1 - isoWeekday(day))
}

export type SlotState = 'closed' | 'unreleased' | 'full' | 'open'

export function slotState(slot: GridSlot, now: Date = new Date()): SlotState {
  if (slot.closed) return 'closed'
  if (slot.release_at && new Date(slot.release_at).getTime() > now.getTime()) return 'unreleased'
  if (slot.remaining <= 0) return 'full'
  return 'open'
}

export interface WeekGrid<S extends GridSlot = GridSlot> {
  days: { date: string; weekday: string }[]
  rows: { time: string; cells: (S | null)[] }[]
}

/** The week from `monday`: a row per start time any slot of that week has, a cell per day (null: no slot then). */
export function weekGrid<S extends GridSlot>(slots: readonly S[], monday: string): WeekGrid<S> {
  const days = WEEKDAY_NAMES.map((weekday, n) => ({ date: addDays(monday, n), weekday }))
  const column = new Map(days.map((d, n) => [d.date, n]))
  const byTime = new Map<string, (S | null)[]>()
  for (const slot of slots) {
    const [date, time] = formatTime(slot.starts_at).split(' ')
    const n = column.get(date)
    if (n === undefined) continue
    const cells = byTime.get(time) ?? Array<S | null>(7).fill(null)
    cells[n] = slot
    byTime.set(time, cells)
  }
  const rows = [...byTime.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([time, cells]) => ({ time, cells }))
  return { days, rows }
}

export type ReleaseRule =
  | { mode: 'now' }
  | { mode: 'at'; at: string }
  | { mode: 'days_before'; days: number; time: string }

/** A release rule in words, as the schedule form shows it before it is posted. */
export function releaseRuleText(rule: ReleaseRule): string {
  if (rule.mode === 'now') return '生成后立即开放预约'
  if (rule.mode === 'at') return `所有时段于 ${rule.at} 开放预约`
  if (rule.days === 0) return `每个时段在当天 ${rule.time} 开放预约`
  return `每个时段在其日期前 ${rule.days} 天的 ${rule.time} 开放预约`
}

/** The schedule body's release fields for a rule (`at` is a Shanghai "YYYY-MM-DD HH:mm"). */
export function releaseFields(rule: ReleaseRule): { release_at?: string; release_days_before?: number; release_time?: string } {
  if (rule.mode === 'at') return { release_at: `${rule.at.replace(' ', 'T')}:00+08:00` }
  if (rule.mode === 'days_before') return { release_days_before: rule.days, release_time: rule.time }
  return {}
}
