import { describe, expect, it } from 'vitest'

import { formatFen, ordinaryInvoiceFen, yuanToFen } from '@/format/money'

describe('formatFen', () => {
  it.each([
    [0, '¥0.00'], [1, '¥0.01'], [99, '¥0.99'], [100, '¥1.00'], [2500, '¥25.00'], [123456, '¥1,234.56'],
    [100000000, '¥1,000,000.00'], [-5, '-¥0.05'], [-123456, '-¥1,234.56'],
  ])('%i fen is %s', (fen, text) => {
    expect(formatFen(fen)).toBe(text)
  })

  it('leaves the symbol out on request and shows a dash for no amount', () => {
    expect(formatFen(8000, { symbol: false })).toBe('80.00')
    expect(formatFen(null)).toBe('—')
    expect(formatFen(undefined)).toBe('—')
  })

  it('refuses what is not integer fen rather than rounding it', () => {
    expect(() => formatFen(10.5)).toThrow(RangeError)
  })
})

describe('yuanToFen', () => {
  it.each([['80', 8000], ['80.5', 8050], ['80.05', 8005], ['0.01', 1], ['1,080.50', 108050], [' 12 ', 1200]])(
    '%s yuan is %i fen', (text, fen) => {
      expect(yuanToFen(text)).toBe(fen)
    })

  it.each(['', 'abc', '1.234', '-5', '1e3', '0x10', '.5'])('%s is not an amount', (text) => {
    expect(yuanToFen(text)).toBeNull()
  })

  it('is exact where floating point is not (0.29 * 100 = 28.999…)', () => {
    expect(yuanToFen('0.29')).toBe(29)
    expect(yuanToFen('1.15')).toBe(115)
  })
})

describe('ordinaryInvoiceFen', () => {
  it('is amount / 1.06 rounded half up to the fen, as the platform computes it', () => {
    expect(ordinaryInvoiceFen(10000)).toBe(9434) // 94.3396… -> 94.34
    expect(ordinaryInvoiceFen(106)).toBe(100)
    expect(ordinaryInvoiceFen(53)).toBe(50) // exactly 50: no rounding
    expect(ordinaryInvoiceFen(1)).toBe(1) // 0.943… -> 1
    expect(ordinaryInvoiceFen(0)).toBe(0)
    expect(ordinaryInvoiceFen(3)).toBe(3) // 2.830… -> 3
  })

  it('is the nearest fen for every amount up to ¥200 (no amount lands on half a fen: 100x / 106 never ends in .5)', () => {
    const wrong = []
    for (let fen = 0; fen <= 20000; fen++) {
      if (ordinaryInvoiceFen(fen) !== Math.round((fen * 100) / 106)) wrong.push(fen)
    }
    expect(wrong).toEqual([])
    expect(ordinaryInvoiceFen(111)).toBe(105) // 104.716…
    expect(ordinaryInvoiceFen(112)).toBe(106) // 105.660…
  })

  it('refuses negative or fractional amounts', () => {
    expect(() => ordinaryInvoiceFen(-1)).toThrow(RangeError)
    expect(() => ordinaryInvoiceFen(1.5)).toThrow(RangeError)
  })
})
