import { fileURLToPath, URL } from 'node:url'

import vue from '@vitejs/plugin-vue'
import type { Plugin } from 'vite'
import { defineConfig } from 'vitest/config'

// Vant's icon font is inlined as woff2, with a woff fallback on a CDN. The pages never load anything from a third
// party (the sandbox runs offline, and the page's Content-Security-Policy allows fonts only from itself and data:),
// so the fallback is dropped from the stylesheet.
function noRemoteFonts(): Plugin {
  const remote = /,\s*url\((?:https?:)?\/\/[^)]*\)\s*format\(["']woff["']\)/g
  return {
    name: 'h5-no-remote-fonts',
    enforce: 'pre',
    transform(code, id) {
      return id.includes('/vant/') && id.endsWith('.css') ? code.replace(remote, '') : null
    },
  }
}

// Served by the sandbox world at /h5/ (mini_program_mock/h5/__init__.py). `npm run dev` proxies the sandbox's
// own paths (/sandbox/, /h5/config.json) to a running `make run`; the platform is called across origins.
export default defineConfig({
  base: '/h5/',
  plugins: [noRemoteFonts(), vue()],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  server: { proxy: { '/sandbox': 'http://127.0.0.1:8100', '/h5/config.json': 'http://127.0.0.1:8100' } },
  test: { environment: 'happy-dom', include: ['tests/**/*.test.ts'] },
})
