// Small helpers the screens share: the API's message as a toast, one Idempotency-Key per submitted body.
import { showFailToast } from 'vant'

import { ApiError } from '@/api/http'
import { randomToken } from '@/ids'

// The API's stable error codes in the patient's words; any other refusal shows the API's own message.
const ERROR_TEXT: Record<string, string> = {
  sms_code_invalid: '验证码不正确',
  sms_code_expired: '验证码已失效，请重新获取',
  sms_code_tries_exceeded: '错误次数过多，请重新获取验证码',
  sms_rate_limited: '验证码发送太频繁',
  sms_unavailable: '短信暂时发送不了，请稍后再试',
  his_unavailable: '医院系统暂时无法访问，请稍后再试',
  his_rejected: '医院系统未受理，请核对信息',
  channel_unavailable: '支付渠道暂时无法访问，请稍后再试',
  card_not_found: '没有找到这张就诊卡',
  card_verification_required: '这张卡需要重新验证后才能使用',
  patient_not_found: '没有找到这位就诊人',
  order_not_found: '没有找到这个订单',
  slot_sold_out: '该时段已约满，请换一个时段',
  refund_exceeds_balance: '退款金额超过了卡内余额',
  refund_exceeds_online_topups: '退款金额超过了通过本小程序在线充值、尚未退回的金额',
  refund_exceeds_refundable_orders: '退款金额超过了可原路退回的充值金额',
  rate_limited: '操作太频繁，请稍后再试',
}

export function messageOf(exc: unknown): string {
  if (exc instanceof ApiError) {
    const text = (exc.code && ERROR_TEXT[exc.code]) || exc.message
    const tries = exc.details && typeof exc.details.tries_left === 'number' ? `（还可尝试 ${exc.details.tries_left} 次）` : ''
    const wait = exc.retryAfterS ? `（请 ${exc.retryAfterS} 秒后再试）` : ''
    return `${text}${tries}${wait}`
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
