import { describe, expect, it } from 'vitest'

import { canUse, landingFor, menuFor, SCREENS } from '@/nav/menu'

const titles = (role: string | null) => menuFor(role).flatMap((group) => group.items.map((item) => item.name))

describe('role-based navigation', () => {
  it('staff see the front desk and the payment search only', () => {
    expect(menuFor('staff').map((g) => g.title)).toEqual(['前台', '查询'])
    expect(titles('staff')).toEqual(['bookings-pending', 'bookings-today', 'bookings-search', 'transactions'])
  })

  it('finance see the finance screens and the payment search only', () => {
    expect(menuFor('finance').map((g) => g.title)).toEqual(['查询', '财务'])
    expect(titles('finance')).toEqual(['transactions', 'finance-dashboard', 'reconciliation-runs', 'statements',
      'settlements', 'refund-approvals', 'channel-orders', 'coupons', 'claims', 'daily-files'])
  })

  it('an order\'s story is reached from a list, by staff and finance', () => {
    expect(titles('admin')).not.toContain('order-story')
    expect(canUse('staff', 'order-story') && canUse('finance', 'order-story')).toBe(true)
  })

  it('admins see every screen of their clinics, but none of the platform\'s', () => {
    expect(menuFor('admin').map((g) => g.title)).toEqual(['前台', '查询', '财务', '诊所设置', '运维'])
    expect(titles('admin')).toEqual(SCREENS.filter((s) => s.inMenu && s.group !== 'platform').map((s) => s.name))
    for (const name of ['clinics', 'clinic', 'platform-apps']) expect(canUse('admin', name)).toBe(false)
  })

  it('the operator sees the platform\'s screens and the users it manages, nothing of a clinic\'s data', () => {
    expect(menuFor('operator').map((g) => g.title)).toEqual(['诊所设置', '平台运营'])
    expect(titles('operator')).toEqual(['users', 'clinics', 'platform-apps', 'payouts'])
    expect(canUse('operator', 'clinic')).toBe(true)
    for (const name of ['bookings-pending', 'transactions', 'finance-dashboard', 'items', 'item-schedule', 'audit',
      'ops-queues']) expect(canUse('operator', name)).toBe(false)
  })

  it('items and their schedules are the admin\'s; staff and finance have neither', () => {
    expect(canUse('admin', 'item-schedule')).toBe(true)
    expect(titles('admin')).not.toContain('item-schedule')
    for (const role of ['staff', 'finance']) {
      for (const name of ['items', 'item-schedule', 'users', 'clinics']) expect(canUse(role, name)).toBe(false)
    }
  })

  it('the operator pays the clinics\' cash settlements; a clinic role may not', () => {
    expect(titles('operator')).toContain('payouts')
    for (const role of ['staff', 'finance', 'admin']) expect(canUse(role, 'payouts')).toBe(false)
  })

  it('screens reached from a list are never in the menu but are usable by the same roles', () => {
    expect(titles('admin')).not.toContain('reconciliation-run')
    expect(canUse('finance', 'reconciliation-run')).toBe(true)
    expect(canUse('staff', 'statement')).toBe(false)
  })

  it('a role may not use what is not in its menu', () => {
    expect(canUse('staff', 'finance-dashboard')).toBe(false)
    expect(canUse('finance', 'bookings-pending')).toBe(false)
    expect(canUse('finance', 'audit')).toBe(false)
    expect(canUse('staff', 'audit')).toBe(false)
    expect(canUse('staff', 'refund-approvals')).toBe(false)
    expect(canUse('admin', 'audit')).toBe(true)
    for (const role of ['staff', 'finance']) {
      expect(canUse(role, 'ops-queues')).toBe(false)
      expect(canUse(role, 'ops-flagged')).toBe(false)
    }
    expect(canUse('admin', 'ops-flagged')).toBe(true)
  })

  it('unknown or missing roles see nothing and land on the empty page', () => {
    for (const role of ['patient', '', null, undefined]) {
      expect(menuFor(role)).toEqual([])
      expect(landingFor(role)).toBe('no-screens')
    }
    expect(canUse(null, 'bookings-pending')).toBe(false)
  })

  it('each role lands where its work is', () => {
    expect(landingFor('staff')).toBe('bookings-pending')
    expect(landingFor('finance')).toBe('finance-dashboard')
    expect(landingFor('admin')).toBe('items')
    expect(landingFor('operator')).toBe('clinics')
    for (const role of ['staff', 'finance', 'admin', 'operator']) expect(canUse(role, landingFor(role))).toBe(true)
  })
})
