// The API's codes in Chinese, for people; the codes themselves stay in the data.

const ORDER_STATUS: Record<string, string> = {
  created: '待支付', paid: '待确认', completed: '已完成', booked: '已确认', redeemed: '已核销', no_show: '爽约',
  rescheduled: '已改期', cancelled: '已取消', closed: '已关闭', refunding: '退款中', refunded: '已退款',
  partially_refunded: '部分退款',
}
const CHANNEL: Record<string, string> = { wechat: '微信支付', alipay: '支付宝' }
const ORDER_TYPE: Record<string, string> = { booking: '预约', topup: '就诊卡充值', visit_bill: '诊间缴费' }
const SOURCE: Record<string, string> = { wechat: '微信支付', alipay: '支付宝', his: 'HIS' }
const RUN_STATUS: Record<string, string> = { running: '对账中', done: '已完成', failed: '失败' }
const DISCREPANCY_TYPE: Record<string, string> = {
  missing_on_platform: '平台缺单（渠道有）', missing_at_channel: '渠道缺单（平台有）', amount_mismatch: '金额不符',
  status_mismatch: '状态不符', missing_in_his: 'HIS 缺记录', unknown_in_his: 'HIS 多记录',
}
const DISCREPANCY_STATUS: Record<string, string> = {
  open: '待处理', held: '暂挂（等次日账单）', repaired: '已自动修复', resolved: '已处理',
}
const RESOLUTION: Record<string, string> = { trust_channel: '以渠道为准', trust_platform: '以平台为准', ignore: '忽略' }
const STATEMENT_STATUS: Record<string, string> = { generated: '已生成', checked: '已核对', settled: '已结算' }
const SETTLEMENT_METHOD: Record<string, string> = { cash: '现金结算', coupon: '代金券' }
const SETTLEMENT_STATUS: Record<string, string> = { pending_payment: '待打款', completed: '已完成', paid: '已打款' }
const INVOICE_TYPE: Record<string, string> = { normal: '普通发票', special: '增值税专用发票' }
const INVOICE_STATUS: Record<string, string> = { awaiting: '待收票', received: '已收票' }
const COUPON_STATUS: Record<string, string> = { unused: '未使用', used: '已使用', expired: '已过期' }
const CLAIM_STATUS: Record<string, string> = { open: '待追回', settled: '已了结' }
const ROLE: Record<string, string> = { staff: '前台', finance: '财务', admin: '管理员', operator: '平台运营' }
const SYNC_STATUS: Record<string, string> = { pending: '同步中', done: '已同步', stopped: '已停止' }
// Payment attempts (pending, paid, closed) and refund parts (waiting, pending, processing, succeeded, failed).
const TRANSACTION_STATUS: Record<string, string> = {
  pending: '未完成', paid: '已支付', closed: '已关闭', waiting: '等待中', processing: '退款中', succeeded: '已成功',
  failed: '失败',
}
const RECORD: Record<string, string> = {
  order: '订单', 'payment attempt': '支付', refund: '退款', 'refund request': '退款申请', 'HIS write': 'HIS 写入',
  'inbox notification': '渠道通知',
}
const EXTRA_STATUS: Record<string, string> = { pending: '待开单', created: '已开单', rejected: '被拒绝', flagged: '需人工处理' }
const HIS_WRITE_KIND: Record<string, string> = {
  recharge: '充值入账', bill_settlement: '缴费结算', registration: '挂号', registration_revert: '退号', charge: '核销记账',
  extra_charge: '额外收费开单', refund_hold: '退款冻结', refund_restore: '退款解冻',
  bill_settlement_reversal: '冲销缴费结算', charge_adjustment: '冲减核销记账',
}
const HIS_WRITE_STATUS: Record<string, string> = { pending: '待发送', sent: '已写入', rejected: '被拒绝', flagged: '需人工处理' }
const QUEUE: Record<string, string> = { notifications: '渠道通知', his: 'HIS 写入', channel: '渠道查询与退款', default: '其他任务' }
const WORK: Record<string, string> = {
  inbox: '通知收件箱', his_outbox: 'HIS 写入', payment_queries: '待查询支付', expired_orders: '过期未付订单', refunds: '退款',
  no_shows: '爽约标记', registration_syncs: '挂号同步', message_pushes: '消息推送',
}
// Message templates of a channel app: what each is for, and the facts a keyword may show (app/domain/messaging.py).
const MESSAGE_PURPOSE: Record<string, string> = {
  bill_created: '待缴费通知', payment_succeeded: '支付成功通知', refund_succeeded: '退款成功通知',
}
const MESSAGE_FACT: Record<string, string> = {
  title: '账单名称', amount: '金额', time: '时间', clinic: '诊所名称', card_no: '就诊卡号', bill_kind: '账单类型',
  bill_id: '账单号', order_no: '订单号', status: '退款状态',
}

