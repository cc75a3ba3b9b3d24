import { api, call, type Schemas } from '@/api'
import { confirmAndRun } from '@/composables/useAction'
import { channelName } from '@/format/labels'
import { formatFen } from '@/format/money'

import type { Statement } from './statements'

/** Mark a statement checked (核对), after asking; the checked statement, or undefined. */
export function checkStatement(statement: Statement): Promise<Schemas['Statement'] | undefined> {
  return confirmAndRun({
    confirm: { title: '核对对账单', confirmText: '标记为已核对',
      message: `对账单 #${statement.id}（${statement.month} ${channelName(statement.channel)}，${statement.line_count} 笔，${formatFen(statement.total_fen)}）已与诊所报表逐笔核对无误？核对后才能结算。` },
    run: () => call(api.POST('/api/admin/v1/statements/{statement_id}/check', {
      params: { path: { statement_id: statement.id } } })),
    success: '已核对',
  })
}
