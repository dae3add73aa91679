/**
 * The classic SSE demos, as small examples. The clock shows `reply.sse()` on its own, and the
 * typing demo `reply.sse()` over an async generator, one character per event; the ticker and
 * order progress are built on channels, so any number of readers share one producer (one timer
 * for the ticker, one job per order) instead of one timer per connection. A reader that drops
 * resumes with `Last-Event-ID`. Their pages are in public/demo/ (`/demo/clock.html`, …).
 *
 * ```ts
 * await app.register(ssePlugin)
 * await app.register(demoRoutes, { channels })   // GET /demo/clock, /demo/ticker, /demo/typing, /demo/orders/:id/progress
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Channels } from '../lib/relay/channels.js'
import { RelayError } from '../lib/relay/errors.js'
import { openChannelStream } from '../plugins/channel-routes.js'
import { SSE_CONNECTION_ROUTE } from '../plugins/connection-limit.js'
import { sendError } from '../plugins/relay-http.js'
import type { SseEvent } from '../lib/sse/index.js'

export interface DemoRoutesOptions {
  /** Where the ticker and the orders publish. */
  channels: Channels
  /** Clock period. @default 1000 */
  clockIntervalMs?: number
  /** Time between two ticks of the ticker. @default 1000 */
  tickerIntervalMs?: number
  /** Time between two progress steps of an order. @default 500 */
  progressStepMs?: number
  /** Time between two characters of the typing demo. @default 60 */
  typingCharMs?: number
}

const SYMBOLS = ['ACME', 'GLOBEX', 'INITECH', 'UMBRELLA'] as const

/** What the typing demo types when not given `?text=`. */
const TYPING_TEXT = 'Hello! Each character of this sentence is its own server-sent event, with its own id. ' +
  'Drop the connection halfway: EventSource comes back with Last-Event-ID and the text goes on where it stopped. ✨'

/** The `Last-Event-ID` a reconnecting reader sends (EventSource: the header), when it is an event id of ours. */
function lastEventIdOf (request: FastifyRequest): number | undefined {
  const header = request.headers['last-event-id']
  return typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : undefined
}

/** Events `char` with id N for the Nth character (code point) of `text`, from after `afterId`, `charMs` apart. */
async function * typeOut (text: string, afterId: number, charMs: number): AsyncGenerator<SseEvent> {
  const chars = Array.from(text)
  for (let i = afterId; i < chars.length; i++) {
    if (i > afterId) await sleep(charMs)
    yield { id: String(i + 1), event: 'char', data: { char: chars[i] } }
  }
}

