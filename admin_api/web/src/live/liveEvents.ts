// One live-event stream per signed-in user (GET /api/admin/v1/events/stream), read with fetch and a
// ReadableStream because EventSource cannot send the bearer token. It reconnects after the server ends a
// stream (every few minutes), a dropped connection or a refusal (Retry-After), sending the last event id it
// saw (Last-Event-ID), so nothing that happened meanwhile is missed. Screens subscribe with `useLiveEvent`.
import { onBeforeUnmount } from 'vue'

import { published } from '@/api'
import { ADMIN_PREFIX } from '@/api/client'

import { SseParser } from './sse'

export const STREAM_PATH = `${ADMIN_PREFIX}/events/stream`

export interface LiveEvent {
  type: string
  id: string | null
  data: Record<string, unknown>
}

type Handler = (event: LiveEvent) => void

const handlers = new Set<Handler>()
const FIRST_DELAY_MS = 1000
const ENDED_DELAY_MS = 300
const MAX_DELAY_MS = 30_000

let running: { token: string; controller: AbortController } | null = null

/** Call `handler` for each live event of these types while the calling component is mounted. */
export function useLiveEvent(types: string | string[], handler: Handler): void {
  const wanted = new Set(Array.isArray(types) ? types : [types])
  const filtered: Handler = (event) => { if (wanted.has(event.type)) handler(event) }
  handlers.add(filtered)
  onBeforeUnmount(() => handlers.delete(filtered))
}

/** Keep one stream open for this token (a call with the same token changes nothing). */
export function startLiveEvents(token: string | null): void {
  if (!token || !published(STREAM_PATH)) return stopLiveEvents()
  if (running?.token === token) return
  stopLiveEvents()
  const controller = new AbortController()
  running = { token, controller }
  void follow(token, controller.signal)
}

export function stopLiveEvents(): void {
  running?.controller.abort()
  running = null
}

function dispatch(event: LiveEvent): void {
  for (const handler of [...handlers]) {
    try {
      handler(event)
    } catch (failure) {
      console.warn('a live event handler failed', failure)
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
  })
}

async function follow(token: string, signal: AbortSignal): Promise<void> {
  const seen = { lastId: null as string | null }
  let backoff = FIRST_DELAY_MS
  while (!signal.aborted) {
    let wait: number
    try {
      const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' }
      if (seen.lastId) headers['Last-Event-ID'] = seen.lastId
      const response = await fetch(STREAM_PATH, { headers, signal, cache: 'no-store' })
      if (response.status === 401 || response.status === 403) return // the session is over; sign-in restarts it
      if (response.ok && response.body) {
        backoff = FIRST_DELAY_MS // connected: a later failure starts its backoff afresh
        await read(response.body, seen)
        wait = ENDED_DELAY_MS // the server ends every stream after a few minutes: come straight back
      } else {
        const retryAfter = Number(response.headers.get('Retry-After'))
        wait = retryAfter > 0 ? retryAfter * 1000 : backoff
        backoff = Math.min(backoff * 2, MAX_DELAY_MS)
      }
    } catch {
      if (signal.aborted) return
      wait = backoff // the connection dropped: try again, more slowly each time
      backoff = Math.min(backoff * 2, MAX_DELAY_MS)
    }
    await sleep(wait, signal)
  }
}

/** Dispatch each event of one stream until it ends, keeping the last event id seen (even if the stream breaks). */
async function read(body: ReadableStream<Uint8Array>, seen: { lastId: string | null }): Promise<void> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  const parser = new SseParser()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    for (const message of parser.feed(decoder.decode(value, { stream: true }))) {
      if (message.id) seen.lastId = message.id
      if (message.event === 'ready' || message.event === 'message') continue
      let data: Record<string, unknown> = {}
      try {
        data = JSON.parse(message.data) as Record<string, unknown>
      } catch {
        // an event without JSON data still says what happened
      }
      dispatch({ type: message.event, id: message.id, data })
    }
  }
}
