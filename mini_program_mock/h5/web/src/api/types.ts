// The mini-program API's shapes (/api/mp/v1; the contract in API.md, the details in the platform's /openapi.json).
import type { Channel } from '@/config'

export interface MpUser { id: number; channel: Channel; openid: string }
export interface LoginResult { token: string; expires_in: number; user: MpUser }

export interface CardRef { card_no: string; patient_id: number; verified: boolean }
export interface Patient {
  id: number
  name: string
  phone: string
  id_number?: string | null
  relation?: string | null
  cards: CardRef[]
}
export interface NewPatient { name: string; phone: string; id_number?: string | null; relation?: string | null }
export interface CodeSent { verification: 'sms'; sent_to: string; expires_in: number }
export interface Card { card_no: string; patient_id: number; balance_fen: number }
export interface Bill { bill_id: string; kind: string; title: string; amount_fen: number }

export interface Item { id: number; code: string; name: string; description?: string | null; price_fen: number; channels: string[] }
export interface Slot { id: number; starts_at: string; ends_at: string; remaining: number }

export interface Payment {
  out_trade_no: string
  channel: Channel
  status: string
  amount_fen: number
  channel_trade_no?: string | null
  late?: boolean
}
export interface Order {
  order_no: string
  type: 'booking' | 'topup' | 'visit_bill'
  status: string
  amount_fen: number
  refunded_fen: number
  channel: Channel
  created_at: string
  expires_at: string
  paid_at?: string | null
  appointment_at?: string | null
  card_no?: string | null
  bill_ids?: string[] | null
  item?: { id: number; code: string; name: string; price_fen: number } | null
  slot?: { id: number; starts_at: string; ends_at: string } | null
  patient?: { id: number; name: string; phone: string } | null
  payments: Payment[]
}
export type NewOrder =
  | { type: 'booking'; item_id: number; slot_id: number; patient_id: number; channel: Channel }
  | { type: 'topup'; card_no: string; amount_fen: number; channel: Channel }
  | { type: 'visit_bill'; card_no: string; bill_ids: string[]; channel: Channel }

export interface WechatPayParams { timeStamp: string; nonceStr: string; package: string; signType: string; paySign: string; appId?: string }
export interface PayResult { channel: Channel; out_trade_no: string; pay_params?: WechatPayParams; trade_no?: string }

export interface RefundPart { order_no: string; refund_no: string; amount_fen: number; status: string; channel?: string }
export interface RefundRequest {
  refund_request_no: string
  origin?: string
  card_no?: string | null
  amount_fen: number
  status: string
  created_at?: string
  parts: RefundPart[]
}

export interface Subscription { template_id: string; purpose: string; allowance: number }
export interface Message {
  id: number
  kind: 'bill_created' | 'bill_cancelled' | string
  title: string
  bill_id: string
  card_no: string
  amount_fen?: number | null
  bill_kind?: string | null
  bill_title?: string | null
  page?: string | null
  created_at: string
  /** null: not pushed (no subscription); else the push's status: pending, sent, refused, failed */
  pushed?: string | null
}
export interface MessagePage { items: Message[]; total: number; limit: number; offset: number }
