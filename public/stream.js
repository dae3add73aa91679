// Follows one generation's event stream, resuming after every drop until the relay says `close`.
//
// Why fetch() and not EventSource:
// - EventSource cannot send an Authorization header, and the relay may run with RELAY_API_KEYS;
//   putting the key in the URL instead would leak it into proxy and access logs.
// - EventSource hides the HTTP status: a 404 for an expired stream, a 401 or a 503 all look like
//   the same bare `error` event, after which it either retries forever or gives up silently.
//   Here every status is seen, and the relay's JSON error is shown to the user.
// - EventSource reconnects invisibly. The page must count resumes, reconnect at once when the
//   network comes back (`online`), and notice a connection that died without a FIN (laptop lid,
//   network change: Chromium keeps such a stream "open" and silent; measured with
//   context.setOffline, which leaves in-flight streams untouched). Both need our own loop.
// The relay supports this path by contract: `?lastEventId=` on GET /v1/chat/stream/:id, and the
// `x-stream-id` header that names the generation behind /v1/conversations/:id/stream.
// The cost is the small parser in sse.js.

import { SseParser } from './sse.js'

/** An HTTP answer that is not a stream: carries the relay's `{ error: { code, message } }`. */
export class HttpError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {number | null} [retryAfter]  seconds to wait, from `retry-after` (a 429, a 503)
   */
  constructor (status, code, message, retryAfter = null) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.code = code
    this.retryAfter = retryAfter
  }
}

/** The stream could not be re-established after several attempts. */
export class ConnectionLostError extends Error {
  constructor () {
    super('The connection to the relay was lost and could not be re-established.')
    this.name = 'ConnectionLostError'
    this.code = 'connection_lost'
  }
}

/**
 * Reads the relay's JSON error from a non-2xx response, whatever the body turns out to be
 * (nginx answers its own 502 with HTML, for example).
 * @param {Response} res
 * @returns {Promise<HttpError>}
 */
export async function httpErrorFrom (res) {
  let code = `http_${res.status}`
  let message = res.statusText || `HTTP ${res.status}`
  try {
    const body = await res.json()
    if (body && typeof body.error === 'object' && body.error !== null) {
      if (typeof body.error.code === 'string') code = body.error.code
      if (typeof body.error.message === 'string') message = body.error.message
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new HttpError(res.status, code, message, retryAfterSeconds(res.headers.get('retry-after')))
}

/**
 * `retry-after` as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3).
 * @param {string | null} value
 * @returns {number | null}
 */
export function retryAfterSeconds (value) {
  if (value === null) return null
  if (/^\s*\d+\s*$/.test(value)) return Number(value)
  const date = Date.parse(value)
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000))
}

const sleep = (/** @type {number} */ ms, /** @type {AbortSignal} */ signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done () {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve(undefined)
    }
  })

/** Resolves when the browser reports it is online again (or `signal` aborts). */
const onlineAgain = (/** @type {AbortSignal} */ signal) =>
  new Promise((resolve) => {
    if (navigator.onLine || signal.aborted) return resolve(undefined)
    const done = () => {
      window.removeEventListener('online', done)
      signal.removeEventListener('abort', done)
      resolve(undefined)
    }
    window.addEventListener('online', done)
    signal.addEventListener('abort', done, { once: true })
  })

/**
 * @typedef {object} FollowOptions
 * @property {string} url  where the stream starts (a stream URL or the conversation's attach URL)
 * @property {Record<string, string>} [headers]  e.g. Authorization
 * @property {string | null} [lastEventId]  resume after this id instead of starting at the beginning
 * @property {number} [stallMs]  no byte for this long (not even a `: ping`) = a dead connection.
 *   The relay pings every HEARTBEAT_MS (15 s by default), so 3 missed pings.
 * @property {number} [maxAttempts]  consecutive failed reconnects before giving up
 * @property {(event: import('./sse.js').SseMessage) => void} onEvent
 * @property {(res: Response) => void} [onOpen]  each time a connection is established
 * @property {(state: 'connecting' | 'open' | 'reconnecting' | 'offline') => void} [onState]
 * @property {() => void} [onResume]  a dropped stream was re-established
 */

export class StreamFollower {
  /** @param {FollowOptions} options */
  constructor (options) {
    this.url = options.url
    this.headers = options.headers ?? {}
    this.lastEventId = options.lastEventId ?? null
    this.stallMs = options.stallMs ?? 45_000
    this.maxAttempts = options.maxAttempts ?? 8
    this.options = options
    // The relay's `retry:` field: the longest we wait between two attempts.
    this.retryMs = 3000
    this.stopper = new AbortController()
    /** @type {AbortController | null} */
    this.connection = null
    this.onOffline = () => this.connection?.abort(new Error('offline'))
  }

