import { describe, expect, it } from 'vitest'

import { formatTime, previousMonth, shanghaiDate, shanghaiInputToIso } from '@/format/time'

describe('times in Asia/Shanghai', () => {
  it('shows a UTC moment as Shanghai wall time, whatever zone the browser is in', () => {
    expect(formatTime('2026-12-05T16:30:00+00:00')).toBe('2026-12-06 00:30')
    expect(formatTime('2026-12-05T16:30:09Z', { seconds: true })).toBe('2026-12-06 00:30:09')
    expect(formatTime(null)).toBe('—')
  })

  it('dates a moment by its Shanghai day', () => {
    expect(shanghaiDate(new Date('2026-12-05T15:59:59Z'))).toBe('2026-12-05')
    expect(shanghaiDate(new Date('2026-12-05T16:00:00Z'))).toBe('2026-12-06')
  })

  it('sends a picked Shanghai time with its offset', () => {
    expect(shanghaiInputToIso('2026-12-06 09:30')).toBe('2026-12-06T09:30:00+08:00')
    expect(() => shanghaiInputToIso('tomorrow')).toThrow(RangeError)
  })

  it('knows the month before', () => {
    expect(previousMonth('2026-01')).toBe('2025-12')
    expect(previousMonth('2026-12')).toBe('2026-11')
  })
})
