// The one client the screens use, with the session's token; and the few calls that are not plain JSON.
import { session } from '@/auth/session'

import { ADMIN_PREFIX, ApiError, call, makeClient, toApiError } from './client'
import type { components, paths } from './schema'

export { ApiError, call }
export type Schemas = components['schemas']
/** The query parameters of a GET path, as the generated types have them. */
export type Query<P extends keyof paths> =
  paths[P] extends { get: { parameters: { query?: infer Q } } } ? NonNullable<Q> : never

let onUnauthorized: () => void = () => {}

export const api = makeClient({
  token: () => session.token,
  onUnauthorized: () => onUnauthorized(),
})

export function handleUnauthorized(handler: () => void): void {
  onUnauthorized = handler
}

const LOGOUT = `${ADMIN_PREFIX}/auth/logout`

/** Whether the admin API this console was built against publishes `path` (openapi.json, at build time). */
export function published(path: string): boolean {
  return __API_PATHS__.includes(path)
}

/** POST /auth/logout revokes the token where the API has it; the session is cleared by the caller either way. */
export async function revokeToken(): Promise<void> {
  if (!session.token || !published(LOGOUT)) return
  try {
    await fetch(LOGOUT, { method: 'POST', headers: { Authorization: `Bearer ${session.token}` } })
  } catch {
    // offline or not offered: the token lapses at its expiry
  }
}

/** Download a file the API makes (a statement export): fetched with the token, saved under the server's name. */
export async function download(path: string, query: Record<string, string>): Promise<string> {
  const url = `${ADMIN_PREFIX}${path}?${new URLSearchParams(query)}`
  let response: Response
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${session.token ?? ''}` } })
  } catch {
    throw toApiError(0, null)
  }
  if (response.status === 401) onUnauthorized()
  if (!response.ok) throw toApiError(response.status, await response.json().catch(() => null))
  const disposition = response.headers.get('Content-Disposition') ?? ''
  const filename = decodeURIComponent(/filename\*=UTF-8''([^;]+)/i.exec(disposition)?.[1]
    ?? /filename="?([^";]+)"?/i.exec(disposition)?.[1] ?? 'export')
  const blob = await response.blob()
  const link = document.createElement('a')
  link.href = URL.createObjectURL(blob)
  link.download = filename
  document.body.appendChild(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000)
  return filename
}

/** A multipart upload (an order attachment): the JSON answer, or the ApiError the API refused it with. */
export async function upload<T>(path: string, form: FormData): Promise<T> {
  let response: Response
  try {
    response = await fetch(`${ADMIN_PREFIX}${path}`, {
      method: 'POST', body: form, headers: { Authorization: `Bearer ${session.token ?? ''}` },
    })
  } catch {
    throw toApiError(0, null)
  }
  if (response.status === 401) onUnauthorized()
  const body = await response.json().catch(() => null)
  if (!response.ok) throw toApiError(response.status, body)
  return body as T
}

/** A file the API serves (an attachment) as an object URL for an <img>; the caller revokes it. */
export async function objectUrl(path: string): Promise<string> {
  const response = await fetch(`${ADMIN_PREFIX}${path}`, { headers: { Authorization: `Bearer ${session.token ?? ''}` } })
  if (response.status === 401) onUnauthorized()
  if (!response.ok) throw toApiError(response.status, await response.json().catch(() => null))
  return URL.createObjectURL(await response.blob())
}
