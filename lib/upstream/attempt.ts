import { StringDecoder } from 'node:string_decoder'
import type { Dispatcher } from 'undici'
import { createParser } from 'eventsource-parser'
import type { EventSourceMessage, EventSourceParser, ParseError } from 'eventsource-parser'
import { createAdapter } from './adapters/index.js'
import type { Adapter, EventSink } from './adapters/index.js'
import { badResponse, httpError, messageOfBody, timeoutError, transportError, truncatedError } from './errors.js'
import type { ResolvedOptions } from './options.js'
import type { UpstreamError, UpstreamEvent } from './types.js'

/** What one attempt is doing. */
export const READING = 0
export const DONE = 1
export const FAILED = 2

/** Bytes of an error page kept for its message; the rest is discarded (and the socket closed). */
const ERROR_BODY_LIMIT = 65_536
/** After the terminal event, how long the rest of the body may take before the socket is closed. */
const DRAIN_GRACE_MS = 2000
/** U+FEFF: a byte order mark, which the SSE standard's decoding drops at the start of a stream. */
const BOM = 0xFEFF

type BodyMode = 'sse' | 'json' | 'html' | 'error'

/** Everything one attempt needs, built once per `stream()` call. */
export interface AttemptRequest {
  dispatcher: Dispatcher
  options: ResolvedOptions
  path: string
  headers: Record<string, string>
  /**
   * The JSON body, as the bytes undici sends and keeps until the response ends (a string would be
   * copied into such bytes by undici and held besides them: a long prompt twice per stream).
   */
  body: Buffer
  /** `Date.now()` by which the whole request must be done; `undefined` for none. */
  deadline: number | undefined
}

/** Where an attempt delivers: the client's one loop (`UpstreamClient.consume`). */
export interface AttemptConsumer {
  /**
   * Each event, synchronously, as soon as it is parsed (inside the socket's data callback). An
   * event is never delivered after the attempt ended. A throw cancels the attempt with that error.
   */
  onEvent: (event: UpstreamEvent) => void
  /** The attempt ended (`state` is DONE or FAILED). Called once. */
  onEnd: () => void
}

/**
 * One HTTP request to the upstream, as an undici dispatch handler. Bytes are decoded, parsed and
 * adapted synchronously in `onResponseData`, and each resulting event is handed to the consumer
 * there and then. So the per-event cost is the parser, one `JSON.parse` and a call: no queue, no
 * promise, no closure, no timer per event.
 */
export class Attempt implements Dispatcher.DispatchHandler, EventSink {
  state: typeof READING | typeof DONE | typeof FAILED = READING
  /** The failure (an {@link UpstreamError}, the abort reason, or what the consumer threw) once `state` is FAILED. */
  error: unknown = undefined

  readonly #request: AttemptRequest
  readonly #consumer: AttemptConsumer
  readonly #adapter: Adapter
  readonly #parser: EventSourceParser
  /**
   * UTF-8 across network chunks (a code point split between two is held until the rest comes).
   * A StringDecoder, not a TextDecoder: a third of the time per chunk, and no ICU converter per
   * request; the byte order mark TextDecoder would drop is dropped in {@link #decoded}.
   */
  readonly #decoder = new StringDecoder('utf8')
  /** Whether any text was decoded yet (a BOM can only be its first character). */
  #decodedAny = false
  #controller: Dispatcher.DispatchController | null = null
  /** An abort asked for before undici handed us the controller (request still queued or connecting). */
  #pendingAbort: Error | null = null
  #mode: BodyMode = 'sse'
  #status = 0
  #headers: Record<string, string | string[] | undefined> = {}
  #collected: Buffer[] = []
  #collectedBytes = 0
  #headersSeen = false
  #requestDone = false
  #atBodyEnd = false
  #gotToken = false
  /** Events (and other progress) in the current network chunk: the chunk was progress. */
  #progressed = 0
  #lastTokenAt = 0
  #headersTimer: NodeJS.Timeout | undefined
  #firstTokenTimer: NodeJS.Timeout | undefined
  #idleTimer: NodeJS.Timeout | undefined
  #totalTimer: NodeJS.Timeout | undefined
  /** After the terminal event, until the rest of the body came (see {@link end}). */
  #drainTimer: NodeJS.Timeout | undefined

