import { readFileSync } from 'node:fs'
import { fileURLToPath, URL } from 'node:url'

import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vitest/config'

// The admin API paths of the committed OpenAPI document, so that the console calls an endpoint that may not
// exist yet (POST /auth/logout) only once the API publishes it.
const spec = JSON.parse(readFileSync(new URL('./openapi.json', import.meta.url), 'utf-8')) as { paths: object }

// Served by Flask at /admin/ (app/console.py); `npm run dev` proxies the API to a running `make run`.
export default defineConfig({
  base: '/admin/',
  define: { __API_PATHS__: JSON.stringify(Object.keys(spec.paths)) },
  plugins: [vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  server: { proxy: { '/api': 'http://127.0.0.1:8000' } },
  test: { environment: 'happy-dom', include: ['tests/**/*.test.ts'] },
})
