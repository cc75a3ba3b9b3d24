// Endpoints the platform may not have yet (API.md's "mini-program additions"). The page asks the platform's
// /openapi.json once and switches each feature on when its path is published, so nothing here has to change on
// the day the endpoint ships.

export interface Features {
  /** POST /orders/{order_no}/inquiry: "I paid but it does not show" asks the channel now. */
  inquiry: boolean
  /** GET /orders/{order_no}/receipt: a PDF receipt. */
  receipt: boolean
  /** GET /messages and GET, POST /subscriptions: bills pushed to the patient, and what they subscribed to. */
  messages: boolean
}

const MP = '/api/mp/v1'
export const NONE: Features = { inquiry: false, receipt: false, messages: false }

function has(paths: Record<string, Record<string, unknown>>, path: RegExp, method: string): boolean {
  return Object.entries(paths).some(([p, ops]) => path.test(p) && !!ops && method in ops)
}

/** What an OpenAPI document says the platform offers. */
export function featuresOf(spec: unknown): Features {
  const paths = (spec as { paths?: Record<string, Record<string, unknown>> } | null)?.paths
  if (!paths || typeof paths !== 'object') return NONE
  const order = `^${MP}/orders/\\{[^}]+\\}`
  return {
    inquiry: has(paths, new RegExp(`${order}/inquiry$`), 'post'),
    receipt: has(paths, new RegExp(`${order}/receipt$`), 'get'),
    messages: has(paths, new RegExp(`^${MP}/messages$`), 'get') && has(paths, new RegExp(`^${MP}/subscriptions$`), 'post'),
  }
}

let cached: { platform: string; features: Promise<Features> } | null = null

/** The platform's features, asked once per page load (and again only if the platform URL changes). */
export function platformFeatures(platformUrl: string, fetchImpl: typeof fetch = (...a) => fetch(...a)): Promise<Features> {
  if (cached?.platform !== platformUrl) {
    const features = fetchImpl(`${platformUrl}/openapi.json`, { cache: 'no-store' })
      .then((resp) => (resp.ok ? resp.json() : null))
      .then(featuresOf, () => NONE)
    cached = { platform: platformUrl, features }
  }
  return cached.features
}

export function forgetFeatures(): void {
  cached = null
}
