import type { Schemas } from '@/api'

export type Statement = Schemas['Statement']

// The export's columns (app/services/statement_export.py EXPORT_FIELDS): the API names them only in the
// description of `fields`, so they are listed here, in the export's own order.
export const EXPORT_FIELDS: { key: string; label: string }[] = [
  { key: 'channel_trade_no', label: '渠道订单号' },
  { key: 'order_no', label: '平台订单号' },
  { key: 'out_trade_no', label: '商户订单号' },
  { key: 'patient', label: '患者' },
  { key: 'patient_phone', label: '患者手机号' },
  { key: 'item', label: '项目' },
  { key: 'appointment_at', label: '预约时间' },
  { key: 'redeemed_at', label: '核销时间' },
  { key: 'payment_method', label: '支付方式' },
  { key: 'purchase_price', label: '渠道采购价' },
  { key: 'amount', label: '金额' },
]
