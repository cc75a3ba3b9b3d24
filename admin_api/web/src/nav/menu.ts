// Every screen of the console, who may use it and where it sits in the menu. The router is built from
// this list and the menu shows only what the signed-in role may use; a screen added later (the clinic
// set-up screens of the operator and admin API) is one entry here and one component in router.ts.
// The API still refuses what a role may not do: this only keeps people away from screens they cannot use.

export type Role = 'staff' | 'finance' | 'admin' | 'operator'

export interface Screen {
  name: string
  path: string
  title: string
  group: GroupKey
  roles: readonly Role[]
  /** false for screens reached from another screen (a run's discrepancies, a statement's lines) */
  inMenu: boolean
}

export type GroupKey = 'desk' | 'support' | 'finance' | 'setup' | 'ops' | 'platform'

export const GROUPS: Record<GroupKey, string> = {
  desk: '前台',
  support: '查询',
  finance: '财务',
  setup: '诊所设置',
  ops: '运维',
  platform: '平台运营',
}

// `admin` may do everything in its clinics (admin_api/security.py): it sees every screen but the platform's.
const DESK: readonly Role[] = ['staff', 'admin']
const FINANCE: readonly Role[] = ['finance', 'admin']
const ADMIN: readonly Role[] = ['admin']
// Answering a patient's call about a payment: the front desk and finance alike.
const SUPPORT: readonly Role[] = ['staff', 'finance', 'admin']
// The platform's operator onboards clinics and their channel apps; it never sees a clinic's own data.
const OPERATOR: readonly Role[] = ['operator']
// Users: an admin manages its clinics' users, the operator the clinics' admins (the API says whom).
const USER_MANAGERS: readonly Role[] = ['admin', 'operator']

export const SCREENS: readonly Screen[] = [
  { name: 'bookings-pending', path: 'bookings/pending', title: '待确认预约', group: 'desk', roles: DESK, inMenu: true },
  { name: 'bookings-today', path: 'bookings/today', title: '今日预约', group: 'desk', roles: DESK, inMenu: true },
  { name: 'bookings-search', path: 'bookings/search', title: '预约查询', group: 'desk', roles: DESK, inMenu: true },
  { name: 'transactions', path: 'support/transactions', title: '交易查询', group: 'support', roles: SUPPORT, inMenu: true },
  { name: 'order-story', path: 'orders/:orderNo([A-Z][0-9]{20})', title: '订单详情', group: 'support', roles: SUPPORT, inMenu: false },
  { name: 'finance-dashboard', path: 'finance/dashboard', title: '收入概览', group: 'finance', roles: FINANCE, inMenu: true },
  { name: 'reconciliation-runs', path: 'finance/reconciliation', title: '对账', group: 'finance', roles: FINANCE, inMenu: true },
  { name: 'reconciliation-run', path: 'finance/reconciliation/:runId(\\d+)', title: '对账差异', group: 'finance', roles: FINANCE, inMenu: false },
  { name: 'statements', path: 'finance/statements', title: '月度对账单', group: 'finance', roles: FINANCE, inMenu: true },
  { name: 'statement', path: 'finance/statements/:statementId(\\d+)', title: '对账单明细', group: 'finance', roles: FINANCE, inMenu: false },
  { name: 'settlements', path: 'finance/settlements', title: '结算记录', group: 'finance', roles: FINANCE, inMenu: true },
  { name: 'refund-approvals', path: 'finance/refund-approvals', title: '待审批退款', group: 'finance', roles: FINANCE, inMenu: true },
  { name: 'channel-orders', path: 'finance/channel-orders', title: '渠道订单报表', group: 'finance', roles: FINANCE, inMenu: true },
  { name: 'coupons', path: 'finance/coupons', title: '代金券', group: 'finance', roles: FINANCE, inMenu: true },
  { name: 'claims', path: 'finance/claims', title: '渠道索赔', group: 'finance', roles: FINANCE, inMenu: true },
  { name: 'daily-files', path: 'finance/daily-files', title: '日对账文件', group: 'finance', roles: FINANCE, inMenu: true },
  { name: 'items', path: 'setup/items', title: '项目与套餐', group: 'setup', roles: ADMIN, inMenu: true },
  { name: 'item-schedule', path: 'setup/items/:itemId(\\d+)/schedule', title: '排班', group: 'setup', roles: ADMIN, inMenu: false },
  { name: 'users', path: 'setup/users', title: '用户管理', group: 'setup', roles: USER_MANAGERS, inMenu: true },
  { name: 'settlement-types', path: 'setup/settlement-types', title: '结算类型', group: 'setup', roles: ADMIN, inMenu: true },
  { name: 'inventory', path: 'setup/inventory', title: '渠道库存', group: 'setup', roles: ADMIN, inMenu: true },
  { name: 'audit', path: 'setup/audit', title: '审计日志', group: 'setup', roles: ADMIN, inMenu: true },
  // Queues and stuck work (admin_api/ops.py): an admin sees its clinics' rows; the platform-wide view is the
  // operator's once the operator API admits it.
  { name: 'ops-queues', path: 'ops/queues', title: '任务队列', group: 'ops', roles: ADMIN, inMenu: true },
  { name: 'ops-flagged', path: 'ops/flagged', title: '待处理 HIS 写入', group: 'ops', roles: ADMIN, inMenu: true },
  { name: 'clinics', path: 'platform/clinics', title: '诊所', group: 'platform', roles: OPERATOR, inMenu: true },
  { name: 'clinic', path: 'platform/clinics/:code([A-Za-z0-9][A-Za-z0-9_-]{0,31})', title: '诊所接入', group: 'platform', roles: OPERATOR, inMenu: false },
  { name: 'platform-apps', path: 'platform/channel-apps', title: '平台收款应用', group: 'platform', roles: OPERATOR, inMenu: true },
  // The operator pays the clinics' cash settlements (the settlements screen, every clinic's, with the payout).
  { name: 'payouts', path: 'platform/payouts', title: '结算打款', group: 'platform', roles: OPERATOR, inMenu: true },
  // A channel app's message templates, reached from the app (the operator's channel apps, an admin's clinic): the
  // operator sets any app's, an admin its clinics' (admin_api/message_templates.py).
  { name: 'message-templates', path: 'setup/channel-apps/:appId(\\d+)/message-templates', title: '消息模板', group: 'setup',
    roles: ['operator', 'admin'], inMenu: false },
]

const LANDING: Record<Role, string> = {
  staff: 'bookings-pending',
  finance: 'finance-dashboard',
  admin: 'items',
  operator: 'clinics',
}

export function screenByName(name: string): Screen | undefined {
  return SCREENS.find((screen) => screen.name === name)
}

export function canUse(role: string | null | undefined, screenName: string): boolean {
  const screen = screenByName(screenName)
  return Boolean(role && screen && (screen.roles as readonly string[]).includes(role))
}

export interface MenuGroup {
  key: GroupKey
  title: string
  items: { name: string; title: string }[]
}

export function menuFor(role: string | null | undefined): MenuGroup[] {
  return (Object.keys(GROUPS) as GroupKey[])
    .map((key) => ({
      key,
      title: GROUPS[key],
      items: SCREENS.filter((s) => s.group === key && s.inMenu && canUse(role, s.name))
        .map((s) => ({ name: s.name, title: s.title })),
    }))
    .filter((group) => group.items.length > 0)
}

/** The route name a role starts on after signing in. */
export function landingFor(role: string | null | undefined): string {
  return (role && LANDING[role as Role]) || 'no-screens'
}
