/**
 * The classic SSE demos, as small examples of `reply.sse()`. Register after the SSE plugin:
 *
 * ```ts
 * await app.register(ssePlugin)
 * await app.register(demoRoutes)           // GET /demo/clock, /demo/ticker, /demo/orders/:id/progress
 * ```
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyPluginAsync } from 'fastify'
import type { SseEvent } from '../lib/sse/index.js'

export interface DemoRoutesOptions {
  /** Clock period. @default 1000 */
  clockIntervalMs?: number
  /** Time between two ticks of the ticker. @default 1000 */
  tickerIntervalMs?: number
  /** Time between two progress steps of an order. @default 500 */
  progressStepMs?: number
}

const SYMBOLS = ['ACME', 'GLOBEX', 'INITECH', 'UMBRELLA'] as const

/** Random-walk prices, forever, one tick per interval. Stops when the client leaves (`return()`). */
async function * tickerEvents (intervalMs: number): AsyncGenerator<SseEvent> {
  const prices = new Map<string, number>(SYMBOLS.map((s) => [s, 100]))
  for (let id = 1; ; id++) {
    const symbol = SYMBOLS[Math.floor(Math.random() * SYMBOLS.length)] ?? 'ACME'
    const price = Math.max(1, (prices.get(symbol) ?? 100) * (1 + (Math.random() - 0.5) / 50))
    prices.set(symbol, price)
    yield { event: 'tick', id, data: { symbol, price: Math.round(price * 100) / 100, at: new Date().toISOString() } }
    await sleep(intervalMs)
  }
}

export const demoRoutes: FastifyPluginAsync<DemoRoutesOptions> = async (app, options) => {
  if (!app.hasReplyDecorator('sse')) throw new Error('demoRoutes: register the fastify-llm-relay-sse plugin first')
  const { clockIntervalMs = 1000, tickerIntervalMs = 1000, progressStepMs = 500 } = options

  // The writer style: push from a timer, stop it when the stream ends for any reason.
  app.get('/demo/clock', async (_request, reply) => {
    const stream = reply.sse()
    const tick = (): void => { stream.send({ event: 'time', data: { now: new Date().toISOString() } }).catch(() => {}) }
    tick()
    const timer = setInterval(tick, clockIntervalMs)
    stream.onClose(() => { clearInterval(timer) })
  })

  // The async-iterable style: the plugin pipes it, and calls return() when the client leaves.
  app.get('/demo/ticker', async (_request, reply) => {
    reply.sse(tickerEvents(tickerIntervalMs))
  })

  // A job that ends itself: 0 → 100 %, then `done()` (`data: [DONE]` and `close`).
  app.get<{ Params: { id: string } }>('/demo/orders/:id/progress', async (request, reply) => {
    const orderId = request.params.id
    const stream = reply.sse()
    for (let percent = 0; percent <= 100 && !stream.closed; percent += 10) {
      await stream.send({ event: 'progress', id: percent, data: { orderId, percent } })
      if (percent < 100) await sleep(progressStepMs, undefined, { signal: stream.signal }).catch(() => {})
    }
    await stream.done()
  })
}

export default demoRoutes
