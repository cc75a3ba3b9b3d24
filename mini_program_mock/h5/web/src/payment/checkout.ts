// Paying an order end to end: the platform starts the payment, the bridge asks the phone, then the page waits for
// the platform to hear from the channel (a top-up or a bill completes once the HIS recorded it).
import { getOrder, startPayment } from '@/api/mp'
import type { Order } from '@/api/types'
import { sandbox, state } from '@/session'

import { type PaymentBridge, chooseBridge, sandboxBridge } from './bridge'
import { askToPay } from './sheet'

export type CheckoutResult =
  | { outcome: 'done'; order: Order }
  | { outcome: 'pending'; order: Order }
  | { outcome: 'cancel' | 'fail'; order: Order }

/** Whether the order has gone as far as the patient waits for. */
export function finished(order: Order): boolean {
  if (order.type === 'booking') return order.status !== 'created'
  return order.status !== 'created' && order.status !== 'paid'
}

export interface WaitOptions { timeoutMs?: number; intervalMs?: number; sleep?: (ms: number) => Promise<void> }

const sleepFor = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Re-read the order until `done` says so or the time is up; the last reading either way. */
export async function waitForOrder(read: () => Promise<Order>, done: (order: Order) => boolean,
  { timeoutMs = 30_000, intervalMs = 800, sleep = sleepFor }: WaitOptions = {}): Promise<{ order: Order; done: boolean }> {
  let waited = 0
  for (;;) {
    const order = await read()
    if (done(order)) return { order, done: true }
    if (waited >= timeoutMs) return { order, done: false }
    await sleep(intervalMs)
    waited += intervalMs
  }
}

export function currentBridge(channel: Order['channel']): PaymentBridge {
  return chooseBridge(channel, window as unknown as Parameters<typeof chooseBridge>[1],
    () => sandboxBridge(askToPay, sandbox))
}

export async function checkout(order: Order, title: string, options: WaitOptions = {}): Promise<CheckoutResult> {
  const pay = await startPayment(order.order_no)
  const outcome = await currentBridge(order.channel).requestPayment({
    channel: order.channel, orderNo: order.order_no, amountFen: order.amount_fen, title, appId: state.appId, pay,
  })
  if (outcome === 'cancel' || outcome === 'fail') return { outcome, order }
  const result = await waitForOrder(() => getOrder(order.order_no), finished, options)
  return { outcome: result.done ? 'done' : 'pending', order: result.order }
}
