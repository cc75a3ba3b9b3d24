// The stand-in payment sheet's state: one request at a time, answered by the patient's tap.
import { reactive } from 'vue'

import type { PaymentRequest, SheetAnswer } from './bridge'

export const sheet = reactive({ open: false, request: null as PaymentRequest | null })
let answerWith: ((answer: SheetAnswer) => void) | null = null

export function askToPay(request: PaymentRequest): Promise<SheetAnswer> {
  answerWith?.('cancel')
  sheet.request = request
  sheet.open = true
  return new Promise((resolve) => { answerWith = resolve })
}

export function answerSheet(answer: SheetAnswer): void {
  const resolve = answerWith
  answerWith = null
  sheet.open = false
  resolve?.(answer)
}
