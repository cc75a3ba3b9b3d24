import { createRouter, createWebHistory, type RouteComponent, type RouteRecordRaw } from 'vue-router'

import { isSignedIn, session } from '@/auth/session'
import { landingFor, SCREENS } from '@/nav/menu'
import NoScreens from '@/views/NoScreens.vue'

type Lazy = () => Promise<RouteComponent>

// One component per screen of nav/menu.ts, loaded when first shown (ECharts only with the dashboard).
const COMPONENTS: Record<string, Lazy> = {
  'bookings-pending': () => import('@/views/staff/PendingBookings.vue'),
  'bookings-today': () => import('@/views/staff/TodayBookings.vue'),
  'bookings-search': () => import('@/views/staff/SearchBookings.vue'),
  transactions: () => import('@/views/support/TransactionsView.vue'),
  'order-story': () => import('@/views/support/OrderStory.vue'),
  'finance-dashboard': () => import('@/views/finance/DashboardView.vue'),
  'reconciliation-runs': () => import('@/views/finance/ReconciliationRuns.vue'),
  'reconciliation-run': () => import('@/views/finance/RunDiscrepancies.vue'),
  statements: () => import('@/views/finance/StatementsView.vue'),
  statement: () => import('@/views/finance/StatementLines.vue'),
  settlements: () => import('@/views/finance/SettlementsView.vue'),
  items: () => import('@/views/admin/ItemsView.vue'),
  'item-schedule': () => import('@/views/admin/ItemSchedule.vue'),
  users: () => import('@/views/admin/UsersView.vue'),
  clinics: () => import('@/views/platform/ClinicsView.vue'),
  clinic: () => import('@/views/platform/ClinicSetup.vue'),
  'platform-apps': () => import('@/views/platform/PlatformApps.vue'),
  'refund-approvals': () => import('@/views/finance/RefundApprovals.vue'),
  'channel-orders': () => import('@/views/finance/ChannelOrdersReport.vue'),
  coupons: () => import('@/views/finance/CouponsView.vue'),
  claims: () => import('@/views/finance/ClaimsView.vue'),
  'daily-files': () => import('@/views/finance/DailyFiles.vue'),
  payouts: () => import('@/views/finance/SettlementsView.vue'),
  'settlement-types': () => import('@/views/admin/SettlementTypes.vue'),
  inventory: () => import('@/views/admin/InventoryView.vue'),
  audit: () => import('@/views/admin/AuditEvents.vue'),
  'ops-queues': () => import('@/views/ops/QueuesView.vue'),
  'ops-flagged': () => import('@/views/ops/FlaggedWrites.vue'),
  'message-templates': () => import('@/views/setup/MessageTemplates.vue'),
}

const screens: RouteRecordRaw[] = SCREENS.map((screen) => ({
  path: screen.path,
  name: screen.name,
  component: COMPONENTS[screen.name],
  meta: { title: screen.title, screen: screen.name },
}))

const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('@/views/LoginView.vue'), meta: { public: true, title: '登录' } },
  {
    path: '/',
    component: () => import('@/components/AppShell.vue'),
    children: [
      // Resolved after the sign-in check (a redirect would be resolved before it, without a user).
      { path: '', name: 'home', component: NoScreens, beforeEnter: () => ({ name: landingFor(session.user?.role) }) },
      ...screens,
      { path: 'no-screens', name: 'no-screens', component: NoScreens, meta: { title: '暂无可用页面' } },
      { path: ':pathMatch(.*)*', name: 'not-found', component: () => import('@/views/NotFound.vue'), meta: { title: '页面不存在' } },
    ],
  },
]

export const router = createRouter({ history: createWebHistory(import.meta.env.BASE_URL), routes })

router.beforeEach((to) => {
  if (to.meta.public) return isSignedIn() && to.name === 'login' ? { name: 'home' } : true
  if (!isSignedIn()) return { name: 'login', query: to.fullPath === '/' ? {} : { redirect: to.fullPath } }
  return true
})

router.afterEach((to) => {
  document.title = `${(to.meta.title as string | undefined) ?? '管理后台'} · 诊所支付平台`
})
