import { Pool } from 'undici'
import { buildRequest } from './adapters/index.js'
import { Attempt, DONE } from './attempt.js'
import { listModels } from './models.js'
import type { UpstreamModel } from './models.js'
import type { AttemptRequest } from './attempt.js'
import { resolveOptions } from './options.js'
import type { ResolvedOptions } from './options.js'
import { retryDelay, sleep } from './retry.js'
import { UpstreamError } from './types.js'
import type { ChatRequestBody, StreamOptions, UpstreamClientOptions, UpstreamEvent, UpstreamReport } from './types.js'

/** Pool counters, to see that no request holds a socket after it ended. */
export interface UpstreamClientStats {
  /** Open sockets. */
  connected: number
  /** Open sockets with no request on them. */
  free: number
  /** Requests on a socket. */
  running: number
  /** Requests waiting for a socket. */
  pending: number
}

/** The reason thrown when the signal aborts without one (AbortController always sets one). */
function abortReason (signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

/** Closes the request when the consumer leaves the `for await` early. */
const CONSUMER_LEFT = new Error('the consumer stopped reading the upstream stream')

/** `stream()`: past this many unread events the socket is paused until the consumer catches up. */
const HIGH_WATER = 512

function noop (): void {}

/**
 * Streams chat answers from one upstream API (`UPSTREAM_URL`) as normalized
 * {@link UpstreamEvent}s. Owns one undici `Pool` for the upstream origin (keep-alive, at most
 * `connections` sockets); {@link close} it on shutdown.
 */
export class UpstreamClient {
  readonly #options: ResolvedOptions
  readonly #pool: Pool
  /** The base URL's path without a trailing slash; its query (Azure's `api-version`) is kept. */
  readonly #basePath: string
  #closing: Promise<void> | undefined

  /** Validates `options` (a `TypeError` names the bad option) and creates the pool. */
  constructor (options: UpstreamClientOptions) {
    this.#options = resolveOptions(options)
    const { url, connections, connectTimeoutMs } = this.#options
    this.#basePath = url.pathname.replace(/\/+$/, '')
    this.#pool = new Pool(url.origin, {
      connections,
      // 0 would mean undici's default (10 s): a huge value is "off".
      connect: { timeout: connectTimeoutMs === 0 ? 2 ** 31 - 1 : connectTimeoutMs },
      headersTimeout: 0,
      bodyTimeout: 0,
      pipelining: 1
    })
  }

  /**
   * Streams one chat request. Retries (before the first yielded event only) happen inside.
   * Throws {@link UpstreamError} from the iterator, or the signal's abort reason when aborted
   * (never an UpstreamError, so an abort can be told from a failure). Leaving the `for await`
   * early aborts the request and frees its socket.
   */
  stream (body: ChatRequestBody, options: StreamOptions): AsyncIterable<UpstreamEvent> {
    return this.#stream(body, options.signal, options.report)
  }

  /**
   * The push form of {@link stream}, for the per-token hot path: each event is handed to
   * `onEvent` synchronously as soon as it is parsed (inside the socket's data callback), with no
   * promise, generator step or microtask per event. Same retries, errors and abort as `stream()`:
   * resolves when the answer is complete, rejects with an {@link UpstreamError} or the signal's
   * abort reason. An `onEvent` that throws stops the request, and `consume` rejects with that error.
   */
  consume (body: ChatRequestBody, options: StreamOptions, onEvent: (event: UpstreamEvent) => void): Promise<void> {
    return this.#run(body, options.signal, onEvent, undefined, options.report)
  }

  /**
   * The one upstream loop, behind both `consume()` and `stream()`: an attempt, and after a
   * failure a backoff and the next attempt, until one completes or the failure is final (see
   * {@link #backoff}). `onAttempt` learns each attempt, so a consumer that buffers can pause its
   * socket; `report` learns the attempts, the last status and the model.
   */
  async #run (body: ChatRequestBody, signal: AbortSignal, onEvent: (event: UpstreamEvent) => void, onAttempt: ((attempt: Attempt) => void) | undefined, report: UpstreamReport | undefined): Promise<void> {
    if (signal.aborted) throw abortReason(signal)
    const request = this.#request(body)
    if (report !== undefined) report.model = request.model
    let attempt: Attempt | undefined
    const onAbort = (): void => attempt?.cancel(abortReason(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    let delivered = false
    const consumer = {
      onEvent (event: UpstreamEvent): void {
        delivered = true
        onEvent(event)
      },
      onEnd: noop
    }
    try {
      for (let retry = 0; ; retry++) {
        const ended = new Promise<void>((resolve) => { consumer.onEnd = resolve })
        const current = new Attempt(request, consumer)
        attempt = current
        onAttempt?.(current)
        if (report !== undefined) report.attempts = retry + 1
        current.start()
        await ended
        if (report !== undefined) report.status = current.status
        if (current.state === DONE) return
        // What `onEvent` threw ends the request too: it comes after a delivered event.
        await this.#backoff(retry, current.error, delivered, signal, request.deadline)
      }
    } finally {
      signal.removeEventListener('abort', onAbort)
      attempt?.cancel(CONSUMER_LEFT)
    }
  }

  /**
   * `stream()` on the one loop: events wait in a queue for the consumer's pace; past
   * {@link HIGH_WATER} undelivered events the socket is paused until the consumer has read them.
   */
  async * #stream (body: ChatRequestBody, signal: AbortSignal, report: UpstreamReport | undefined): AsyncGenerator<UpstreamEvent, void, undefined> {
    if (signal.aborted) throw abortReason(signal)
    const queue: UpstreamEvent[] = []
    let head = 0
    let wake: (() => void) | null = null
    let attempt: Attempt | undefined
    let outcome: { failed: boolean, error: unknown } | undefined
    const notify = (): void => {
      const resolve = wake
      wake = null
      resolve?.()
    }
    // Aborted by the caller's signal (with its reason), or by the consumer leaving the for-await.
    const local = new AbortController()
    const onAbort = (): void => local.abort(abortReason(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    this.#run(body, local.signal, (event) => {
      queue.push(event)
      if (queue.length - head > HIGH_WATER) attempt?.pause()
      notify()
    }, (current) => { attempt = current }, report).then(
      () => { outcome = { failed: false, error: undefined } },
      (error: unknown) => { outcome = { failed: true, error } }
    ).finally(notify)
    try {
      for (;;) {
        while (head < queue.length) yield queue[head++] as UpstreamEvent
        queue.length = 0
        head = 0
        // undici parses the bytes it already holds inside resume(): events may be queued (and the
        // socket paused again) right here, with nobody to wake the wait below.
        attempt?.resume()
        if (queue.length > 0) continue
        if (outcome !== undefined) {
          if (outcome.failed) throw outcome.error
          return
        }
        await new Promise<void>((resolve) => { wake = resolve })
      }
    } finally {
      signal.removeEventListener('abort', onAbort)
      if (outcome === undefined) local.abort(CONSUMER_LEFT)
    }
  }

  #request (body: ChatRequestBody): AttemptRequest & { model: string | undefined } {
    const { format, model, apiKey, totalTimeoutMs } = this.#options
    const shape = buildRequest(format, body, model, apiKey)
    return {
      model: typeof shape.body.model === 'string' ? shape.body.model : undefined,
      dispatcher: this.#pool,
      options: this.#options,
      path: this.#basePath + shape.path + this.#options.url.search,
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        ...shape.headers
      },
      body: Buffer.from(JSON.stringify(shape.body)),
      deadline: totalTimeoutMs > 0 ? Date.now() + totalTimeoutMs : undefined
    }
  }

  /**
   * After a failed attempt: throws what ends the request (the abort reason, or the error when it
   * is not retryable, a token was already delivered, retries are used up or the backoff would
   * pass the deadline), else waits out the backoff before the next attempt.
   */
  async #backoff (retry: number, error: unknown, delivered: boolean, signal: AbortSignal, deadline: number | undefined): Promise<void> {
    if (signal.aborted) throw abortReason(signal)
    if (delivered || !(error instanceof UpstreamError) || !error.retryable || retry >= this.#options.maxRetries) throw error
    const delay = retryDelay(retry, error)
    if (delay === undefined) throw error
    if (deadline !== undefined && Date.now() + delay >= deadline) throw error
    await sleep(delay, signal, () => abortReason(signal))
  }

  /** Counters of the owned pool. */
  get stats (): UpstreamClientStats {
    const { connected, free, running, pending } = this.#pool.stats
    return { connected, free, running, pending }
  }

  /** The upstream's own model list (`GET ${url}/models`), in OpenAI's shape. Throws an {@link UpstreamError}. */
  async listModels (options: { signal?: AbortSignal } = {}): Promise<UpstreamModel[]> {
    return await listModels(this.#pool, this.#options, this.#basePath, options.signal)
  }

  /** Closes the owned pool: waits for requests in flight (abort them first), then closes its sockets. */
  close (): Promise<void> {
    this.#closing ??= this.#pool.close()
    return this.#closing
  }
}
