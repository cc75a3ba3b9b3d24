// Calls to the platform's mini-program API across origins (the platform allows this page's origin: HPAY_CORS_ORIGINS).
// A 401 means the session ended: sign in again silently (as a mini-program calls wx.login again) and retry once.

export class ApiError extends Error {
  readonly status: number
  readonly code: string | null
  readonly details: Record<string, unknown> | null
  readonly retryAfterS: number | null

  constructor(status: number, message: string, code: string | null = null,
    details: Record<string, unknown> | null = null, retryAfterS: number | null = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.details = details
    this.retryAfterS = retryAfterS
  }
}

const FALLBACK: Record<number, string> = {
  0: '网络不通，请稍后重试',
  401: '登录已失效',
  403: '无权操作',
  404: '未找到',
  409: '当前状态不允许此操作',
  422: '输入有误',
  429: '操作太频繁，请稍后再试',
}

export function toApiError(status: number, body: unknown, retryAfter: string | null = null): ApiError {
  const fallback = FALLBACK[status] ?? (status >= 500 ? '服务暂时不可用，请稍后重试' : `请求失败 (${status})`)
  const retryAfterS = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) : null
  if (body && typeof body === 'object') {
    const { message, error, errors } = body as { message?: unknown; error?: unknown; errors?: unknown }
    return new ApiError(status, typeof message === 'string' && message ? message : fallback,
      typeof error === 'string' ? error : null, errors && typeof errors === 'object' ? errors as Record<string, unknown> : null,
      retryAfterS)
  }
  return new ApiError(status, fallback, null, null, retryAfterS)
}

export interface RequestOptions {
  method?: 'GET' | 'POST'
  body?: unknown
  query?: Record<string, string | number>
  idempotencyKey?: string
  /** Do not sign in again on a 401 (the login call itself). */
  noReauth?: boolean
}

export interface ClientOptions {
  baseUrl: () => string
  token: () => string | null
  reauthenticate: () => Promise<void>
  fetch?: typeof fetch
}

export class PlatformClient {
  constructor(private readonly options: ClientOptions) {}

  private async send(path: string, opts: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = {}
    const token = this.options.token()
    if (token && !opts.noReauth) headers.Authorization = `Bearer ${token}`
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json'
    if (opts.idempotencyKey) headers['Idempotency-Key'] = opts.idempotencyKey
    const query = opts.query ? `?${new URLSearchParams(Object.entries(opts.query).map(([k, v]) => [k, String(v)]))}` : ''
    const doFetch = this.options.fetch ?? fetch
    try {
      return await doFetch(`${this.options.baseUrl()}${path}${query}`, {
        method: opts.method ?? 'GET', headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        cache: 'no-store',
      })
    } catch {
      throw new ApiError(0, FALLBACK[0])
    }
  }

  private async fail(resp: Response): Promise<never> {
    let body: unknown = null
    try {
      body = await resp.json()
    } catch {
      body = null
    }
    throw toApiError(resp.status, body, resp.headers.get('Retry-After'))
  }

  private async respond(path: string, opts: RequestOptions): Promise<Response> {
    let resp = await this.send(path, opts)
    if (resp.status === 401 && !opts.noReauth) {
      await this.options.reauthenticate()
      resp = await this.send(path, opts)
    }
    if (!resp.ok) await this.fail(resp)
    return resp
  }

  /** The JSON answer, with its HTTP status (a card binding answers 202 for "code sent", 201 for "bound"). */
  async call<T>(path: string, opts: RequestOptions = {}): Promise<{ status: number; data: T }> {
    const resp = await this.respond(path, opts)
    const data = (resp.status === 204 ? null : await resp.json()) as T
    return { status: resp.status, data }
  }

  async json<T>(path: string, opts: RequestOptions = {}): Promise<T> {
    return (await this.call<T>(path, opts)).data
  }

  async blob(path: string): Promise<Blob> {
    return (await this.respond(path, {})).blob()
  }
}
