/**
 * `fastify-llm-relay-sse`: decorates `reply.sse()`, an SSE writer ({@link SseStream}) built on the
 * Node response, outside Fastify's reply pipeline (hijacked), so no serializer, `onSend` hook or
 * compression plugin ever touches (or buffers) the stream.
 */
import type { ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import createError from '@fastify/error'
import type { FastifyErrorConstructor } from '@fastify/error'
import fp from 'fastify-plugin'
import type { FastifyBaseLogger, FastifyInstance, FastifyReply } from 'fastify'
import { SseStream, resolveSseOptions } from '../lib/sse/index.js'
import type { CloseReason, SseEvent, SseOptions } from '../lib/sse/index.js'
import type { ResolvedSseOptions } from '../lib/sse/options.js'

const PLUGIN_NAME = 'fastify-llm-relay-sse'

/**
 * How long `fastify.close()` lets a stream flush its close frame before destroying it: a reader
 * that stopped reading would otherwise keep the server open forever.
 */
const SHUTDOWN_GRACE_MS = 2000

/** Options of the plugin: defaults for every `reply.sse()` of the instance. */
export interface SsePluginOptions extends SseOptions {}

/** What `reply.sse(source)` pipes: each item is sent with `send()`, in order. */
export type SseSource = AsyncIterable<SseEvent> | Iterable<SseEvent>

/** The `reply.sse` decorator. */
export interface ReplySse {
  /**
   * Turns the reply into an SSE stream and returns its writer. The status and headers set on the
   * reply before the call are kept (the SSE headers win); the reply is hijacked, so the handler
   * must not send anything else. In an async handler, return nothing (or `reply`) after it.
   *
   * @throws {TypeError} for invalid options, before anything is sent (Fastify answers 500).
   */
  (options?: SseOptions): SseStream
  /**
   * Streams `source`: each item is sent (awaiting backpressure), then the stream closes with
   * `close('done')`, without the LLM `[DONE]` sentinel, which plain SSE apps do not want (call
   * `done()` yourself for it). An error thrown by the source becomes an `error` event then
   * `close` with reason `error`; it is logged, never an unhandled rejection. When the client
   * leaves, the source's `return()` is called, so a generator's `finally` runs.
   */
  (source: SseSource, options?: SseOptions): SseStream
}

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Opens a server-sent events stream on this reply (plugin `fastify-llm-relay-sse`).
     * Defaults: `retry` 3000 ms, `heartbeatMs` 15000, `maxBufferedBytes` 1 MiB, `timeoutMs` 0
     * (none), `flushHeaders` true, `fastPath` true, or the plugin's options.
     */
    sse: ReplySse
  }
}

/** Raised at boot when another plugin owns `reply.sse`. */
// Typed by name: the inferred type (`createError.FastifyErrorConstructor`) would name a namespace
// that declaration files cannot reach under every module resolution of a consumer.
export const FST_LLM_RELAY_SSE_CONFLICT: FastifyErrorConstructor<{ code: 'FST_LLM_RELAY_SSE_CONFLICT' }, [string]> = createError(
  'FST_LLM_RELAY_SSE_CONFLICT',
  `${PLUGIN_NAME}: %s. Both plugins own reply.sse: register only one of them.`
)

/**
 * Work that must run when the app closes before the open streams are closed (the relay lets its
 * running generations finish within a grace time, so their readers get the whole answer).
 */
const kBeforeClose = Symbol('fastify-llm-relay-sse.beforeClose')
type BeforeClose = Array<() => Promise<void>>

/**
 * Runs `fn` when the app closes, before this plugin closes its open streams with `shutdown`,
 * whichever of the two was registered first (hooks of one kind run in registration order).
 * @throws {Error} when `fastify` has no `reply.sse()` of this plugin.
 */
export function beforeSseClose (fastify: FastifyInstance, fn: () => Promise<void>): void {
  const list = (fastify as unknown as Record<symbol, BeforeClose | undefined>)[kBeforeClose]
  if (list === undefined) throw new Error(`${PLUGIN_NAME} is not registered on this instance`)
  list.push(fn)
}

const conflictWithFastifySse = (): Error =>
  new FST_LLM_RELAY_SSE_CONFLICT('@fastify/sse is registered on this instance')

