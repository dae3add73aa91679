/**
 * The classic SSE demos, as small examples. The clock shows `reply.sse()` on its own; the
 * ticker and order progress are built on channels, so any number of readers share one producer
 * (one timer for the ticker, one job per order) instead of one timer per connection, and a
 * reader that drops resumes with `Last-Event-ID`.
 *
 * ```ts
 * await app.register(ssePlugin)
 * await app.register(demoRoutes, { channels })   // GET /demo/clock, /demo/ticker, /demo/orders/:id/progress
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { Channels } from '../lib/relay/channels.js'
import { RelayError } from '../lib/relay/errors.js'
import { openChannelStream } from '../plugins/channel-routes.js'
import { sendError } from '../plugins/relay-http.js'

export interface DemoRoutesOptions {
  /** Where the ticker and the orders publish. */
  channels: Channels
  /** Clock period. @default 1000 */
  clockIntervalMs?: number
  /** Time between two ticks of the ticker. @default 1000 */
  tickerIntervalMs?: number
  /** Time between two progress steps of an order. @default 500 */
  progressStepMs?: number
}

const SYMBOLS = ['ACME', 'GLOBEX', 'INITECH', 'UMBRELLA'] as const

export const demoRoutes: FastifyPluginAsync<DemoRoutesOptions> = async (app, options) => {
  if (!app.hasReplyDecorator('sse')) throw new Error('demoRoutes: register the fastify-llm-relay-sse plugin first')
  const { channels, clockIntervalMs = 1000, tickerIntervalMs = 1000, progressStepMs = 500 } = options
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
  app.setErrorHandler(async (err, _request, reply) => {
    if (err instanceof RelayError) return sendError(reply, err)
    throw err
  })

  /**
   * Serves a channel as SSE from `Last-Event-ID`, or from `afterId` for a new reader. The
   * subscription is made before the stream's headers go out (openChannelStream), so a store
   * that fails gets a 503, not a 200 stream that never receives anything.
   */
  const serveChannel = async (request: FastifyRequest, reply: FastifyReply, channel: string, afterId: number): Promise<void> => {
    const header = request.headers['last-event-id']
    const from = typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : afterId
    const { stream, unsubscribe } = await openChannelStream(reply, channels, channel, from)
    stream.onClose(unsubscribe)
  }

  // The writer style: push from a timer, stop it when the stream ends for any reason.
  app.get('/demo/clock', async (_request, reply) => {
    const stream = reply.sse()
    const tick = (): void => { stream.send({ event: 'time', data: { now: new Date().toISOString() } }).catch(() => {}) }
    tick()
    const timer = setInterval(tick, clockIntervalMs)
    stream.onClose(() => { clearInterval(timer) })
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
  app.get('/demo/ticker', async (request, reply) => {
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
