// Times come from the API in UTC with an offset; people read them in Asia/Shanghai, whatever the browser's zone.

export const ZONE = 'Asia/Shanghai'

const PARTS = new Intl.DateTimeFormat('en-CA', {
  timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  second: '2-digit', hourCycle: 'h23',
})

function parts(moment: Date): Record<string, string> {
  return Object.fromEntries(PARTS.formatToParts(moment).map((p) => [p.type, p.value]))
}

/** "2026-12-05T12:30:00+00:00" -> "2026-12-05 20:30" (Shanghai); seconds on request. */
export function formatTime(iso: string | null | undefined, { seconds = false } = {}): string {
  if (!iso) return '—'
  const moment = new Date(iso)
  if (Number.isNaN(moment.getTime())) return iso
  const p = parts(moment)
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${seconds ? `:${p.second}` : ''}`
}

/** The Shanghai date of a moment, "YYYY-MM-DD". */
export function shanghaiDate(moment: Date = new Date()): string {
  const p = parts(moment)
  return `${p.year}-${p.month}-${p.day}`
}

/** The Shanghai month of a moment, "YYYY-MM". */
export function shanghaiMonth(moment: Date = new Date()): string {
  return shanghaiDate(moment).slice(0, 7)
}

/** A Shanghai wall-clock time as the pickers give it ("YYYY-MM-DD HH:mm") -> ISO 8601 with its offset. */
export function shanghaiInputToIso(value: string): string {
  const match = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(?::(\d{2}))?$/.exec(value.trim())
  if (!match) throw new RangeError(`not a date and time: ${value}`)
  return `${match[1]}T${match[2]}:${match[3] ?? '00'}+08:00`
}

/** An ISO moment -> the pickers' "YYYY-MM-DD HH:mm" in Shanghai. */
export function isoToShanghaiInput(iso: string): string {
  return formatTime(iso)
}

/** "2026-12" -> "2026-11": the month before (statements are made for ended months). */
export function previousMonth(month: string): string {
  const [year, mon] = month.split('-').map(Number)
  return mon === 1 ? `${year - 1}-12` : `${year}-${String(mon - 1).padStart(2, '0')}`
}
