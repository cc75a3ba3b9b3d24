// The typed client of the admin API (types generated from openapi.json by `make console-client`).
// Every call goes through `call()`: the data on success, an ApiError carrying the API's own `message`
// otherwise. A 401 on any call but the sign-in itself means the session is over: `onUnauthorized` runs
// (the app clears the session and goes to the sign-in page, remembering where the user was).
import createClient, { type Middleware } from 'openapi-fetch'

import type { paths } from './schema'

export const ADMIN_PREFIX = '/api/admin/v1'
const LOGIN_PATH = `${ADMIN_PREFIX}/auth/login`

export class ApiError extends Error {
  readonly status: number
  readonly code: string | null
  readonly fields: Record<string, unknown> | null

  constructor(status: number, message: string, code: string | null = null, fields: Record<string, unknown> | null = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.fields = fields
  }
}

const FALLBACK_MESSAGES: Record<number, string> = {
  0: '无法连接服务器，请检查网络后重试',
  401: '登录已过期，请重新登录',
  403: '无权进行此操作',
  404: '未找到',
  409: '当前状态不允许此操作',
  422: '输入有误',
  429: '操作太频繁，请稍后再试',
}

/** The API's error body ({message, error, errors}) as an ApiError; a body that is not one gets a plain message. */
export function toApiError(status: number, body: unknown): ApiError {
  const fallback = FALLBACK_MESSAGES[status] ?? (status >= 500 ? '服务器出错，请稍后重试' : `请求失败 (${status})`)
  if (body && typeof body === 'object') {
    const { message, error, errors } = body as { message?: unknown; error?: unknown; errors?: unknown }
    let text = typeof message === 'string' && message ? message : fallback
    const fields = errors && typeof errors === 'object' ? (errors as Record<string, unknown>) : null
    if (status === 422 && fields) text = `${text} ${describeFields(fields)}`.trim()
    return new ApiError(status, text, typeof error === 'string' ? error : null, fields)
  }
  return new ApiError(status, fallback)
}

function describeFields(fields: Record<string, unknown>): string {
  // flask-smorest nests errors by location: {json: {field: [messages]}}
  const flat: string[] = []
  const walk = (node: unknown, path: string[]) => {
    if (Array.isArray(node)) flat.push(`${path.join('.')}: ${node.join('; ')}`)
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        walk(value, ['json', 'query', 'querystring'].includes(key) && path.length === 0 ? path : [...path, key])
      }
    }
  }
  walk(fields, [])
  return flat.length ? `（${flat.join('，')}）` : ''
}

export interface ClientOptions {
  baseUrl?: string
  fetch?: typeof globalThis.fetch
  token: () => string | null
  onUnauthorized: () => void
}

export function makeClient(options: ClientOptions) {
  const client = createClient<paths>({ baseUrl: options.baseUrl ?? '', fetch: options.fetch })
  const auth: Middleware = {
    onRequest({ request }) {
      const token = options.token()
      if (token) request.headers.set('Authorization', `Bearer ${token}`)
      return request
    },
    onResponse({ request, response }) {
      if (response.status === 401 && !new URL(request.url, 'http://x').pathname.endsWith(LOGIN_PATH)) {
        options.onUnauthorized()
      }
      return response
    },
  }
  client.use(auth)
  return client
}

interface Outcome {
  data?: unknown
  error?: unknown
  response: Response
}

/** Await an openapi-fetch call: its data, or an ApiError with the API's message (network failures too). */
export async function call<T extends Outcome>(pending: Promise<T>): Promise<NonNullable<T['data']>> {
  let outcome: T
  try {
    outcome = await pending
  } catch (failure) {
    if (failure instanceof ApiError) throw failure
    throw new ApiError(0, FALLBACK_MESSAGES[0])
  }
  if (outcome.error !== undefined || !outcome.response.ok) throw toApiError(outcome.response.status, outcome.error)
  return outcome.data as NonNullable<T['data']>
}

export type ApiClient = ReturnType<typeof makeClient>
