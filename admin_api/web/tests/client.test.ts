import { describe, expect, it, vi } from 'vitest'

import { ApiError, call, makeClient, toApiError } from '@/api/client'

function respond(status: number, body: unknown): typeof fetch {
  return vi.fn(async () => new Response(body === undefined ? null : JSON.stringify(body), {
    status, headers: { 'Content-Type': 'application/json' } })) as unknown as typeof fetch
}

function client(fetch: typeof globalThis.fetch, token: string | null = 'tok-1') {
  const onUnauthorized = vi.fn()
  return { api: makeClient({ baseUrl: 'http://console.test', fetch, token: () => token, onUnauthorized }), onUnauthorized }
}

describe('the admin API client', () => {
  it('sends the bearer token and answers with the data', async () => {
    const fetch = respond(200, { id: 1, username: 'desk', role: 'staff', clinic_codes: ['demo'] })
    const { api } = client(fetch)

    const me = await call(api.GET('/api/admin/v1/auth/me'))

    expect(me.username).toBe('desk')
    const request = (fetch as unknown as { mock: { calls: [Request][] } }).mock.calls[0][0]
    expect(request.headers.get('Authorization')).toBe('Bearer tok-1')
    expect(new URL(request.url).pathname).toBe('/api/admin/v1/auth/me')
  })

  it('on 401 ends the session (back to sign-in) and throws', async () => {
    const { api, onUnauthorized } = client(respond(401, { message: 'the session expired', error: 'token_expired' }))

    const failure = await call(api.GET('/api/admin/v1/bookings', { params: { query: {} } })).catch((e) => e)

    expect(onUnauthorized).toHaveBeenCalledOnce()
    expect(failure).toBeInstanceOf(ApiError)
    expect(failure.status).toBe(401)
  })

  it('a wrong password at sign-in is an error to show, not an expired session', async () => {
    const { api, onUnauthorized } = client(respond(401, { message: 'wrong username or password', error: 'bad_credentials' }), null)

    const failure = await call(api.POST('/api/admin/v1/auth/login', { body: { username: 'a', password: 'b' } }))
      .catch((e) => e)

    expect(onUnauthorized).not.toHaveBeenCalled()
    expect(failure.message).toBe('wrong username or password')
  })

  it("surfaces the API's own message and error code when it refuses", async () => {
    const { api, onUnauthorized } = client(respond(409, {
      message: 'a redeemed booking cannot be confirmed', error: 'invalid_transition' }))

    const failure = await call(api.POST('/api/admin/v1/bookings/{order_no}/no-show', {
      params: { path: { order_no: 'B1' } } })).catch((e) => e)

    expect(failure).toBeInstanceOf(ApiError)
    expect([failure.status, failure.code, failure.message]).toEqual([409, 'invalid_transition',
      'a redeemed booking cannot be confirmed'])
    expect(onUnauthorized).not.toHaveBeenCalled()
  })

  it('names the fields of a 422', () => {
    const failure = toApiError(422, { message: 'The request is not valid; see `errors` for each field.',
      error: 'validation_failed', errors: { json: { appointment_at: ['already over'] } } })
    expect(failure.message).toContain('appointment_at: already over')
    expect(failure.fields).toEqual({ json: { appointment_at: ['already over'] } })
  })

  it('gives a plain Chinese message when the body is not the API error format', async () => {
    const html = vi.fn(async () => new Response('<h1>Bad Gateway</h1>', { status: 502 })) as unknown as typeof fetch
    const failure = await call(client(html).api.GET('/api/admin/v1/auth/me')).catch((e) => e)
    expect([failure.status, failure.message]).toEqual([502, '服务器出错，请稍后重试'])
  })

  it('turns a network failure into an ApiError with status 0', async () => {
    const offline = vi.fn(async () => { throw new TypeError('Failed to fetch') }) as unknown as typeof fetch
    const failure = await call(client(offline).api.GET('/api/admin/v1/auth/me')).catch((e) => e)
    expect(failure).toBeInstanceOf(ApiError)
    expect([failure.status, failure.message]).toEqual([0, '无法连接服务器，请检查网络后重试'])
  })
})