  constructor (request: AttemptRequest, consumer: AttemptConsumer) {
    this.#request = request
    this.#consumer = consumer
    const { options } = request
    this.#adapter = createAdapter(options.format, this, options.apiKey)
    this.#parser = createParser({
      onEvent: (message: EventSourceMessage) => {
        // `event: message` is the SSE default type: same as none.
        this.#adapter.onEvent(message.event === 'message' ? undefined : message.event, message.data)
      },
      onError: (error: ParseError) => this.#onParseError(error),
      maxBufferSize: options.maxEventSize
    })
  }

  /** Sends the request and starts the headers, first-token and total timers. */
  start (): void {
    const { options, deadline } = this.#request
    if (options.headersTimeoutMs > 0) {
      this.#headersTimer = setTimeout(() => this.fail(timeoutError('upstream_headers_timeout', options.headersTimeoutMs)), options.headersTimeoutMs)
    }
    if (options.firstTokenTimeoutMs > 0) {
      this.#firstTokenTimer = setTimeout(() => this.fail(timeoutError('upstream_first_token_timeout', options.firstTokenTimeoutMs)), options.firstTokenTimeoutMs)
    }
    if (deadline !== undefined) {
      this.#totalTimer = setTimeout(() => this.fail(timeoutError('upstream_total_timeout', options.totalTimeoutMs)), Math.max(0, deadline - Date.now()))
    }
    try {
      this.#request.dispatcher.dispatch({
        origin: options.url.origin,
        path: this.#request.path,
        method: 'POST',
        headers: this.#request.headers,
        body: this.#request.body,
        // Our own timers say what a timeout means (headers, first token, idle); undici's bodyTimeout would count pings.
        headersTimeout: 0,
        bodyTimeout: 0
      }, this)
    } catch (err) {
      this.#requestDone = true
      this.fail(transportError(err, false))
    }
  }

  /** The response's HTTP status; `undefined` before (or without) response headers. */
  get status (): number | undefined {
    return this.#status === 0 ? undefined : this.#status
  }

  /** Stops reading the socket (a consumer that buffers is full); {@link resume} reads on. */
  pause (): void {
    if (this.state === READING) this.#controller?.pause()
  }

  resume (): void {
    if (this.#controller?.paused === true) this.#controller.resume()
  }

  /**
   * Stops the attempt from outside (the caller's signal, or the iterator being closed): the
   * request is aborted, so the upstream sees its socket close. A finished attempt is left to
   * drain its last bytes, so the socket can be reused.
   */
  cancel (reason: unknown): void {
    if (this.state !== READING) return
    this.state = FAILED
    this.error = reason
    this.#stopTimers()
    this.#abortRequest(reason instanceof Error ? reason : new Error('aborted'))
    this.#consumer.onEnd()
  }

  // ---- EventSink (called by the adapter, synchronously inside onResponseData) ----

  emit (event: UpstreamEvent): void {
    if (this.state !== READING) return
    this.#progress()
    try {
      this.#consumer.onEvent(event)
    } catch (err) {
      this.cancel(err)
    }
  }

  progress (): void {
    if (this.state === READING) this.#progress()
  }

  /** A token or other model output: the first-token timer is done, the idle clock restarts. */
  #progress (): void {
    this.#progressed++
    if (!this.#gotToken) {
      this.#gotToken = true
      clearTimeout(this.#firstTokenTimer)
      this.#firstTokenTimer = undefined
      const idle = this.#request.options.idleTimeoutMs
      if (idle > 0) this.#idleTimer = setTimeout(() => this.#checkIdle(), idle)
    }
  }

  fail (error: UpstreamError): void {
    if (this.state !== READING) return
    // A half event flushed at the end of the body is a cut answer, not a malformed one.
    const cut = this.#atBodyEnd && error.code === 'upstream_bad_response'
    this.state = FAILED
    this.error = cut ? truncatedError('the last event was cut off') : error
    this.#stopTimers()
    this.#abortRequest(this.error as Error)
    this.#consumer.onEnd()
  }

  end (): void {
    if (this.state !== READING) return
    this.state = DONE
    this.#stopTimers()
    if (!this.#requestDone) {
      // The terminal event came; the rest of the body (usually just the chunked trailer) is
      // awaited briefly so the socket can go back to the pool, then cut. The trailer is most
      // often in the same network chunk (undici ends the response in the same data callback):
      // the timer is only made if the body has not ended by the next tick.
      process.nextTick(Attempt.#awaitBodyEnd, this)
    }
    this.#consumer.onEnd()
  }

  static #awaitBodyEnd (attempt: Attempt): void {
    if (attempt.#requestDone) return
    attempt.#drainTimer = setTimeout(() => attempt.#abortRequest(new Error('upstream body did not end after its terminal event')), DRAIN_GRACE_MS).unref()
  }

  // ---- undici DispatchHandler ----

  onRequestStart (controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    if (this.#pendingAbort !== null) controller.abort(this.#pendingAbort)
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.#headersSeen = true
    clearTimeout(this.#headersTimer)
    // Dropped, not just cleared: the attempt lives as long as the answer, a spent timer need not.
    this.#headersTimer = undefined
    this.#status = statusCode
    const contentType = String(headers['content-type'] ?? '').toLowerCase()
    if (statusCode < 200 || statusCode >= 300) {
      // Only an error reads them (`retry-after`, the request id): a stream need not hold them.
      this.#headers = headers
      this.#mode = 'error'
    } else if (contentType.includes('text/event-stream')) this.#mode = 'sse'
    else if (contentType.includes('json')) this.#mode = 'json'
    else if (contentType.includes('html')) this.#mode = 'html'
    // Anything else (no type, text/plain) is read as SSE: several servers label streams loosely.
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.state === FAILED) return
    if (this.#mode !== 'sse') return this.#collect(chunk)
    if (this.state === DONE) return
    const text = this.#decoded(this.#decoder.write(chunk))
    if (text === '') return
    this.#parser.feed(text)
    if (this.#progressed !== 0) {
      this.#progressed = 0
      this.#lastTokenAt = Date.now()
    }
  }

  onResponseEnd (): void {
    this.#requestDone = true
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer)
    if (this.state !== READING) return
    if (this.#mode === 'sse') return this.#sseEnd()
    const text = Buffer.concat(this.#collected).toString('utf8')
    this.#collected = []
    if (this.#mode === 'error') return this.fail(httpError(this.#status, this.#headers, text, this.#request.options.apiKey))
    if (this.#mode === 'html') {
      return this.fail(badResponse(`upstream answered ${messageOfBody(text, 'text/html')} instead of an event stream`))
    }
    let json: unknown
    try {
      json = JSON.parse(text.charCodeAt(0) === 0xFEFF ? text.slice(1) : text)
    } catch {
      return this.fail(badResponse('upstream answered JSON that does not parse'))
    }
    this.#adapter.onWhole(json)
    if (this.state === READING) this.end()
  }

  onResponseError (controller: Dispatcher.DispatchController, error: Error): void {
    this.#requestDone = true
    if (this.state !== READING) return
    this.fail(transportError(error, this.#headersSeen))
  }

  // ---- internals ----

  #sseEnd (): void {
    // Flush a code point split at the very end, then a blank line: it dispatches an event whose
    // blank line never came (`data: [DONE]` as the last bytes, a quirk seen in the wild).
    this.#atBodyEnd = true
    this.#parser.feed(`${this.#decoded(this.#decoder.end())}\n\n`)
    if (this.state === READING) {
      const missing = this.#adapter.onBodyEnd()
      if (missing !== undefined) this.fail(truncatedError(missing))
    }
  }

  /** Decoded text as the parser gets it: without the stream's leading byte order mark. */
  #decoded (text: string): string {
    if (this.#decodedAny || text === '') return text
    this.#decodedAny = true
    return text.charCodeAt(0) === BOM ? text.slice(1) : text
  }

  #collect (chunk: Buffer): void {
    this.#collectedBytes += chunk.length
    const limit = this.#mode === 'json' ? this.#request.options.maxEventSize : ERROR_BODY_LIMIT
    if (this.#collectedBytes <= limit) {
      this.#collected.push(chunk)
    } else if (this.#mode === 'json') {
      this.fail(badResponse(`upstream JSON answer is larger than maxEventSize (${limit} bytes)`, false))
    } else {
      // Enough of an error page for its message; the end of it is not worth holding the socket.
      if (this.#mode === 'html') return this.fail(badResponse('upstream answered an HTML page instead of an event stream'))
      const text = Buffer.concat(this.#collected).toString('utf8')
      this.fail(httpError(this.#status, this.#headers, text, this.#request.options.apiKey))
    }
  }

  #onParseError (error: ParseError): void {
    if (error.type === 'max-buffer-size-exceeded') {
      this.fail(badResponse(`upstream sent an SSE event larger than maxEventSize (${this.#request.options.maxEventSize} characters)`, false))
    } else if (error.type === 'unknown-field' && error.field !== undefined) {
      this.#adapter.onUnknownField(error.field, error.value ?? '')
    }
  }

  /** The idle timer is armed once and re-armed for the remaining time, not reset per event. */
  #checkIdle (): void {
    const idle = this.#request.options.idleTimeoutMs
    const quiet = Date.now() - this.#lastTokenAt
    if (quiet < idle) {
      this.#idleTimer = setTimeout(() => this.#checkIdle(), idle - quiet)
      return
    }
    // Every choice had finished and only [DONE] (or the usage chunk) is late: the answer is whole.
    this.#atBodyEnd = true
    if (this.#adapter.onBodyEnd() === undefined) {
      this.#abortRequest(new Error('upstream went quiet after its last finish'))
      return
    }
    this.fail(timeoutError('upstream_idle_timeout', idle))
  }

  #abortRequest (reason: Error): void {
    if (this.#requestDone) return
    if (this.#controller !== null) this.#controller.abort(reason)
    else this.#pendingAbort = reason
  }

  #stopTimers (): void {
    clearTimeout(this.#headersTimer)
    clearTimeout(this.#firstTokenTimer)
    clearTimeout(this.#idleTimer)
    clearTimeout(this.#totalTimer)
  }
}
