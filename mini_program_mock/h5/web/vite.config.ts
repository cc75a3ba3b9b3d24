import { fileURLToPath, URL } from 'node:url'

import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vitest/config'

// Served by the sandbox world at /h5/ (mini_program_mock/h5/__init__.py). `npm run dev` proxies the sandbox's
// own paths (/sandbox/, /h5/config.json) to a running `make run`; the platform is called across origins.
export default defineConfig({
  base: '/h5/',
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  server: { proxy: { '/sandbox': 'http://127.0.0.1:8100', '/h5/config.json': 'http://127.0.0.1:8100' } },
  test: { environment: 'happy-dom', include: ['tests/**/*.test.ts'] },
})