// Refund requests (staff refunds wait for finance above the approval threshold).
const REFUND_REQUEST_STATUS: Record<string, string> = {
  awaiting_approval: '待审批', processing: '退款中', succeeded: '已退款', failed: '失败', partially_failed: '部分失败',
  rejected: '已驳回',
}
const ATTACHMENT_KIND: Record<string, string> = { panoramic_xray: '全景片', xray: 'X 光片', photo: '照片', other: '其他' }

function label(table: Record<string, string>) {
  return (code: string | null | undefined): string => (code ? (table[code] ?? code) : '—')
}

export const orderStatus = label(ORDER_STATUS)
export const channelName = label(CHANNEL)
export const orderType = label(ORDER_TYPE)
export const sourceName = label(SOURCE)
export const runStatus = label(RUN_STATUS)
export const discrepancyType = label(DISCREPANCY_TYPE)
export const discrepancyStatus = label(DISCREPANCY_STATUS)
export const resolutionName = label(RESOLUTION)
export const statementStatus = label(STATEMENT_STATUS)
export const settlementMethod = label(SETTLEMENT_METHOD)
export const settlementStatus = label(SETTLEMENT_STATUS)
export const invoiceType = label(INVOICE_TYPE)
export const invoiceStatus = label(INVOICE_STATUS)
export const couponStatus = label(COUPON_STATUS)
export const claimStatus = label(CLAIM_STATUS)
export const roleName = label(ROLE)
export const syncStatus = label(SYNC_STATUS)
export const extraChargeStatus = label(EXTRA_STATUS)
export const hisWriteKind = label(HIS_WRITE_KIND)
export const hisWriteStatus = label(HIS_WRITE_STATUS)
export const queueName = label(QUEUE)
export const workName = label(WORK)
export const transactionStatus = label(TRANSACTION_STATUS)
export const recordName = label(RECORD)
export const refundRequestStatus = label(REFUND_REQUEST_STATUS)
export const attachmentKind = label(ATTACHMENT_KIND)
export const ATTACHMENT_KINDS = Object.keys(ATTACHMENT_KIND)
export const messagePurpose = label(MESSAGE_PURPOSE)
export const messageFact = label(MESSAGE_FACT)

export const CHANNELS = Object.keys(CHANNEL)
export const SOURCES = Object.keys(SOURCE)
export const ORDER_STATUSES = Object.keys(ORDER_STATUS)
export const DISCREPANCY_TYPES = Object.keys(DISCREPANCY_TYPE)
export const DISCREPANCY_STATUSES = Object.keys(DISCREPANCY_STATUS)
export const RESOLUTIONS = Object.keys(RESOLUTION)
export const STATEMENT_STATUSES = Object.keys(STATEMENT_STATUS)
export const TRANSACTION_STATUSES = Object.keys(TRANSACTION_STATUS)
export const COUPON_STATUSES = Object.keys(COUPON_STATUS)

/** Element Plus tag colours by status. */
export function statusTone(status: string): 'success' | 'warning' | 'danger' | 'info' | 'primary' {
  if (['redeemed', 'done', 'resolved', 'repaired', 'settled', 'completed', 'checked', 'succeeded', 'sent',
    'processed', 'received', 'unused'].includes(status)) return 'success'
  if (['paid', 'open', 'running', 'refunding', 'pending_payment', 'held', 'processing', 'awaiting_approval',
    'awaiting'].includes(status)) return 'warning'
  if (['no_show', 'failed', 'cancelled', 'rejected', 'flagged'].includes(status)) return 'danger'
  if (['booked', 'rescheduled', 'generated'].includes(status)) return 'primary'
  return 'info'
}
