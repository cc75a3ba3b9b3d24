import { describe, expect, it } from 'vitest'

import { codeIn, matchesMasked } from '@/api/sandbox'
import type { Bill, Order } from '@/api/types'
import { resolveConfig } from '@/config'
import { featuresOf } from '@/features'
import { billTemplate, lastSeen, markSeen, pageOf, unread } from '@/live/messages'
import { formatClock, formatFen, formatTime, nextDates, shanghaiDate, yuanToFen } from '@/format'
import { pollingBillFeed } from '@/live/bills'
import { finished, waitForOrder } from '@/payment/checkout'

describe('money', () => {
  it('shows fen as yuan without floating point', () => {
    expect(formatFen(123456)).toBe('¥1,234.56')
    expect(formatFen(5)).toBe('¥0.05')
    expect(formatFen(-5)).toBe('-¥0.05')
    expect(formatFen(10000, { symbol: false })).toBe('100.00')
    expect(formatFen(null)).toBe('—')
    expect(() => formatFen(1.5)).toThrow(RangeError)
  })

  it('reads typed yuan as fen', () => {
    expect(yuanToFen('80')).toBe(8000)
    expect(yuanToFen('80.5')).toBe(8050)
    expect(yuanToFen('0.01')).toBe(1)
    expect(yuanToFen('0.1')).toBe(10)
    for (const bad of ['', '0', '0.00', '-1', '1.234', 'abc', '1e3', '12345678']) expect(yuanToFen(bad)).toBeNull()
  })
})

describe('time', () => {
  it('shows moments in Asia/Shanghai whatever the zone of the phone', () => {
    expect(formatTime('2026-12-05T12:30:00+00:00')).toBe('2026-12-05 20:30')
    expect(formatTime('2026-12-31T16:05:00Z')).toBe('2027-01-01 00:05')
    expect(formatClock('2026-12-05T01:00:00+00:00')).toBe('09:00')
    expect(shanghaiDate(new Date('2026-12-31T16:05:00Z'))).toBe('2027-01-01')
  })

  it('lists the booking dates from the Shanghai today', () => {
    const dates = nextDates(3, new Date('2026-12-31T16:05:00Z'))
    expect(dates.map((d) => d.date)).toEqual(['2027-01-01', '2027-01-02', '2027-01-03'])
    expect(dates[0].label).toBe('01-01 今天')
    expect(dates[2].label).toBe('01-03 周日')
  })
})

describe('configuration', () => {
  it('lets the query string override config.json, field by field, and ignores what is not valid', () => {
    const served = { sandbox_url: 'http://127.0.0.1:8100', platform_url: 'http://127.0.0.1:8000', clinic: 'demo', channel: 'wechat' }
    const config = resolveConfig('http://page', served, { channel: 'alipay', platform: 'http://10.0.0.5:9000/' })
    expect(config).toEqual({ sandboxUrl: 'http://127.0.0.1:8100', platformUrl: 'http://10.0.0.5:9000', clinic: 'demo', channel: 'alipay' })
    const ignored = resolveConfig('http://page', served, { channel: 'paypal', platform: 'javascript:alert(1)', clinic: '../x' })
    expect(ignored).toEqual({ sandboxUrl: 'http://127.0.0.1:8100', platformUrl: 'http://127.0.0.1:8000', clinic: 'demo', channel: 'wechat' })
  })
})

describe('the sandbox inbox', () => {
  it('finds the phone a masked number names, and the code in a text', () => {
    expect(matchesMasked('13800005678', '138****5678')).toBe(true)
    expect(matchesMasked('13900005678', '138****5678')).toBe(false)
    expect(matchesMasked('13800005679', '138****5678')).toBe(false)
    expect(codeIn('【诊所支付】您的验证码是 493021，5 分钟内有效')).toBe('493021')
    expect(codeIn('no code 1234567')).toBeNull()
  })
})

describe('platform features', () => {
  it('switches on inquiry and receipts when the OpenAPI document publishes them', () => {
    expect(featuresOf({ paths: { '/api/mp/v1/orders/{order_no}': { get: {} } } }))
      .toEqual({ inquiry: false, receipt: false, messages: false })
    expect(featuresOf({ paths: {
      '/api/mp/v1/orders/{order_no}/inquiry': { post: {} },
      '/api/mp/v1/orders/{order_no}/receipt': { get: {} },
    } })).toEqual({ inquiry: true, receipt: true, messages: false })
    // The admin API's receipt is not the patient's.
    expect(featuresOf({ paths: { '/api/admin/v1/orders/{order_no}/receipt': { get: {} } } }).receipt).toBe(false)
    expect(featuresOf(null)).toEqual({ inquiry: false, receipt: false, messages: false })
  })

  it('switches on messages when both the inbox and the subscriptions are published', () => {
    expect(featuresOf({ paths: { '/api/mp/v1/messages': { get: {} } } }).messages).toBe(false)
    expect(featuresOf({ paths: { '/api/mp/v1/messages': { get: {} },
      '/api/mp/v1/subscriptions': { get: {}, post: {} } } }).messages).toBe(true)
  })
})