const SSE_OPTION_KEYS = ['retry', 'heartbeatMs', 'maxBufferedBytes', 'timeoutMs', 'flushHeaders', 'fastPath'] as const

/**
 * Only the SSE options (a plugin's options object also carries Fastify's own keys). One given as
 * `undefined` is left out, so the defaults under it apply — except `retry`, where an explicit
 * `undefined` means "no `retry:` line".
 */
function pickSseOptions (options: object): SseOptions {
  const picked: Record<string, unknown> = {}
  for (const key of SSE_OPTION_KEYS) {
    if (isGiven(options, key)) picked[key] = (options as Record<string, unknown>)[key]
  }
  return picked as SseOptions
}

function isGiven (options: object, key: typeof SSE_OPTION_KEYS[number]): boolean {
  return Object.hasOwn(options, key) && (key === 'retry' || (options as Record<string, unknown>)[key] !== undefined)
}

/** Whether `options` still has the SSE options `picked` was taken from (same keys, same values). */
function samePicked (picked: SseOptions, options: object): boolean {
  for (const key of SSE_OPTION_KEYS) {
    const given = isGiven(options, key)
    if (given !== Object.hasOwn(picked, key)) return false
    if (given && (options as Record<string, unknown>)[key] !== picked[key]) return false
  }
  return true
}

function isSource (value: unknown): value is SseSource {
  return value != null && typeof value === 'object' &&
    (Symbol.asyncIterator in value || Symbol.iterator in value)
}

async function ssePluginImpl (fastify: FastifyInstance, options: SsePluginOptions): Promise<void> {
  if (fastify.hasPlugin('@fastify/sse')) throw conflictWithFastifySse()
  if (fastify.hasReplyDecorator('sse')) {
    throw new FST_LLM_RELAY_SSE_CONFLICT('reply.sse is already decorated (by another plugin, or this one registered twice)')
  }
  // Validated once, at boot, with messages naming the option.
  const defaults = pickSseOptions(options)
  const resolvedDefaults = resolveSseOptions(defaults, `${PLUGIN_NAME}: `)
  /**
   * Options objects a route passes to `reply.sse()` (usually one constant per route), resolved
   * once rather than per reply: what was picked from each is kept, and an object changed since
   * is resolved (and checked) again.
   */
  const resolvedCache = new WeakMap<object, { picked: SseOptions, resolved: ResolvedSseOptions }>()
  const resolveCall = (callOptions: SseOptions | undefined): ResolvedSseOptions => {
    if (callOptions == null) return resolvedDefaults
    if (typeof callOptions !== 'object') throw new TypeError(`reply.sse(): options must be an object (got ${String(callOptions)})`)
    const hit = resolvedCache.get(callOptions)
    if (hit !== undefined && samePicked(hit.picked, callOptions)) return hit.resolved
    const picked = pickSseOptions(callOptions)
    const resolved = resolveSseOptions({ ...defaults, ...picked }, 'reply.sse(): ')
    resolvedCache.set(callOptions, { picked, resolved })
    return resolved
  }

  /** Open streams and their responses, to end them on `fastify.close()`. */
  const open = new Map<SseStream, ServerResponse | Http2ServerResponse>()
  /** Replies that already have a stream: a second `reply.sse()` would write headers twice. */
  const started = new WeakSet<FastifyReply>()
  let closing = false

  function sse (this: FastifyReply, sourceOrOptions?: SseSource | SseOptions, maybeOptions?: SseOptions): SseStream {
    const source = isSource(sourceOrOptions) ? sourceOrOptions : undefined
    const callOptions = source === undefined ? sourceOrOptions as SseOptions | undefined : maybeOptions
    if (started.has(this)) throw new Error('reply.sse() was already called for this reply')
    if (this.sent || this.raw.headersSent) throw new Error('reply.sse(): the reply was already sent')
    const resolved = resolveCall(callOptions)

    started.add(this)
    // Hijack: Fastify stops managing the response, so onSend hooks (compression) and the
    // serializer never see the stream, and Fastify does not end it when the handler returns.
    this.hijack()
    const raw = this.raw
    const stream = new SseStream(raw, { headers: this.getHeaders(), statusCode: this.statusCode }, resolved)
    const log = this.log

    if (closing) {
      // Opened while the server shuts down: tell the client at once rather than hold it.
      // close() only rejects for an unserializable `extra`: none here.
      stream.close('shutdown')
    } else if (!stream.closed) {
      open.set(stream, raw)
      stream.onClose((reason) => {
        open.delete(stream)
        // A client leaving is normal: info, not an error.
        if (reason === 'client') log.info('sse: client disconnected')
        else log.debug({ reason }, 'sse: stream closed')
      })
    }
    if (source !== undefined) {
      pipeSource(stream, source, log).catch((err: unknown) => { log.error({ err }, 'sse: source pipe failed') })
    }
    return stream
  }

  fastify.decorateReply('sse', sse as ReplySse)
  const beforeClose: BeforeClose = []
  fastify.decorate(kBeforeClose, beforeClose)

  // @fastify/sse registered after this plugin, in this context or a child one, is caught here
  // (routes) or at ready (no routes).
  fastify.addHook('onRoute', function (this: FastifyInstance) {
    if (this.hasPlugin('@fastify/sse')) throw conflictWithFastifySse()
  })
  fastify.addHook('onReady', async function () {
    if (fastify.hasPlugin('@fastify/sse')) throw conflictWithFastifySse()
  })

  // preClose runs before the server stops: streams never end by themselves, so without this
  // `fastify.close()` would wait for every client to leave.
  fastify.addHook('preClose', async () => {
    for (const fn of beforeClose) await fn()
    closing = true
    const ends: Array<Promise<void>> = []
    for (const [stream, raw] of open) {
      ends.push(finished(raw, SHUTDOWN_GRACE_MS))
      stream.close('shutdown')
    }
    await Promise.all(ends)
  })
}

