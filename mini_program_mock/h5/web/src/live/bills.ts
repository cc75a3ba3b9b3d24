// Visit bills "arriving live" on the card page. Today the page polls the card's unpaid bills every few seconds
// while the page is open and the tab visible; when the platform pushes new bills (API.md: the HIS announces a bill,
// the platform pushes a subscribe message), a push feed implements the same BillFeed and the page does not change.
import type { Bill } from '@/api/types'

export type BillsListener = (bills: Bill[]) => void

export interface BillFeed {
  /** Call `listener` with the card's unpaid bills now and whenever they change; returns the unsubscribe. */
  watch(cardNo: string, listener: BillsListener, onError?: (error: unknown) => void): () => void
}

export interface PollingOptions {
  intervalMs?: number
  /** Whether the page is visible (a hidden tab is not polled; it catches up when shown). */
  visible?: () => boolean
  setTimer?: (fn: () => void, ms: number) => unknown
  clearTimer?: (handle: unknown) => void
}

function sameBills(a: Bill[] | null, b: Bill[]): boolean {
  return !!a && a.length === b.length && a.every((bill, n) => bill.bill_id === b[n].bill_id && bill.amount_fen === b[n].amount_fen)
}

export function pollingBillFeed(read: (cardNo: string) => Promise<Bill[]>, options: PollingOptions = {}): BillFeed {
  const intervalMs = options.intervalMs ?? 3000
  const visible = options.visible ?? (() => typeof document === 'undefined' || document.visibilityState !== 'hidden')
  const setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms))
  const clearTimer = options.clearTimer ?? ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>))
  return {
    watch(cardNo, listener, onError) {
      let stopped = false
      let timer: unknown = null
      let last: Bill[] | null = null
      const tick = async () => {
        timer = null
        if (stopped) return
        if (visible()) {
          try {
            const bills = await read(cardNo)
            if (!stopped && !sameBills(last, bills)) {
              last = bills
              listener(bills)
            }
          } catch (error) {
            if (!stopped) onError?.(error)
          }
        }
        if (!stopped) timer = setTimer(tick, intervalMs)
      }
      void tick()
      return () => {
        stopped = true
        if (timer !== null) clearTimer(timer)
      }
    },
  }
}
