import { describe, expect, it } from 'vitest'

import { chimeDataUri } from '@/live/chime'
import { bookingPaidMessage, moneyNewsMessage } from '@/live/notifications'
import { SseParser } from '@/live/sse'

describe('SseParser', () => {
  it('gives back each complete message, whatever the chunks', () => {
    const parser = new SseParser()
    const text = 'retry: 3000\n\nevent: ready\nid: 3:0-0\ndata: {"clinic_codes":["demo"]}\n\n: heartbeat\n\n' +
      'event: booking_paid\nid: 3:1700000000000-0\ndata: {"order_no":"B1"}\n\n'
    const messages = [...text].flatMap((c) => parser.feed(c))
    expect(messages.map((m) => [m.event, m.id, m.retry])).toEqual([
      ['message', null, 3000], ['ready', '3:0-0', null], ['booking_paid', '3:1700000000000-0', null]])
    expect(JSON.parse(messages[2].data)).toEqual({ order_no: 'B1' })
  })

  it('keeps an unfinished message for the next chunk and reads CRLF lines', () => {
    const parser = new SseParser()
    expect(parser.feed('event: late_payment\r\ndata: {"a"')).toEqual([])
    expect(parser.feed(':1}\r\n\r\n')).toEqual([{ event: 'late_payment', id: null, data: '{"a":1}', retry: null }])
  })

  it('joins data lines and skips comment-only blocks', () => {
    const parser = new SseParser()
    expect(parser.feed(': only a comment\n\ndata: a\ndata: b\n\n')).toEqual([
      { event: 'message', id: null, data: 'a\nb', retry: null }])
  })
})

describe('the pop-ups', () => {
  it('say what was booked, when, for how much, and its order number', () => {
    expect(bookingPaidMessage({ order_no: 'B20261205103000123456', item: '洁牙套餐', amount_fen: 19900,
      appointment_at: '2026-12-06T01:00:00+00:00' })).toBe('洁牙套餐 · 2026-12-06 09:00 · ¥199.00（B20261205103000123456）')
    expect(moneyNewsMessage({ type: 'discrepancy_found', id: null, data: { date: '2026-12-04', source: 'wechat',
      open: 2 } })).toBe('2026-12-04 wechat 对账：2 条待处理')
  })
})

describe('the chime', () => {
  it('is a small PCM WAV in a data URI', () => {
    const uri = chimeDataUri()
    expect(uri.startsWith('data:audio/wav;base64,')).toBe(true)
    const bytes = Uint8Array.from(atob(uri.split(',')[1]), (c) => c.charCodeAt(0))
    expect(String.fromCharCode(...bytes.slice(0, 4), ...bytes.slice(8, 16))).toBe('RIFFWAVEfmt ')
    const view = new DataView(bytes.buffer)
    expect(view.getUint32(24, true)).toBe(8000)
    expect(view.getUint32(40, true)).toBe(bytes.length - 44)
    expect(bytes.length).toBeLessThan(4000)
  })
})
