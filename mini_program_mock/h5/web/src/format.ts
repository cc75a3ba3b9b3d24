// Money is integer fen everywhere; yuan appear only as text, made with integer arithmetic (no floats).
// Times come from the API with an offset and are shown in Asia/Shanghai, whatever the phone's zone.

export const ZONE = 'Asia/Shanghai'

/** 123456 -> "¥1,234.56"; -5 -> "-¥0.05". */
export function formatFen(fen: number | null | undefined, { symbol = true } = {}): string {
  if (fen === null || fen === undefined || !Number.isFinite(fen)) return '—'
  if (!Number.isSafeInteger(fen)) throw new RangeError(`amounts are integer fen, got ${fen}`)
  const sign = fen < 0 ? '-' : ''
  const abs = Math.abs(fen)
  const yuan = Math.trunc(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  const cents = (abs % 100).toString().padStart(2, '0')
  return `${sign}${symbol ? '¥' : ''}${yuan}.${cents}`
}

/** What a patient types as yuan ("80", "80.5") -> fen, or null when it is not a positive amount. */
export function yuanToFen(text: string): number | null {
  const match = /^\s*(\d{1,7})(?:\.(\d{1,2}))?\s*$/.exec(text)
  if (!match) return null
  const [, yuan, cents = ''] = match
  const fen = Number(yuan) * 100 + Number(cents.padEnd(2, '0'))
  return fen > 0 ? fen : null
}

const PARTS = new Intl.DateTimeFormat('en-CA', {
  timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
  hourCycle: 'h23', weekday: 'short',
})

function parts(moment: Date): Record<string, string> {
  return Object.fromEntries(PARTS.formatToParts(moment).map((p) => [p.type, p.value]))
}

/** "2026-12-05T12:30:00+00:00" -> "2026-12-05 20:30" (Shanghai). */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—'
  const moment = new Date(iso)
  if (Number.isNaN(moment.getTime())) return iso
  const p = parts(moment)
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`
}

/** "…T01:00:00+00:00" -> "09:00" (Shanghai). */
export function formatClock(iso: string): string {
  const p = parts(new Date(iso))
  return `${p.hour}:${p.minute}`
}

/** The Shanghai date of a moment, "YYYY-MM-DD". */
export function shanghaiDate(moment: Date = new Date()): string {
  const p = parts(moment)
  return `${p.year}-${p.month}-${p.day}`
}

const WEEKDAYS = ['日', '一', '二', '三', '四', '五', '六']

/** The next `count` Shanghai dates from `from` (today first): [{date: "YYYY-MM-DD", label: "12-05 周五"}]. */
export function nextDates(count: number, from: Date = new Date()): { date: string; label: string }[] {
  const [year, month, day] = shanghaiDate(from).split('-').map(Number)
  return Array.from({ length: count }, (_, n) => {
    const d = new Date(Date.UTC(year, month - 1, day + n))
    const date = d.toISOString().slice(0, 10)
    const label = n === 0 ? '今天' : n === 1 ? '明天' : `周${WEEKDAYS[d.getUTCDay()]}`
    return { date, label: `${date.slice(5)} ${label}` }
  })
}

export const ORDER_STATUS: Record<string, string> = {
  created: '待支付', paid: '已支付', booked: '已确认', redeemed: '已核销', no_show: '未到诊', cancelled: '已取消',
  closed: '已关闭', refunding: '退款中', refunded: '已退款', partially_refunded: '部分退款', completed: '已完成',
}

export const ORDER_TYPE: Record<string, string> = { booking: '预约', topup: '就诊卡充值', visit_bill: '门诊缴费' }

export const PAYMENT_STATUS: Record<string, string> = {
  created: '待支付', pending: '支付中', paid: '已支付', succeeded: '已支付', failed: '支付失败', closed: '已关闭',
  refunded: '已退款', unknown: '待确认',
}

export const REFUND_STATUS: Record<string, string> = {
  waiting: '排队中', pending: '待处理', processing: '处理中', succeeded: '已退回', partially_failed: '部分失败', failed: '失败',
}

export const RELATIONS: Record<string, string> = { self: '本人', spouse: '配偶', child: '子女', parent: '父母', other: '其他' }

export const BILL_KINDS: Record<string, string> = {
  exam: '检查', lab: '检验', prescription: '处方', treatment: '治疗', charge: '费用',
}

export const CHANNELS: Record<string, string> = { wechat: '微信支付', alipay: '支付宝' }

export function label(table: Record<string, string>, key: string | null | undefined): string {
  if (!key) return '—'
  return table[key] ?? key
}

/** An order the patient still has to pay. */
export const UNPAID = new Set(['created'])
/** Statuses that mean the money arrived (a top-up or bill order completes once the HIS recorded it). */
export const SETTLED = new Set(['paid', 'booked', 'redeemed', 'no_show', 'completed', 'refunding', 'refunded',
  'partially_refunded'])
