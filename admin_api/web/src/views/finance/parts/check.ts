import { ElMessage } from 'element-plus'
import { ref } from 'vue'

import { api, ApiError, call, type Schemas } from '@/api'
import { confirmAndRun } from '@/composables/useAction'
import { channelName } from '@/format/labels'
import { formatFen } from '@/format/money'

import type { Statement } from './statements'

/** One line where the statement and the clinic's own report disagree (POST /statements/{id}/check, 409). */
export interface Difference {
  kind: 'missing_in_report' | 'missing_in_statement' | 'price_differs'
  channel_trade_no: string
  order_no: string
  statement_price_fen: number | null
  report_price_fen: number | null
}

export interface Differences {
  statement: Statement
  message: string
  count: number
  items: Difference[]
}

export const DIFFERENCE_KIND: Record<Difference['kind'], string> = {
  missing_in_report: '报表中没有（对账单多出）',
  missing_in_statement: '对账单中没有（报表多出）',
  price_differs: '采购价不一致',
}

/** The differences the last refused check found; the screens show them in DifferencesDialog. */
export const lastDifferences = ref<Differences | null>(null)

/**
 * Check a statement (核对) after asking: the API compares it line by line with the clinic's own report and
 * marks it checked only when they agree. The checked statement, or undefined (declined, refused: a refusal
 * with differences leaves them in `lastDifferences`).
 */
export async function checkStatement(statement: Statement): Promise<Schemas['Statement'] | undefined> {
  let refusedWithDifferences = false
  const checked = await confirmAndRun({
    confirm: { title: '核对对账单', confirmText: '与报表核对',
      message: `对账单 #${statement.id}（${statement.month} ${channelName(statement.channel)}，${statement.line_count} 笔，${formatFen(statement.total_fen)}）将与诊所的渠道订单报表逐笔核对（渠道订单号、采购价），一致才标记为已核对。` },
    run: async () => {
      try {
        return await call(api.POST('/api/admin/v1/statements/{statement_id}/check', {
          params: { path: { statement_id: statement.id } } }))
      } catch (failure) {
        if (failure instanceof ApiError && failure.code === 'statement_differs') {
          const fields = (failure.fields ?? {}) as { differences?: Difference[]; difference_count?: number }
          lastDifferences.value = { statement, message: failure.message, count: fields.difference_count ?? 0,
            items: fields.differences ?? [] }
          refusedWithDifferences = true
          return undefined
        }
        throw failure
      }
    },
  })
  if (checked) ElMessage.success('已核对')
  return refusedWithDifferences ? undefined : checked
}
