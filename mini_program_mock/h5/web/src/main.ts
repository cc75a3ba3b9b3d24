import 'vant/lib/index.css'
import './styles.css'

import Vant from 'vant'
import { createApp } from 'vue'

import App from './App.vue'
import { router } from './router'
import { start } from './session'

createApp(App).use(Vant).use(router).mount('#app')
void start()
