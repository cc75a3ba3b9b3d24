// Which platform, clinic and channel the page talks to. Defaults come from the sandbox's /h5/config.json;
// the query string (`?clinic=demo&channel=alipay&platform=http://127.0.0.1:8000`) overrides them, and the
// result is kept for this tab (sessionStorage), so in-app navigation and reloads keep it.

export type Channel = 'wechat' | 'alipay'

export interface H5Config {
  /** The sandbox world (this page's own server): login codes, the payment stand-in, the SMS inbox. */
  sandboxUrl: string
  /** The platform whose mini-program API (/api/mp/v1) the page calls, across origins. */
  platformUrl: string
  clinic: string
  channel: Channel
}

export const CONFIG_KEY = 'h5.config'
const CLINIC = /^[A-Za-z0-9_-]{1,32}$/

function httpUrl(value: unknown): string | null {
  if (typeof value !== 'string' || !value) return null
  try {
    const url = new URL(value)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null
    return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
  } catch {
    return null
  }
}

function channel(value: unknown): Channel | null {
  return value === 'wechat' || value === 'alipay' ? value : null
}

function clinic(value: unknown): string | null {
  return typeof value === 'string' && CLINIC.test(value) ? value : null
}

/** Layers, later ones winning field by field; a value that is not valid is ignored, never half-used. */
export function resolveConfig(origin: string, ...layers: Record<string, unknown>[]): H5Config {
  const config: H5Config = { sandboxUrl: origin, platformUrl: 'http://127.0.0.1:8000', clinic: 'demo', channel: 'wechat' }
  for (const layer of layers) {
    config.sandboxUrl = httpUrl(layer.sandbox_url ?? layer.sandboxUrl) ?? config.sandboxUrl
    config.platformUrl = httpUrl(layer.platform_url ?? layer.platformUrl ?? layer.platform) ?? config.platformUrl
    config.clinic = clinic(layer.clinic ?? layer.clinic_code) ?? config.clinic
    config.channel = channel(layer.channel) ?? config.channel
  }
  return config
}

function parseStored(text: string | null): Record<string, unknown> {
  try {
    const value = text ? JSON.parse(text) : {}
    return value && typeof value === 'object' ? value : {}
  } catch {
    return {}
  }
}

/** The page's configuration: config.json, then what this tab chose before, then the query string. */
export async function loadConfig(fetchImpl: typeof fetch = fetch): Promise<H5Config> {
  let served: Record<string, unknown> = {}
  try {
    const resp = await fetchImpl(`${import.meta.env.BASE_URL}config.json`, { cache: 'no-store' })
    if (resp.ok) served = await resp.json()
  } catch {
    // Served by `vite dev` without the sandbox: the built-in defaults.
  }
  const query = Object.fromEntries(new URLSearchParams(window.location.search))
  const config = resolveConfig(window.location.origin, served, parseStored(sessionStorage.getItem(CONFIG_KEY)), query)
  saveConfig(config)
  return config
}

export function saveConfig(config: H5Config): void {
  sessionStorage.setItem(CONFIG_KEY, JSON.stringify(config))
}
