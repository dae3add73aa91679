import { Pool } from 'undici'
import { buildRequest } from './adapters/index.js'
import { Attempt, DONE, FAILED, READING } from './attempt.js'
import { listModels } from './models.js'
import type { UpstreamModel } from './models.js'
import type { AttemptRequest } from './attempt.js'
import { resolveOptions } from './options.js'
import type { ResolvedOptions } from './options.js'
import { retryDelay, sleep } from './retry.js'
import { UpstreamError } from './types.js'
import type { ChatRequestBody, UpstreamClientOptions, UpstreamEvent } from './types.js'

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
  stream (body: ChatRequestBody, options: { signal: AbortSignal }): AsyncIterable<UpstreamEvent> {
    return this.#stream(body, options.signal)
  }

  /**
   * The push form of {@link stream}, for the per-token hot path: each event is handed to
   * `onEvent` synchronously as soon as it is parsed (inside the socket's data callback), with no
   * promise, generator step or microtask per event. Same retries, errors and abort as `stream()`:
   * resolves when the answer is complete, rejects with an {@link UpstreamError} or the signal's
   * abort reason. An `onEvent` that throws stops the request, and `consume` rejects with that error.
   */
  async consume (body: ChatRequestBody, options: { signal: AbortSignal }, onEvent: (event: UpstreamEvent) => void): Promise<void> {
    const { signal } = options
    if (signal.aborted) throw abortReason(signal)
    const request = this.#request(body)
    let attempt: Attempt | undefined
    const onAbort = (): void => attempt?.cancel(abortReason(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    let delivered = false
    let thrown: { error: unknown } | undefined
    try {
      for (let retry = 0; ; retry++) {
        const current = new Attempt(request)
        attempt = current
        let settle!: () => void
        const settled = new Promise<void>((resolve) => { settle = resolve })
        current.onReadable = () => {
          const queue = current.queue
          try {
            while (current.head < queue.length) {
              const event = queue[current.head++] as UpstreamEvent
              delivered = true
              onEvent(event)
            }
          } catch (err) {
            thrown = { error: err }
            current.cancel(err)
          }
          current.drained()
          if (current.state !== READING) settle()
        }
        current.start()
        await settled
        // The attempt may read its last bytes for a while yet: it must not hold the consumer.
        current.onReadable = null
        if (thrown !== undefined) throw thrown.error
        if (current.state === DONE) return
        await this.#backoff(retry, current.error, delivered, signal, request.deadline)
      }
    } finally {
      signal.removeEventListener('abort', onAbort)
      attempt?.cancel(CONSUMER_LEFT)
    }
  }

  #request (body: ChatRequestBody): AttemptRequest {
    const { format, model, apiKey, totalTimeoutMs } = this.#options
    const shape = buildRequest(format, body, model, apiKey)
    return {
      dispatcher: this.#pool,
      options: this.#options,
      path: this.#basePath + shape.path + this.#options.url.search,
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        ...shape.headers
      },
      body: JSON.stringify(shape.body),
      deadline: totalTimeoutMs > 0 ? Date.now() + totalTimeoutMs : undefined
    }
  }

  async * #stream (body: ChatRequestBody, signal: AbortSignal): AsyncGenerator<UpstreamEvent, void, undefined> {
    if (signal.aborted) throw abortReason(signal)
    const request = this.#request(body)
    let attempt: Attempt | undefined
    const onAbort = (): void => attempt?.cancel(abortReason(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    let yielded = false
    try {
      for (let retry = 0; ; retry++) {
        attempt = new Attempt(request)
        attempt.start()
        const queue = attempt.queue
        for (;;) {
          while (attempt.head < queue.length) {
            const event = queue[attempt.head++] as UpstreamEvent
            yielded = true
            yield event
          }
          attempt.drained()
          if (attempt.state === DONE) return
          if (attempt.state === FAILED) break
          await attempt.wait()
        }
        await this.#backoff(retry, attempt.error, yielded, signal, request.deadline)
      }
    } finally {
      signal.removeEventListener('abort', onAbort)
      attempt?.cancel(CONSUMER_LEFT)
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
