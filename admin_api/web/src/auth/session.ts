// The signed-in user, their bearer token and the clinic they work on, kept in sessionStorage: one tab's
// session, gone when the tab closes. The API's tokens expire (expires_in); an expired one is dropped on load.
import { reactive } from 'vue'

import type { Role } from '@/nav/menu'

export interface StaffUser {
  id: number
  username: string
  role: Role | string
  clinic_codes: string[]
}

interface Stored {
  token: string
  expiresAt: number
  user: StaffUser
  clinic: string | null
}

const KEY = 'hpay.console.session'

export const session = reactive({
  token: null as string | null,
  expiresAt: 0,
  user: null as StaffUser | null,
  clinic: null as string | null,
})

function persist(): void {
  if (session.token && session.user) {
    const stored: Stored = { token: session.token, expiresAt: session.expiresAt, user: session.user,
      clinic: session.clinic }
    sessionStorage.setItem(KEY, JSON.stringify(stored))
  } else {
    sessionStorage.removeItem(KEY)
  }
}

export function restoreSession(now: number = Date.now()): void {
  const raw = sessionStorage.getItem(KEY)
  if (!raw) return
  try {
    const stored = JSON.parse(raw) as Stored
    if (stored.token && stored.user && stored.expiresAt > now) {
      Object.assign(session, stored)
      return
    }
  } catch {
    // a damaged entry is as good as none
  }
  sessionStorage.removeItem(KEY)
}

export function signIn(token: string, expiresInS: number, user: StaffUser, now: number = Date.now()): void {
  session.token = token
  session.expiresAt = now + expiresInS * 1000
  session.user = user
  session.clinic = user.clinic_codes[0] ?? null
  persist()
}

export function signOut(): void {
  session.token = null
  session.expiresAt = 0
  session.user = null
  session.clinic = null
  persist()
}

export function pickClinic(code: string): void {
  if (session.user?.clinic_codes.includes(code)) {
    session.clinic = code
    persist()
  }
}

export function isSignedIn(now: number = Date.now()): boolean {
  return Boolean(session.token && session.user && session.expiresAt > now)
}

/** The `clinic_code` every clinic-scoped call sends: the picked clinic. */
export function clinicQuery(): { clinic_code?: string } {
  return session.clinic ? { clinic_code: session.clinic } : {}
}
