// A Server-Sent Events parser for a stream read with fetch (EventSource cannot send the bearer token): feed it
// the text as it arrives, get back each complete message. Comment lines (heartbeats) are skipped.

export interface SseMessage {
  event: string
  id: string | null
  data: string
  retry: number | null
}

export class SseParser {
  private buffer = ''

  feed(text: string): SseMessage[] {
    this.buffer += text.replace(/\r\n?/g, '\n')
    const messages: SseMessage[] = []
    let end = this.buffer.indexOf('\n\n')
    while (end >= 0) {
      const block = this.buffer.slice(0, end)
      this.buffer = this.buffer.slice(end + 2)
      const message = parseBlock(block)
      if (message) messages.push(message)
      end = this.buffer.indexOf('\n\n')
    }
    return messages
  }
}

function parseBlock(block: string): SseMessage | null {
  let event = 'message'
  let id: string | null = null
  let retry: number | null = null
  const data: string[] = []
  let seen = false
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    seen = true
    if (field === 'event') event = value
    else if (field === 'data') data.push(value)
    else if (field === 'id' && !value.includes('\0')) id = value
    else if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value)
  }
  return seen ? { event, id, data: data.join('\n'), retry } : null
}
