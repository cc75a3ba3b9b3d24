// An item form as a person fills it (prices typed in yuan) and the body the API takes (fen, only what applies).
import { fenToYuanInput, yuanToFen } from '@/format/money'

export type Channel = 'wechat' | 'alipay'

export interface ItemDraft {
  code: string
  name: string
  description: string
  price: string
  kind: 'item' | 'package'
  channels: Channel[]
  collected_by: 'clinic' | 'platform'
  purchase: Record<Channel, string>
  active: boolean
}

export interface ItemLike {
  code: string
  name: string
  description?: string | null
  price_fen: number
  kind: string
  channels: string[]
  collected_by: string
  purchase_price_fen: Record<string, number>
  active: boolean
}

export function emptyItem(): ItemDraft {
  return { code: '', name: '', description: '', price: '', kind: 'item', channels: ['wechat', 'alipay'],
    collected_by: 'clinic', purchase: { wechat: '', alipay: '' }, active: true }
}

export function draftOf(item: ItemLike): ItemDraft {
  return { code: item.code, name: item.name, description: item.description ?? '', price: fenToYuanInput(item.price_fen),
    kind: item.kind as ItemDraft['kind'], channels: [...item.channels] as Channel[],
    collected_by: item.collected_by as ItemDraft['collected_by'],
    purchase: { wechat: fenToYuanInput(item.purchase_price_fen.wechat), alipay: fenToYuanInput(item.purchase_price_fen.alipay) },
    active: item.active }
}

export interface ItemBody {
  code?: string
  name: string
  description: string | null
  price_fen: number
  kind: 'item' | 'package'
  channels: Channel[]
  collected_by: 'clinic' | 'platform'
  purchase_price_fen: Partial<Record<Channel, number>> | null
  active: boolean
}

/** The body, or the first thing wrong with the form (in words). */
export function itemBody(draft: ItemDraft, { withCode }: { withCode: boolean }): ItemBody | string {
  if (withCode && !draft.code.trim()) return '请填写编号'
  if (!draft.name.trim()) return '请填写名称'
  const price = yuanToFen(draft.price)
  if (price === null || price < 1) return '价格须为大于 0 的金额（元，最多两位小数）'
  if (!draft.channels.length) return '请至少选择一个渠道'
  let purchase: Partial<Record<Channel, number>> | null = null
  if (draft.collected_by === 'platform') {
    purchase = {}
    for (const channel of draft.channels) {
      const fen = yuanToFen(draft.purchase[channel])
      if (fen === null) return `平台代收须填写${channel === 'wechat' ? '微信' : '支付宝'}渠道的采购价（元）`
      purchase[channel] = fen
    }
  }
  return { ...(withCode ? { code: draft.code.trim() } : {}), name: draft.name.trim(),
    description: draft.description.trim() || null, price_fen: price, kind: draft.kind, channels: [...draft.channels],
    collected_by: draft.collected_by, purchase_price_fen: purchase, active: draft.active }
}
