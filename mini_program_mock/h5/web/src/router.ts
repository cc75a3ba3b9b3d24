import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'

// Screens that carry the bottom tab bar (the mini-program's tabBar pages).
export const TABS = [
  { path: '/', title: '首页', icon: 'home-o' },
  { path: '/book', title: '预约', icon: 'calendar-o' },
  { path: '/orders', title: '订单', icon: 'orders-o' },
  { path: '/me', title: '我的', icon: 'user-o' },
]

const routes: RouteRecordRaw[] = [
  { path: '/', component: () => import('./views/HomeView.vue'), meta: { title: '演示诊所', tab: true } },
  { path: '/patients/new', component: () => import('./views/PatientNewView.vue'), meta: { title: '添加就诊人' } },
  { path: '/patients/:id(\\d+)', component: () => import('./views/PatientView.vue'), meta: { title: '就诊人' } },
  { path: '/patients/:id(\\d+)/bind', component: () => import('./views/CardBindView.vue'), meta: { title: '绑定就诊卡' } },
  { path: '/cards/:cardNo', component: () => import('./views/CardView.vue'), meta: { title: '就诊卡' } },
  { path: '/cards/:cardNo/topup', component: () => import('./views/TopUpView.vue'), meta: { title: '就诊卡充值' } },
  { path: '/cards/:cardNo/refund', component: () => import('./views/RefundView.vue'), meta: { title: '余额退款' } },
  { path: '/book', component: () => import('./views/BookView.vue'), meta: { title: '预约服务', tab: true } },
  { path: '/book/:itemId(\\d+)', component: () => import('./views/BookSlotView.vue'), meta: { title: '选择时间' } },
  { path: '/orders', component: () => import('./views/OrdersView.vue'), meta: { title: '我的订单', tab: true } },
  { path: '/orders/:orderNo', component: () => import('./views/OrderView.vue'), meta: { title: '订单详情' } },
  { path: '/me', component: () => import('./views/MeView.vue'), meta: { title: '我的', tab: true } },
  { path: '/messages', component: () => import('./views/MessagesView.vue'), meta: { title: '消息' } },
  { path: '/sandbox/sms', component: () => import('./views/SmsInboxView.vue'), meta: { title: '沙箱短信收件箱' } },
  { path: '/:rest(.*)*', redirect: '/' },
]

export const router = createRouter({ history: createWebHistory(import.meta.env.BASE_URL), routes })
