import 'element-plus/dist/index.css'
import './styles.css'

import ElementPlus from 'element-plus'
import zhCn from 'element-plus/es/locale/lang/zh-cn'
import { createApp } from 'vue'

import { handleUnauthorized } from '@/api'
import App from '@/App.vue'
import { restoreSession, signOut } from '@/auth/session'
import { router } from '@/router'

restoreSession()

// The session ended (expired or revoked): back to the sign-in page, then on to where the user was.
handleUnauthorized(() => {
  signOut()
  const current = router.currentRoute.value
  if (current.name !== 'login') {
    void router.replace({ name: 'login', query: { redirect: current.fullPath, expired: '1' } })
  }
})

createApp(App).use(ElementPlus, { locale: zhCn }).use(router).mount('#app')
