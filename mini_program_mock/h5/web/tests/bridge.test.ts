import { describe, expect, it, vi } from 'vitest'

import type { PayResult } from '@/api/types'
import {
  type AlipayJSBridgeLike, type PaymentRequest, type WeixinJSBridgeLike, chooseBridge, sandboxBridge, sandboxReference,
} from '@/payment/bridge'

const wechatPay: PayResult = {
  channel: 'wechat', out_trade_no: 'P1',
  pay_params: { timeStamp: '1700000000', nonceStr: 'n0nce', package: 'prepay_id=wx2017prepay', signType: 'MD5', paySign: 'SIGN' },
}
const alipayPay: PayResult = { channel: 'alipay', out_trade_no: 'P2', trade_no: '2024070922001' }

function request(pay: PayResult): PaymentRequest {
  return { channel: pay.channel, orderNo: 'O1', amountFen: 12345, title: '就诊卡充值', appId: 'wx-app', pay }
}

function weixin(errMsg: string): WeixinJSBridgeLike & { calls: unknown[][] } {
  const calls: unknown[][] = []
  return { calls, invoke: (name, args, cb) => { calls.push([name, args]); cb({ err_msg: errMsg }) } }
}

function alipay(resultCode: string): AlipayJSBridgeLike & { calls: unknown[][] } {
  const calls: unknown[][] = []
  return { calls, call: (name, args, cb) => { calls.push([name, args]); cb({ resultCode }) } }
}

describe('choosing the bridge', () => {
  const fallback = () => sandboxBridge(async () => 'pay', { pay: async () => {} })

  it('uses WeChat’s in-app bridge for a WeChat payment inside WeChat', () => {
    expect(chooseBridge('wechat', { WeixinJSBridge: weixin('x') }, fallback).kind).toBe('weixin')
  })

  it('uses the sandbox stand-in in a plain browser', () => {
    expect(chooseBridge('wechat', {}, fallback).kind).toBe('sandbox')
    expect(chooseBridge('alipay', {}, fallback).kind).toBe('sandbox')
  })

  it('never sends an Alipay payment to WeChat’s bridge (nor the reverse)', () => {
    expect(chooseBridge('alipay', { WeixinJSBridge: weixin('x') }, fallback).kind).toBe('sandbox')
    expect(chooseBridge('wechat', { AlipayJSBridge: alipay('9000') }, fallback).kind).toBe('sandbox')
    expect(chooseBridge('alipay', { AlipayJSBridge: alipay('9000') }, fallback).kind).toBe('alipay')
  })
})

describe('WeChat’s in-app bridge', () => {
  it('calls getBrandWCPayRequest with the platform’s signed parameters and the app id', async () => {
    const js = weixin('get_brand_wcpay_request:ok')
    const outcome = await chooseBridge('wechat', { WeixinJSBridge: js }, () => { throw new Error('no') }).requestPayment(request(wechatPay))
    expect(outcome).toBe('ok')
    expect(js.calls).toEqual([['getBrandWCPayRequest', {
      appId: 'wx-app', timeStamp: '1700000000', nonceStr: 'n0nce', package: 'prepay_id=wx2017prepay', signType: 'MD5',
      paySign: 'SIGN',
    }]])
  })

  it('tells a cancelled sheet from a failed payment', async () => {
    const pay = (msg: string) => chooseBridge('wechat', { WeixinJSBridge: weixin(msg) }, () => { throw new Error() })
      .requestPayment(request(wechatPay))
    expect(await pay('get_brand_wcpay_request:cancel')).toBe('cancel')
    expect(await pay('get_brand_wcpay_request:fail')).toBe('fail')
    expect(await pay('')).toBe('fail')
  })
})

describe('Alipay’s in-app bridge', () => {
  it('pays the trade number and reads the result codes', async () => {
    const pay = async (code: string) => {
      const js = alipay(code)
      const outcome = await chooseBridge('alipay', { AlipayJSBridge: js }, () => { throw new Error() }).requestPayment(request(alipayPay))
      expect(js.calls).toEqual([['tradePay', { tradeNO: '2024070922001' }]])
      return outcome
    }
    expect(await pay('9000')).toBe('ok')
    expect(await pay('8000')).toBe('unknown')
    expect(await pay('6001')).toBe('cancel')
    expect(await pay('4000')).toBe('fail')
  })
})

describe('the sandbox stand-in', () => {
  it('shows the sheet, then tells the sandbox WeChat the prepay id was paid', async () => {
    const pay = vi.fn(async () => {})
    const confirm = vi.fn(async () => 'pay' as const)
    const outcome = await sandboxBridge(confirm, { pay }).requestPayment(request(wechatPay))
    expect(outcome).toBe('ok')
    expect(confirm).toHaveBeenCalledWith(expect.objectContaining({ amountFen: 12345, title: '就诊卡充值' }))
    expect(pay).toHaveBeenCalledWith('wechat', 'wx2017prepay', 'success')
  })

  it('pays an Alipay trade by its trade number', async () => {
    const pay = vi.fn(async () => {})
    expect(await sandboxBridge(async () => 'pay', { pay }).requestPayment(request(alipayPay))).toBe('ok')
    expect(pay).toHaveBeenCalledWith('alipay', '2024070922001', 'success')
  })

  it('tells the sandbox nothing when the patient cancels', async () => {
    const pay = vi.fn(async () => {})
    expect(await sandboxBridge(async () => 'cancel', { pay }).requestPayment(request(wechatPay))).toBe('cancel')
    expect(pay).not.toHaveBeenCalled()
  })

  it('reports a failed payment to the sandbox as a failure', async () => {
    const pay = vi.fn(async () => {})
    expect(await sandboxBridge(async () => 'fail', { pay }).requestPayment(request(alipayPay))).toBe('fail')
    expect(pay).toHaveBeenCalledWith('alipay', '2024070922001', 'fail')
  })

  it('refuses before showing a sheet when the platform sent nothing to pay', async () => {
    const confirm = vi.fn(async () => 'pay' as const)
    const bare: PayResult = { channel: 'wechat', out_trade_no: 'P3' }
    await expect(sandboxBridge(confirm, { pay: async () => {} }).requestPayment(request(bare))).rejects.toThrow(/prepay_id/)
    expect(confirm).not.toHaveBeenCalled()
    expect(() => sandboxReference(request({ channel: 'alipay', out_trade_no: 'P4' }))).toThrow(/trade_no/)
  })

  it('propagates a refusal of the sandbox (a trade already closed)', async () => {
    const pay = vi.fn(async () => { throw new Error('trade closed') })
    await expect(sandboxBridge(async () => 'pay', { pay }).requestPayment(request(wechatPay))).rejects.toThrow('trade closed')
  })
})
