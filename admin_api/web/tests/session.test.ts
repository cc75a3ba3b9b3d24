import { beforeEach, describe, expect, it } from 'vitest'

import { clinicQuery, isSignedIn, pickClinic, restoreSession, session, signIn, signOut } from '@/auth/session'

const USER = { id: 7, username: 'finance-1', role: 'finance', clinic_codes: ['north', 'south'] }

describe('the session in sessionStorage', () => {
  beforeEach(() => {
    signOut()
    sessionStorage.clear()
  })

  it('keeps the token until it expires, and starts on the first clinic', () => {
    signIn('tok', 7200, USER, 1_000_000)
    expect(isSignedIn(1_000_000 + 7_199_000)).toBe(true)
    expect(isSignedIn(1_000_000 + 7_200_000)).toBe(false)
    expect(clinicQuery()).toEqual({ clinic_code: 'north' })
  })

  it('comes back after a reload, but not once expired', () => {
    signIn('tok', 60, USER, 1_000_000)
    pickClinic('south')
    Object.assign(session, { token: null, user: null, clinic: null, expiresAt: 0 })

    restoreSession(1_000_000 + 59_000)
    expect([session.token, session.clinic]).toEqual(['tok', 'south'])

    Object.assign(session, { token: null, user: null, clinic: null, expiresAt: 0 })
    restoreSession(1_000_000 + 61_000)
    expect(session.token).toBeNull()
    expect(sessionStorage.length).toBe(0)
  })

  it('picks only a clinic of the user', () => {
    signIn('tok', 60, USER)
    pickClinic('elsewhere')
    expect(session.clinic).toBe('north')
  })

  it('drops a damaged entry', () => {
    sessionStorage.setItem('hpay.console.session', '{not json')
    restoreSession()
    expect(session.token).toBeNull()
    expect(sessionStorage.length).toBe(0)
  })

  it('signing out forgets everything', () => {
    signIn('tok', 60, USER)
    signOut()
    expect([session.token, session.user, isSignedIn()]).toEqual([null, null, false])
    expect(sessionStorage.length).toBe(0)
  })
})
