// Money is integer fen everywhere; yuan appear only as text, made here with integer arithmetic (no floats).

const GROUPS = /\B(?=(\d{3})+(?!\d))/g

/** 123456 -> "¥1,234.56"; -5 -> "-¥0.05". */
export function formatFen(fen: number | null | undefined, { symbol = true } = {}): string {
  if (fen === null || fen === undefined || !Number.isFinite(fen)) return '—'
  if (!Number.isSafeInteger(fen)) throw new RangeError(`amounts are integer fen, got ${fen}`)
  const sign = fen < 0 ? '-' : ''
  const abs = Math.abs(fen)
  const yuan = Math.trunc(abs / 100).toString().replace(GROUPS, ',')
  const cents = (abs % 100).toString().padStart(2, '0')
  return `${sign}${symbol ? '¥' : ''}${yuan}.${cents}`
}

/** What a person types as yuan ("80", "80.5", "1,080.50") -> fen, or null when it is not an amount. */
export function yuanToFen(text: string): number | null {
  const match = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(text.replace(/,/g, ''))
  if (!match) return null
  const [, yuan, cents = ''] = match
  return Number(yuan) * 100 + Number(cents.padEnd(2, '0'))
}

/** An ordinary invoice is made out for amount / 1.06, rounded half up to the fen (as the platform does). */
export function ordinaryInvoiceFen(fen: number): number {
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError(`amounts are non-negative integer fen, got ${fen}`)
  return Math.floor((fen * 200 + 106) / 212)
}

/** Fen as a person edits them in a yuan field: 8050 -> "80.50", 8000 -> "80". */
export function fenToYuanInput(fen: number | null | undefined): string {
  if (fen === null || fen === undefined) return ''
  if (!Number.isSafeInteger(fen) || fen < 0) throw new RangeError(`amounts are non-negative integer fen, got ${fen}`)
  const cents = fen % 100
  return cents === 0 ? String(fen / 100) : `${Math.trunc(fen / 100)}.${String(cents).padStart(2, '0')}`
}
