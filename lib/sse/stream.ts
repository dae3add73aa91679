/**
 * `SseStream`: an SSE writer over a Node HTTP/1 or HTTP/2 (compat) response, with backpressure,
 * a per-reader byte budget, heartbeat, max duration and one lifecycle (`signal`, `onClose`).
 */
import type { ServerResponse } from 'node:http'
import { Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import { asChunk, corkAwhile, currentTurn, directSocket } from './direct-write.js'
import { DONE_DATA, PING_FRAME, formatClose, formatComment, formatError, formatEvent, formatRetry } from './format.js'
import { resolveSseOptions } from './options.js'
import type { ResolvedSseOptions } from './options.js'
import type { CloseReason, SseEvent, SseOptions } from './types.js'

/** A response `SseStream` can write to. */
export type SseResponse = ServerResponse | Http2ServerResponse

/** Options of the `SseStream` constructor: {@link SseOptions} plus what the reply already had. */
export interface SseStreamOptions extends SseOptions {
  /**
   * Headers to keep (e.g. those set on a Fastify reply before `reply.sse()`). The SSE headers win
   * over them; `content-length`, `content-encoding`, `transfer-encoding` (and, on HTTP/2, every
   * connection-specific header) are dropped.
   */
  headers?: Record<string, string | string[] | number | undefined> | undefined
  /** Status code. @default the response's current `statusCode` (200) */
  statusCode?: number | undefined
}

/** The `signal.reason` of a closed stream: an `AbortError` that names the close reason. */
export class SseStreamClosedError extends Error {
  override name = 'AbortError'
  readonly code = 'SSE_STREAM_CLOSED'
  /** Why the stream ended. */
  readonly reason: CloseReason

  constructor (reason: CloseReason) {
    super(`SSE stream closed (${reason})`)
    this.reason = reason
  }
}

// Framing headers describe a body of known length or encoding: a stream has neither, and a
// `content-encoding` left by a compression plugin would make clients gunzip plain text.
const DROPPED_HEADERS = new Set(['content-length', 'content-encoding', 'transfer-encoding'])
// RFC 9113 §8.2.2: connection-specific headers are malformed on HTTP/2; Node drops them from
// compat responses with an UnsupportedWarning, so they are never set there.
const H2_DROPPED_HEADERS = new Set([...DROPPED_HEADERS, 'connection', 'keep-alive', 'proxy-connection', 'upgrade'])

const RESOLVED: Promise<void> = Promise.resolve()

/**
 * An open SSE response. Create it with `reply.sse()` (plugin) or directly over a Node response.
 *
 * Writes never throw for a gone client: once closed, writes are dropped and promises resolve.
 * Every way out (`close`, `done`, `error`, `end`, client gone, `timeout`, `slow_consumer`) goes
 * through one place, so `onClose` callbacks run exactly once and `signal` aborts exactly once.
 */
export class SseStream {
  /** The response; typed as HTTP/1 because both kinds share every method used on it. */
  readonly #res: ServerResponse
  readonly #h2: Http2ServerResponse | undefined
  readonly #opts: ResolvedSseOptions
  /**
   * Made when {@link signal} is first read: most streams are never asked for one, and an
   * AbortController plus its reason (an Error, with a captured stack) per stream is per-request
   * CPU for nothing.
   */
  #abort: AbortController | undefined
  #closed = false
  #reason: CloseReason | undefined
  #callbacks: Array<(reason: CloseReason) => void> = []
  #heartbeat: NodeJS.Timeout | undefined
  #timeout: NodeJS.Timeout | undefined
  /** Bytes not yet written: the `retry:` line when headers are held (`flushHeaders: false`). */
  #preamble: Buffer | undefined
  /** Writes since the last heartbeat tick: a counter, so the hot path reads no clock. */
  #writes = 0
  /** The last `res.write()` returned false and no `drain` came yet. */
  #needDrain = false
  /** Waiting for the socket's own `drain` after a direct write (see {@link #directSocket}). */
  #socketDrain: Socket | undefined
  /** The turn of the last direct write (lib/sse/direct-write.ts). */
  #turn = -1
  #drained: { promise: Promise<void>, resolve: () => void } | undefined

  /**
   * @param resolved internal (the plugin): `options`' SSE options already checked and defaulted by
   *   {@link resolveSseOptions}, so they are not resolved again per stream; `options` then only
   *   gives `headers` and `statusCode`.
   */
  constructor (res: SseResponse, options: SseStreamOptions = {}, resolved?: ResolvedSseOptions) {
    const { headers, statusCode, ...sseOptions } = options
    this.#opts = resolved ?? resolveSseOptions(sseOptions)
    this.#h2 = res instanceof Http2ServerResponse ? res : undefined
    this.#res = res as ServerResponse
    if (res.headersSent) throw new Error('SseStream: the response headers were already sent')

    this.#writeHeaders(headers, statusCode)

    if (this.#isGone()) {
      // The client left before the stream was made: closed from the start, nothing written.
      this.#finish('client', undefined, false)
      return
    }
    if (this.#res.req?.method === 'HEAD') {
      // A HEAD response has headers only (Node drops body writes): ending it now answers the
      // client instead of holding it for as long as the stream would have lasted.
      this.#finish('done', undefined, false)
      return
    }

    res.on('close', this.#onResClose)
    res.on('drain', this.#onDrain)

    if (this.#h2 === undefined) {
      // Frames are small and latency-bound: Nagle's algorithm would hold each one until the
      // previous is ACKed, and with delayed ACKs that is up to 40 ms (Linux) per token. Node's
      // server sets noDelay by default since v18; setting it here keeps that true whatever
      // the server was created with. HTTP/2 shares one socket between streams: not ours to tune.
      const socket = this.#res.socket
      if (typeof socket?.setNoDelay === 'function') socket.setNoDelay(true)
    }

    const retry = this.#opts.retry === undefined ? undefined : Buffer.from(formatRetry(this.#opts.retry))
    if (this.#opts.flushHeaders) {
      // Headers must reach the client (and any proxy that waits for them) at once. Writing the
      // retry line sends them in the same packet; with no retry line, flush them alone.
      if (retry !== undefined) this.#write(retry)
      else this.#res.flushHeaders()
    } else {
      this.#preamble = retry
    }

    if (this.#opts.heartbeatMs > 0) {
      this.#heartbeat = setInterval(this.#onHeartbeat, this.#opts.heartbeatMs).unref()
    }
    if (this.#opts.timeoutMs > 0) {
      this.#timeout = setTimeout(() => { this.#finish('timeout', formatClose('timeout'), false) }, this.#opts.timeoutMs).unref()
    }
  }

  /** Aborted when the stream ends for any reason; `signal.reason` is a {@link SseStreamClosedError}. */
  get signal (): AbortSignal {
    if (this.#abort === undefined) {
      this.#abort = new AbortController()
      if (this.#closed) this.#abort.abort(new SseStreamClosedError(this.#reason as CloseReason))
    }
    return this.#abort.signal
  }

  /** Whether the stream has ended (for any reason). */
  get closed (): boolean {
    return this.#closed
  }

  /** Why the stream ended; `undefined` while open. */
  get closeReason (): CloseReason | undefined {
    return this.#reason
  }

  /** Bytes accepted but not yet handed to the kernel (what the `maxBufferedBytes` budget limits). */
  get bufferedBytes (): number {
    const n = this.#res.writableLength
    // An injected (light-my-request) response has a null socket: its length may be NaN.
    return Number.isFinite(n) ? n : 0
  }

  /**
   * Writes one event. Resolves when the write was accepted, after `drain` if the buffer is full;
   * resolves without writing once the stream is closed (also while waiting: never hangs on a
   * gone client).
   *
   * @throws {TypeError} (as a rejection) for an invalid `event`, `id`, `retry` or `data`; nothing
   *   is written then.
   */
  send (ev: SseEvent): Promise<void> {
    let frame: string
    try {
      frame = formatEvent(ev)
    } catch (err) {
      return Promise.reject(err)
    }
    if (!this.writeFrame(frame)) return RESOLVED
    return this.#needDrain ? this.whenDrained() : RESOLVED
  }

  /**
   * Writes a pre-formatted frame (e.g. one {@link formatEvent} result written to many readers).
   * Never waits. When more than `maxBufferedBytes` are still buffered from earlier writes, the
   * reader is that far behind: instead of writing, the stream closes with `slow_consumer` and its
   * response is destroyed, which frees the buffer. The reader sees its connection cut (no `close`
   * event could reach it behind a full buffer) and resumes with `Last-Event-ID` like any dropped
   * client; `slow_consumer` is the reason on this side (`onClose`, metrics, logs). So a stream
   * holds at most the budget plus one frame, and one event larger than the budget still reaches
   * a reader that keeps up.
   *
   * @param frame complete frame(s), ending with a blank line. The same string written to many
   *   readers in a row is encoded once; a `Uint8Array` is written as is.
   * @returns `false` when the stream is (now) closed, else `true`.
   */
  writeFrame (frame: string | Uint8Array): boolean {
    if (this.#closed) return false
    if (this.bufferedBytes > this.#opts.maxBufferedBytes) {
      // Destroyed so its buffer is freed now: a close frame queued behind it would be dropped too.
      this.#finish('slow_consumer', undefined, true)
      return false
    }
    this.#write(frame)
    return true
  }

  /** Resolves when the write buffer has drained, or at once if it is not full or the stream is closed. */
  whenDrained (): Promise<void> {
    if (this.#closed || !this.#needDrain) return RESOLVED
    if (this.#drained === undefined) {
      let resolve!: () => void
      const promise = new Promise<void>((_resolve) => { resolve = _resolve })
      this.#drained = { promise, resolve }
    }
    return this.#drained.promise
  }

  /** Writes a comment (`: text`; one per line). Readers ignore it. */
  comment (text: string): void {
    if (!this.#closed) this.writeFrame(formatComment(text))
  }

  /**
   * Ends an LLM answer the OpenAI way: `data: [DONE]` (with `id` if given), then `close` with
   * reason `done`, then ends the response.
   */
  done (id?: string | number): Promise<void> {
    if (this.#closed) return RESOLVED
    let frame: string
    try {
      frame = formatEvent({ data: DONE_DATA, id }) + formatClose('done')
    } catch (err) {
      return Promise.reject(err)
    }
    this.#finish('done', frame, false)
    return RESOLVED
  }

  /**
   * Reports a failure: `event: error` with `{"type":"error","code":…,"message":…}`, then `close`
   * with reason `error`. No `[DONE]`: a reader can tell a complete answer from a cut one.
   * The message is sent to the client: pass one that is safe to show.
   */
  error (err: { code?: string | undefined, message: string } | Error): Promise<void> {
    if (this.#closed) return RESOLVED
    this.#finish('error', formatError(err) + formatClose('error'), false)
    return RESOLVED
  }

  /**
   * Writes `event: close` with `{"reason":…, ...extra}` and ends the response. Idempotent: after
   * the first call (or any other end), does nothing. Resolves once the frame is written and the
   * response ended; it does not wait for the client to read it.
   *
   * @param reason @default 'done'
   */
  close (reason: CloseReason = 'done', extra?: Record<string, unknown>): Promise<void> {
    if (this.#closed) return RESOLVED
    let frame: string
    try {
      frame = formatClose(reason, extra)
    } catch (err) {
      return Promise.reject(err)
    }
    this.#finish(reason, frame, false)
    return RESOLVED
  }

  /** Ends the response without a close event (e.g. the client is known to be gone). Idempotent. */
  end (reason: CloseReason): void {
    this.#finish(reason, undefined, false)
  }

  /**
   * Calls `cb` once with the reason the stream ended. Registered after the end, it is called on
   * the next tick. Client disconnect → `client`.
   */
  onClose (cb: (reason: CloseReason) => void): void {
    if (this.#closed) {
      const reason = this.#reason as CloseReason
      process.nextTick(cb, reason)
      return
    }
    this.#callbacks.push(cb)
  }

  #writeHeaders (headers: SseStreamOptions['headers'], statusCode: number | undefined): void {
    const res = this.#res
    const dropped = this.#h2 === undefined ? DROPPED_HEADERS : H2_DROPPED_HEADERS
    for (const name of res.getHeaderNames()) {
      if (dropped.has(name)) res.removeHeader(name)
    }
    if (headers !== undefined) {
      for (const name of Object.keys(headers)) {
        const value = headers[name]
        const lower = name.toLowerCase()
        if (value === undefined || dropped.has(lower)) continue
        res.setHeader(lower, value)
      }
    }
    res.setHeader('content-type', 'text/event-stream; charset=utf-8')
    // no-transform: proxies and CDNs must not compress or otherwise rewrite (and so buffer) it.
    res.setHeader('cache-control', 'no-cache, no-transform')
    // nginx buffers proxied responses by default; this turns it off for this response only.
    res.setHeader('x-accel-buffering', 'no')
    // HTTP/1.1 only, and only when Node keeps the connection: on HTTP/1.0 the body is delimited
    // by closing the connection, and saying keep-alive there would be a lie.
    if (this.#h2 === undefined && res.shouldKeepAlive && res.req?.httpVersion === '1.1') {
      res.setHeader('connection', 'keep-alive')
    }
    if (statusCode !== undefined) res.statusCode = statusCode
  }

  #isGone (): boolean {
    const res = this.#res
    if (res.writableEnded) return true
    return this.#h2 === undefined ? res.destroyed : this.#h2.stream.destroyed
  }

  /** The socket to write a frame to directly (lib/sse/direct-write.ts), else `undefined`. */
  #directSocket (): Socket | undefined {
    return this.#h2 === undefined && this.#opts.fastPath ? directSocket(this.#res) : undefined
  }

  /**
   * The one place that writes frames: straight to the socket as a ready chunk when it can, else
   * through the response, as bytes (so `writableLength` counts bytes, not UTF-16 units).
   */
  #write (frame: string | Uint8Array): void {
    if (this.#preamble !== undefined) {
      const bytes = typeof frame === 'string' ? Buffer.from(frame) : frame
      frame = Buffer.concat([this.#preamble, bytes])
      this.#preamble = undefined
    }
    // Nothing to send; and an empty HTTP chunk would be the end of the body (`0\r\n\r\n`).
    if ((typeof frame === 'string' ? frame.length : frame.byteLength) === 0) return
    this.#writes++
    const socket = this.#directSocket()
    if (socket !== undefined) {
      // A second frame in the same turn: it and the ones after it leave together, a moment later.
      const turn = currentTurn()
      if (this.#turn === turn) corkAwhile(socket)
      this.#turn = turn
      if (!socket.write(asChunk(frame)) && this.#socketDrain === undefined) {
        this.#needDrain = true
        this.#socketDrain = socket
        socket.once('drain', this.#onDrain)
      }
      return
    }
    if (!this.#res.write(typeof frame === 'string' ? Buffer.from(frame) : frame)) this.#needDrain = true
  }

  #onHeartbeat = (): void => {
    // Only between events: a tick that saw a write since the last one stays silent. Held headers
    // (`flushHeaders: false`) stay held: the owner commits them with its first write.
    if (this.#writes === 0 && this.#res.headersSent) this.writeFrame(PING_FRAME)
    this.#writes = 0
  }

  #onDrain = (): void => {
    this.#socketDrain?.removeListener('drain', this.#onDrain)
    this.#socketDrain = undefined
    this.#needDrain = false
    this.#releaseDrain()
  }

  #onResClose = (): void => {
    // 'close' before we ended the response: the client (or the connection) went away.
    this.#finish('client', undefined, false)
  }

  #releaseDrain (): void {
    const drained = this.#drained
    if (drained !== undefined) {
      this.#drained = undefined
      drained.resolve()
    }
  }

  /** Every end goes through here, once. */
  #finish (reason: CloseReason, frame: string | undefined, destroy: boolean): void {
    if (this.#closed) return
    this.#closed = true
    this.#reason = reason
    clearInterval(this.#heartbeat)
    clearTimeout(this.#timeout)
    const res = this.#res
    res.off('close', this.#onResClose)
    res.off('drain', this.#onDrain)
    this.#socketDrain?.removeListener('drain', this.#onDrain)
    this.#socketDrain = undefined
    if (!this.#isGone()) {
      // The close frame goes straight to the socket (see #directSocket), the response's end
      // (`0\r\n\r\n`) through Node: corked together they leave in one write, not two.
      const socket = frame === undefined || destroy ? undefined : this.#directSocket()
      socket?.cork()
      if (frame !== undefined) this.#write(frame)
      if (destroy) res.destroy()
      else res.end()
      socket?.uncork()
    }
    this.#preamble = undefined
    this.#releaseDrain()
    // Only a signal someone asked for is aborted; one asked for later is made aborted.
    this.#abort?.abort(new SseStreamClosedError(reason))
    const callbacks = this.#callbacks
    this.#callbacks = []
    for (const cb of callbacks) {
      try {
        cb(reason)
      } catch (err) {
        // A throwing callback must not stop the others or the close itself; it is still a bug,
        // so it surfaces as an uncaught exception, like a throwing EventEmitter listener.
        process.nextTick(() => { throw err })
      }
    }
  }
}
