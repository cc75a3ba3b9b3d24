// Small helpers the screens share: the API's message as a toast, one Idempotency-Key per submitted body.
import { showFailToast } from 'vant'

import { ApiError } from '@/api/http'
import { randomToken } from '@/ids'

export function messageOf(exc: unknown): string {
  if (exc instanceof ApiError) {
    const tries = exc.details && typeof exc.details.tries_left === 'number' ? `（还可尝试 ${exc.details.tries_left} 次）` : ''
    const wait = exc.retryAfterS ? `（请 ${exc.retryAfterS} 秒后再试）` : ''
    return `${exc.message}${tries}${wait}`
  }
  return exc instanceof Error ? exc.message : String(exc)
}

export function failToast(exc: unknown): void {
  showFailToast({ message: messageOf(exc), wordBreak: 'break-word', duration: 3000 })
}

/** The same key while the body stays the same (a retry after a lost answer), a new one for another body. */
export function idempotencyKeys(): { keyFor: (body: unknown) => string; reset: () => void } {
  let body = ''
  let key = ''
  return {
    keyFor(next: unknown) {
      const text = JSON.stringify(next)
      if (text !== body || !key) {
        body = text
        key = randomToken(32)
      }
      return key
    },
    reset() {
      body = ''
      key = ''
    },
  }
}
