// Silent sign-in, as a mini-program calls wx.login / my.getAuthCode at launch: a one-time code from the sandbox's
// stand-in, exchanged at POST /api/mp/v1/auth/login for our token. The user is stable per browser (an openid /
// Alipay user id kept in localStorage, so a reload is the same patient account); the token lives in this tab
// (sessionStorage). "Switch user" makes a new id, for demos with several accounts.
import { reactive } from 'vue'

import { PlatformClient } from '@/api/http'
import { SandboxClient } from '@/api/sandbox'
import type { LoginResult, MpUser } from '@/api/types'
import { type Channel, type H5Config, loadConfig, saveConfig } from '@/config'
import { randomDigits, randomToken } from '@/ids'

export const USER_KEY_PREFIX = 'h5.user.'
const SESSION_KEY = 'h5.session'
const EXPIRY_MARGIN_MS = 60_000

interface StoredSession { key: string; token: string; expiresAt: number; user: MpUser; appId: string }

export const state = reactive({
  config: null as H5Config | null,
  token: null as string | null,
  user: null as MpUser | null,
  appId: '',
  phase: 'starting' as 'starting' | 'ready' | 'failed',
  error: '',
})

function config(): H5Config {
  if (!state.config) throw new Error('the page has not loaded its configuration yet')
  return state.config
}

export const sandbox = new SandboxClient(() => config().sandboxUrl)
export const platform = new PlatformClient({
  baseUrl: () => `${config().platformUrl}/api/mp/v1`,
  token: () => state.token,
  reauthenticate: () => signIn(true),
})

/** A new id of the channel's own shape: WeChat openids are 28 characters from "o", Alipay user ids 2088 + 12 digits. */
export function newUserId(channel: Channel): string {
  return channel === 'wechat' ? `o${randomToken(27)}` : `2088${randomDigits(12)}`
}

/** This browser's user on the channel, made on first use. */
export function userId(channel: Channel): string {
  const key = USER_KEY_PREFIX + channel
  let id = localStorage.getItem(key)
  if (!id) {
    id = newUserId(channel)
    localStorage.setItem(key, id)
  }
  return id
}

function sessionKey(cfg: H5Config): string {
  return [cfg.platformUrl, cfg.clinic, cfg.channel, userId(cfg.channel)].join('|')
}

function restore(cfg: H5Config): boolean {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null') as StoredSession | null
    if (stored && stored.key === sessionKey(cfg) && stored.expiresAt - EXPIRY_MARGIN_MS > Date.now()) {
      Object.assign(state, { token: stored.token, user: stored.user, appId: stored.appId })
      return true
    }
  } catch {
    // Not ours or not JSON: sign in afresh.
  }
  return false
}

let signingIn: Promise<void> | null = null

async function login(cfg: H5Config): Promise<void> {
  const appId = await sandbox.appId(cfg.channel, cfg.clinic)
  const code = await sandbox.loginCode(cfg.channel, appId, userId(cfg.channel))
  const result = await platform.json<LoginResult>('/auth/login', {
    method: 'POST', body: { clinic_code: cfg.clinic, channel: cfg.channel, code }, noReauth: true,
  })
  Object.assign(state, { token: result.token, user: result.user, appId })
  const stored: StoredSession = { key: sessionKey(cfg), token: result.token, user: result.user, appId,
    expiresAt: Date.now() + result.expires_in * 1000 }
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(stored))
}

/** Sign in (once at a time); `force` replaces a session that the platform refused. */
export function signIn(force = false): Promise<void> {
  if (!signingIn) {
    const cfg = config()
    signingIn = (async () => {
      if (!force && restore(cfg)) return
      state.token = null
      await login(cfg)
    })().finally(() => { signingIn = null })
  }
  return signingIn
}

/** Launch: read the configuration, then sign in silently. */
export async function start(): Promise<void> {
  try {
    state.config = await loadConfig()
    await signIn()
    state.phase = 'ready'
  } catch (exc) {
    state.phase = 'failed'
    state.error = exc instanceof Error ? exc.message : String(exc)
  }
}

async function relaunch(): Promise<void> {
  state.phase = 'starting'
  try {
    await signIn(true)
    state.phase = 'ready'
  } catch (exc) {
    state.phase = 'failed'
    state.error = exc instanceof Error ? exc.message : String(exc)
  }
}

/** The channel switch: the same page as the clinic's WeChat or Alipay mini-program (another account). */
export async function switchChannel(channel: Channel): Promise<void> {
  const cfg = config()
  if (cfg.channel === channel) return
  cfg.channel = channel
  saveConfig(cfg)
  await relaunch()
}

/** A new patient account on this channel (for demos); the old one stays on the platform. */
export async function switchUser(): Promise<void> {
  localStorage.setItem(USER_KEY_PREFIX + config().channel, newUserId(config().channel))
  await relaunch()
}