export const demoRoutes: FastifyPluginAsync<DemoRoutesOptions> = async (app, options) => {
  if (!app.hasReplyDecorator('sse')) throw new Error('demoRoutes: register the fastify-llm-relay-sse plugin first')
  const { channels, clockIntervalMs = 1000, tickerIntervalMs = 1000, progressStepMs = 500, typingCharMs = 60 } = options
  // Stops the shared producers (the ticker, running orders) when the app closes.
  const closing = new AbortController()
  let ticker: NodeJS.Timeout | undefined
  app.addHook('onClose', async () => {
    clearInterval(ticker)
    closing.abort()
  })
  // The demos are registered beside the relay, not inside it, so its error handler does not
  // cover them: a store failure (Redis away: `store_unavailable`) gets the same JSON 503 with
  // `retry-after` here (this plugin's context only); anything else goes to the app's handler.
  // A request the routes' schemas refuse gets the same JSON 400 as the API's.
  app.setErrorHandler(async (err, _request, reply) => {
    if (err instanceof RelayError) return sendError(reply, err)
    const { validation, message } = err as FastifyError
    if (validation !== undefined) return sendError(reply, new RelayError('invalid_request', 400, message))
    throw err
  })

  /**
   * Serves a channel as SSE from `Last-Event-ID`, or from `afterId` for a new reader. The
   * subscription is made before the stream's headers go out (openChannelStream), so a store
   * that fails gets a 503, not a 200 stream that never receives anything.
   */
  const serveChannel = async (request: FastifyRequest, reply: FastifyReply, channel: string, afterId: number): Promise<void> => {
    const { stream, unsubscribe } = await openChannelStream(reply, channels, channel, lastEventIdOf(request) ?? afterId)
    stream.onClose(unsubscribe)
  }

  // The writer style: push from a timer, stop it when the stream ends for any reason.
  // Every demo stream counts against MAX_CONNECTIONS_PER_CLIENT (plugins/connection-limit.ts).
  app.get('/demo/clock', SSE_CONNECTION_ROUTE, async (_request, reply) => {
    const stream = reply.sse()
    const tick = (): void => { stream.send({ event: 'time', data: { now: new Date().toISOString() } }).catch(() => {}) }
    tick()
    const timer = setInterval(tick, clockIntervalMs)
    stream.onClose(() => { clearInterval(timer) })
  })

  // The iterable style: one character per event, each with its id, so a reader that drops is
  // given the rest of the text after its Last-Event-ID; the stream closes (done) at the end.
  app.get<{ Querystring: { text?: string } }>('/demo/typing', {
    ...SSE_CONNECTION_ROUTE,
    schema: { querystring: { type: 'object', properties: { text: { type: 'string', minLength: 1, maxLength: 1000 } } } }
  }, async (request, reply) => {
    reply.sse(typeOut(request.query.text ?? TYPING_TEXT, lastEventIdOf(request) ?? 0, typingCharMs))
  })

  // One random-walk producer for every reader, started by the first one.
  const prices = new Map<string, number>(SYMBOLS.map((s) => [s, 100]))
  const tick = (): void => {
    const symbol = SYMBOLS[Math.floor(Math.random() * SYMBOLS.length)] ?? 'ACME'
    const price = Math.max(1, (prices.get(symbol) ?? 100) * (1 + (Math.random() - 0.5) / 50))
    prices.set(symbol, price)
    channels.publish('demo:ticker', { event: 'tick', data: { symbol, price: Math.round(price * 100) / 100, at: new Date().toISOString() } })
      .catch((err: unknown) => app.log.warn({ err }, 'demo ticker: publish failed'))
  }
  app.get('/demo/ticker', SSE_CONNECTION_ROUTE, async (request, reply) => {
    if (ticker === undefined) {
      ticker = setInterval(tick, tickerIntervalMs)
      ticker.unref()
    }
    // A ticker is live: a new reader starts at the next tick, a resuming one where it left.
    await serveChannel(request, reply, 'demo:ticker', await channels.lastId('demo:ticker'))
  })

  // One job per order, 0 → 100 %, whoever watches; the channel closes itself at 100 %. A job
  // is not run again while its channel is kept (`lastId` > 0); once the channel has expired, a
  // new reader starts a new one. `running` only holds jobs under way.
  const running = new Set<string>()
  const runOrder = async (orderId: string): Promise<void> => {
    const channel = `order:${orderId}`
    if (await channels.lastId(channel) > 0) return
    for (let percent = 0; percent <= 100; percent += 10) {
      await channels.publish(channel, { event: 'progress', data: { orderId, percent } })
      if (percent < 100) await sleep(progressStepMs, undefined, { signal: closing.signal })
    }
    await channels.close(channel)
  }
  app.get<{ Params: { id: string } }>('/demo/orders/:id/progress', {
    ...SSE_CONNECTION_ROUTE,
    schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } } } }
  }, async (request, reply) => {
    const orderId = request.params.id
    if (!running.has(orderId)) {
      running.add(orderId)
      runOrder(orderId)
        .catch((err: unknown) => {
          if (!closing.signal.aborted) app.log.warn({ err, orderId }, 'demo order: publish failed')
        })
        .finally(() => running.delete(orderId))
    }
    await serveChannel(request, reply, `order:${orderId}`, 0)
  })
}

export default demoRoutes