  /**
   * Runs until the stream's `close` event (resolves 'closed'), a 204 from an attach URL
   * (resolves 'none'), stop() (resolves 'stopped'); rejects with HttpError or ConnectionLostError.
   * @returns {Promise<'closed' | 'none' | 'stopped'>}
   */
  async run () {
    // When the OS says the network is gone, the socket is dead or about to be, and the stream
    // would sit silent until the stall timer; drop it now and resume on `online`.
    window.addEventListener('offline', this.onOffline)
    try {
      return await this.loop()
    } finally {
      window.removeEventListener('offline', this.onOffline)
    }
  }

  /** Stops for good: no more reconnects. */
  stop () {
    this.stopper.abort()
    this.connection?.abort()
  }

  async loop () {
    const stopped = this.stopper.signal
    let failures = 0
    let connectedBefore = false
    while (!stopped.aborted) {
      if (!navigator.onLine) {
        this.options.onState?.('offline')
        await onlineAgain(stopped)
        if (stopped.aborted) break
      }
      if (failures > 0 || connectedBefore) {
        this.options.onState?.('reconnecting')
        // First retry almost at once (a blip), then back off up to the relay's `retry:`; the
        // jitter keeps many tabs from reconnecting in lockstep after a relay restart.
        const backoff = Math.min(this.retryMs, 250 * 2 ** Math.max(0, failures - 1))
        await sleep(failures === 0 ? 0 : backoff * (0.75 + Math.random() * 0.5), stopped)
        if (stopped.aborted) break
      } else {
        this.options.onState?.('connecting')
      }

      const result = await this.connectOnce(connectedBefore)
      if (result === 'closed' || result === 'none') return result
      if (result === 'progress') {
        connectedBefore = true
        failures = 0
      } else {
        if (result === 'connected') connectedBefore = true
        failures++
        if (failures >= this.maxAttempts) throw new ConnectionLostError()
      }
    }
    return 'stopped'
  }

  /**
   * One connection: open, read until it ends.
   * @param {boolean} isResume
   * @returns {Promise<'closed' | 'none' | 'progress' | 'connected' | 'failed'>}
   *   progress = events arrived before the drop, connected = the drop came before any event
   */
  async connectOnce (isResume) {
    const connection = new AbortController()
    this.connection = connection
    if (this.stopper.signal.aborted) connection.abort()
    const url = new URL(this.url, window.location.href)
    if (this.lastEventId !== null) url.searchParams.set('lastEventId', this.lastEventId)

    let res
    try {
      res = await fetch(url, {
        headers: { accept: 'text/event-stream', ...this.headers },
        signal: connection.signal,
        cache: 'no-store'
      })
    } catch {
      return 'failed' // network error, offline, or aborted (the loop checks stop)
    }
    if (res.status === 204) return 'none'
    if (!res.ok) {
      const error = await httpErrorFrom(res)
      // 5xx and 429 are the relay (or nginx in front of it) being briefly unavailable: retry.
      // Anything else (404: the generation expired, 401: the key) will not get better.
      if (res.status >= 500 || res.status === 429) return 'failed'
      throw error
    }

    this.options.onOpen?.(res)
    // After the first connection, resume by stream id: an attach URL like
    // /v1/conversations/:id/stream would find a newer generation if one was started meanwhile.
    const streamId = res.headers.get('x-stream-id')
    if (streamId) this.url = `/v1/chat/stream/${encodeURIComponent(streamId)}`
    if (isResume) this.options.onResume?.()
    this.options.onState?.('open')

    let closed = false
    let progress = false
    const parser = new SseParser({
      onId: (id) => { this.lastEventId = id === '' ? null : id },
      onRetry: (ms) => { this.retryMs = Math.max(250, ms) },
      onEvent: (event) => {
        if (this.stopper.signal.aborted) return // stop() is final, even mid-chunk
        progress = true
        if (event.event === 'close') closed = true
        this.options.onEvent(event)
      }
    })

    const reader = /** @type {ReadableStream<Uint8Array>} */ (res.body).getReader()
    const decoder = new TextDecoder()
    let stallTimer = setTimeout(() => connection.abort(new Error('stalled')), this.stallMs)
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        clearTimeout(stallTimer)
        stallTimer = setTimeout(() => connection.abort(new Error('stalled')), this.stallMs)
        parser.push(decoder.decode(value, { stream: true }))
        if (closed) break // set by the parser's onEvent
      }
    } catch {
      // The connection dropped (or was aborted: stall, offline, stop). Resume from lastEventId.
    } finally {
      clearTimeout(stallTimer)
      if (closed) {
        // `close` is the relay's last word; stop reading so the connection is released now.
        reader.cancel().catch(() => {})
      }
    }
    if (closed) return 'closed'
    return progress ? 'progress' : 'connected'
  }
}