/** Resolves when `raw` is finished or closed; destroys it after `graceMs` (a reader not reading). */
function finished (raw: ServerResponse | Http2ServerResponse, graceMs: number): Promise<void> {
  const res = raw as ServerResponse
  if (res.writableFinished || res.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      res.off('finish', done)
      res.off('close', done)
      resolve()
    }
    const timer = setTimeout(() => {
      res.destroy()
      done()
    }, graceMs)
    res.on('finish', done)
    res.on('close', done)
  })
}

/** Pipes `source` into `stream` (see {@link ReplySse}). Never rejects. */
async function pipeSource (stream: SseStream, source: SseSource, log: FastifyBaseLogger): Promise<void> {
  let iterator: AsyncIterator<SseEvent> | Iterator<SseEvent> | undefined
  let finishedSource = false
  const release = (reason: CloseReason): void => {
    const it = iterator
    if (finishedSource || it?.return === undefined) return
    finishedSource = true
    // The client left or the stream was closed elsewhere: let the source free what it holds
    // (upstream requests, timers). An async generator runs this after its pending next().
    try {
      Promise.resolve(it.return()).catch((err: unknown) => { log.warn({ err, reason }, 'sse: source return() failed') })
    } catch (err) {
      log.warn({ err, reason }, 'sse: source return() failed')
    }
  }
  try {
    iterator = Symbol.asyncIterator in source
      ? (source as AsyncIterable<SseEvent>)[Symbol.asyncIterator]()
      : (source as Iterable<SseEvent>)[Symbol.iterator]()
    stream.onClose(release)
    while (!stream.closed) {
      let step: IteratorResult<SseEvent>
      try {
        step = await iterator.next()
      } catch (err) {
        // A source that threw is finished: no return() for it.
        finishedSource = true
        throw err
      }
      if (step.done === true) {
        finishedSource = true
        break
      }
      if (stream.closed) break
      await stream.send(step.value)
    }
    await stream.close('done')
  } catch (err) {
    log.error({ err }, 'sse: source failed')
    const error = err instanceof Error ? err : new Error(String(err))
    // Closing calls release(): a send() that rejected (invalid event) leaves a live source.
    await stream.error(error)
  }
}

/** The plugin: `await app.register(ssePlugin, defaults)` decorates `reply.sse()` ({@link ReplySse}). */
const plugin = fp(ssePluginImpl, { name: PLUGIN_NAME, fastify: '5.x' })
export default plugin
export { plugin as ssePlugin, SseStream }
export type { CloseReason, SseEvent, SseOptions }
