/**
 * Readers for the end-to-end tests that note when each event arrived: over HTTP/1.1 the shared
 * collectSse fixture; over HTTP/2 (through nginx's TLS server) this file's collectSseH2. And
 * `arrivalGroups`, which turns arrival times into "how spread out was this stream".
 */
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2'
import { performance } from 'node:perf_hooks'
import { createParser } from 'eventsource-parser'
import type { CollectedEvent } from '../fixtures/sse-client.js'

/** A chat request that makes the mock send `tokens` at a steady `delayMs`, with no jitter. */
export function pacedBody (tokens: string[], delayMs: number, tag?: string): object {
  return {
    messages: [{ role: 'user', content: 'count' }],
    mock: { tokens, tokenDelayMs: delayMs, firstTokenDelayMs: 0, jitterMs: 0, ...(tag === undefined ? {} : { tag }) }
  }
}

/** The text of the `delta` events, in order. */
export function textOf (events: readonly { data: string, event?: string | undefined }[]): string {
  return events
    .filter((e) => e.event === undefined && e.data.startsWith('{'))
    .map((e) => JSON.parse(e.data) as { type: string, content?: string })
    .filter((m) => m.type === 'delta')
    .map((m) => m.content)
    .join('')
}

/** Arrival times (ms) of the `delta` events. */
export function deltaArrivals (events: readonly CollectedEvent[]): number[] {
  return events.filter((e) => e.event === undefined && e.data.startsWith('{"type":"delta"')).map((e) => e.at)
}

/**
 * How many bursts the arrivals came in: a new burst starts after a gap of at least `gapMs`.
 * A buffering proxy turns a paced stream into one or two bursts; a streaming one keeps one per token.
 */
export function arrivalGroups (arrivals: readonly number[], gapMs = 50): number {
  let groups = 0
  let last = -Infinity
  for (const at of arrivals) {
    if (at - last >= gapMs) groups++
    last = at
  }
  return groups
}

export interface H2Result {
  status: number
  headers: IncomingHttpHeaders
  events: CollectedEvent[]
  headersAt: number
}

/** An HTTP/2 session to `origin` trusting `ca` (the test's self-signed certificate). */
export async function connectH2 (origin: string, ca: string): Promise<ClientHttp2Session> {
  const session = connect(origin, { ca })
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve())
    session.once('error', reject)
  })
  return session
}

/** POSTs `body` as JSON on an HTTP/2 session and collects the SSE events with arrival times. */
export async function collectSseH2 (session: ClientHttp2Session, path: string, body: object, timeoutMs = 10_000): Promise<H2Result> {
  const start = performance.now()
  const since = (): number => performance.now() - start
  const result: H2Result = { status: 0, headers: {}, events: [], headersAt: 0 }
  const stream = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/json',
    accept: 'text/event-stream'
  })
  const parser = createParser({
    onEvent (ev) { result.events.push({ id: ev.id, event: ev.event, data: ev.data, at: since() }) }
  })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.close()
      reject(new Error(`collectSseH2: no end after ${timeoutMs} ms (${result.events.length} events)`))
    }, timeoutMs)
    stream.on('response', (headers) => {
      result.status = Number(headers[':status'])
      result.headers = headers
      result.headersAt = since()
    })
    const decoder = new TextDecoder()
    stream.on('data', (chunk: Buffer) => parser.feed(decoder.decode(chunk, { stream: true })))
    stream.on('end', () => {
      clearTimeout(timer)
      parser.feed(decoder.decode())
      resolve(result)
    })
    stream.on('error', (err) => { clearTimeout(timer); reject(err) })
    stream.end(JSON.stringify(body))
  })
}