function order(status: string, type: Order['type'] = 'topup'): Order {
  return { order_no: 'O1', type, status, amount_fen: 100, refunded_fen: 0, channel: 'wechat', created_at: '', expires_at: '', payments: [] }
}

describe('waiting for the platform', () => {
  it('waits for a top-up to complete (HIS recorded), a booking only to be paid', () => {
    expect(finished(order('paid'))).toBe(false)
    expect(finished(order('completed'))).toBe(true)
    expect(finished(order('paid', 'booking'))).toBe(true)
    expect(finished(order('created', 'booking'))).toBe(false)
  })

  it('re-reads the order until it is done, or gives up with the last reading', async () => {
    const readings = ['created', 'paid', 'completed']
    const slept: number[] = []
    const sleep = async (ms: number) => { slept.push(ms) }
    const done = await waitForOrder(async () => order(readings.shift()!), finished, { intervalMs: 10, timeoutMs: 100, sleep })
    expect(done).toEqual({ order: order('completed'), done: true })
    expect(slept).toEqual([10, 10])
    const stuck = await waitForOrder(async () => order('created'), finished, { intervalMs: 10, timeoutMs: 30, sleep })
    expect(stuck.done).toBe(false)
  })
})

describe('live bills', () => {
  const bill = (id: string): Bill => ({ bill_id: id, kind: 'lab', title: id, amount_fen: 100 })

  it('tells the page when the bills change, and stops when told', async () => {
    const answers = [[bill('B1')], [bill('B1')], [bill('B1'), bill('B2')], []]
    const timers: (() => void)[] = []
    const seen: string[][] = []
    const feed = pollingBillFeed(async () => answers.shift() ?? [], { setTimer: (fn) => timers.push(fn), clearTimer: () => {} })
    const stop = feed.watch('C1', (bills) => seen.push(bills.map((b) => b.bill_id)))
    const step = async () => { await new Promise((r) => setTimeout(r, 0)); timers.shift()?.() }
    await step()
    await step()
    await new Promise((r) => setTimeout(r, 0))
    expect(seen).toEqual([['B1'], ['B1', 'B2']])
    stop()
    timers.shift()?.()
    await new Promise((r) => setTimeout(r, 0))
    expect(seen).toHaveLength(2)
    expect(answers).toEqual([[]]) // the read after stop() never happened
  })

  it('does not poll a hidden page', async () => {
    let reads = 0
    const feed = pollingBillFeed(async () => { reads += 1; return [] }, { visible: () => false, setTimer: () => 0, clearTimer: () => {} })
    feed.watch('C1', () => {})()
    await new Promise((r) => setTimeout(r, 0))
    expect(reads).toBe(0)
  })
})

describe('messages', () => {
  const message = (id: number) => ({ id, kind: 'bill_created', title: '待缴费：血常规', bill_id: `B${id}`, card_no: 'D0000001',
    created_at: '2026-12-05T02:00:00+00:00' })

  it('counts what this phone has not seen and remembers the newest it showed', () => {
    const storage = new Map<string, string>()
    const fake = { getItem: (k: string) => storage.get(k) ?? null, setItem: (k: string, v: string) => storage.set(k, v) } as unknown as Storage
    expect(lastSeen(7, fake)).toBe(0)
    expect(unread([message(3), message(2)], lastSeen(7, fake))).toBe(2)
    markSeen(7, [message(3), message(2)], fake)
    expect(lastSeen(7, fake)).toBe(3)
    markSeen(7, [message(1)], fake)
    expect(lastSeen(7, fake)).toBe(3)
    expect(unread([message(4), message(3)], lastSeen(7, fake))).toBe(1)
    expect(lastSeen(8, fake)).toBe(0)
  })

  it('opens the card of the bill, and finds the bill template', () => {
    expect(pageOf(message(1))).toBe('/cards/D0000001')
    expect(billTemplate([{ template_id: 'p', purpose: 'payment_succeeded', allowance: 0 },
      { template_id: 'b', purpose: 'bill_created', allowance: 1 }])?.template_id).toBe('b')
  })
})
