// How the page asks the phone to pay. A mini-program calls wx.requestPayment / my.tradePay; an H5 page inside
// WeChat calls WeixinJSBridge's getBrandWCPayRequest (inside Alipay, AlipayJSBridge's tradePay); in a plain browser
// the sandbox's stand-in shows the payment sheet and tells the sandbox channel what the patient chose.
import type { Channel } from '@/config'
import type { PayResult } from '@/api/types'

/** ok: the channel took the money (the platform learns it from the channel's notification); unknown: the channel
 * could not say yet (keep asking the platform); cancel: the patient closed the sheet; fail: the channel refused. */
export type PayOutcome = 'ok' | 'unknown' | 'cancel' | 'fail'

export interface PaymentRequest {
  channel: Channel
  orderNo: string
  amountFen: number
  title: string
  /** The app the payment is for (WeChat's JSAPI needs it beside the platform's pay_params). */
  appId: string
  pay: PayResult
}

export interface PaymentBridge {
  readonly kind: 'sandbox' | 'weixin' | 'alipay'
  requestPayment(request: PaymentRequest): Promise<PayOutcome>
}

export interface WeixinJSBridgeLike {
  invoke(name: string, args: Record<string, string>, callback: (result: { err_msg?: string }) => void): void
}

export interface AlipayJSBridgeLike {
  call(name: string, args: Record<string, string>, callback: (result: { resultCode?: string }) => void): void
}

export interface BridgeHost { WeixinJSBridge?: WeixinJSBridgeLike; AlipayJSBridge?: AlipayJSBridgeLike }

/** WeChat's in-app browser: getBrandWCPayRequest with the platform's signed JSAPI parameters. */
export function weixinBridge(jsBridge: WeixinJSBridgeLike): PaymentBridge {
  return {
    kind: 'weixin',
    requestPayment(request) {
      const params = request.pay.pay_params
      if (!params) return Promise.reject(new Error('the platform sent no WeChat payment parameters'))
      const args = { appId: params.appId ?? request.appId, timeStamp: params.timeStamp, nonceStr: params.nonceStr,
        package: params.package, signType: params.signType, paySign: params.paySign }
      return new Promise((resolve) => {
        jsBridge.invoke('getBrandWCPayRequest', args, (result) => {
          const message = result?.err_msg ?? ''
          resolve(message.endsWith(':ok') ? 'ok' : message.endsWith(':cancel') ? 'cancel' : 'fail')
        })
      })
    },
  }
}

// https://opendocs.alipay.com: 9000 paid, 8000 / 6004 result unknown (ask the server), 6001 cancelled by the user.
const ALIPAY_RESULTS: Record<string, PayOutcome> = { '9000': 'ok', '8000': 'unknown', '6004': 'unknown', '6001': 'cancel' }

/** Alipay's in-app browser: tradePay with the trade number the platform created. */
export function alipayBridge(jsBridge: AlipayJSBridgeLike): PaymentBridge {
  return {
    kind: 'alipay',
    requestPayment(request) {
      const tradeNo = request.pay.trade_no
      if (!tradeNo) return Promise.reject(new Error('the platform sent no Alipay trade number'))
      return new Promise((resolve) => {
        jsBridge.call('tradePay', { tradeNO: tradeNo }, (result) => resolve(ALIPAY_RESULTS[result?.resultCode ?? ''] ?? 'fail'))
      })
    },
  }
}

export type SheetAnswer = 'pay' | 'cancel' | 'fail'

export interface SandboxPayer {
  pay(channel: Channel, reference: string, outcome: 'success' | 'fail'): Promise<void>
}

/** The reference the sandbox channel knows the payment by: the prepay id (WeChat) or the trade number (Alipay). */
export function sandboxReference(request: PaymentRequest): string {
  const reference = request.channel === 'wechat'
    ? request.pay.pay_params?.package?.replace(/^prepay_id=/, '')
    : request.pay.trade_no
  if (!reference) throw new Error(`the platform sent no ${request.channel === 'wechat' ? 'prepay_id' : 'trade_no'}`)
  return reference
}

/** The sandbox's stand-in: `confirm` shows the sheet; the patient's answer goes to the sandbox channel, which
 * records the trade and notifies the platform as the real channel would. Closing the sheet tells nobody. */
export function sandboxBridge(confirm: (request: PaymentRequest) => Promise<SheetAnswer>, sandbox: SandboxPayer): PaymentBridge {
  return {
    kind: 'sandbox',
    async requestPayment(request) {
      const reference = sandboxReference(request)
      const answer = await confirm(request)
      if (answer === 'cancel') return 'cancel'
      await sandbox.pay(request.channel, reference, answer === 'pay' ? 'success' : 'fail')
      return answer === 'pay' ? 'ok' : 'fail'
    },
  }
}

/** The phone's own bridge when the page runs inside that channel's app, else the sandbox's stand-in. */
export function chooseBridge(channel: Channel, host: BridgeHost, fallback: () => PaymentBridge): PaymentBridge {
  if (channel === 'wechat' && host.WeixinJSBridge) return weixinBridge(host.WeixinJSBridge)
  if (channel === 'alipay' && host.AlipayJSBridge) return alipayBridge(host.AlipayJSBridge)
  return fallback()
}
