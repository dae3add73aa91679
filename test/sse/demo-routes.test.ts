import t from 'tap'
import { demoRoutes } from '../../examples/demo-routes.js'
import { collectSse } from '../fixtures/sse-client.js'
import { startApp } from '../fixtures/sse-server.js'

async function demo (t: Parameters<typeof startApp>[0]): Promise<string> {
  const { url } = await startApp(t, async (app) => {
    await app.register(demoRoutes, { clockIntervalMs: 20, tickerIntervalMs: 20, progressStepMs: 5 })
  })
  return url
}

t.test('GET /demo/clock pushes the time', async (t) => {
  const url = await demo(t)
  const res = await collectSse(`${url}/demo/clock`, { until: (_e, all) => all.length >= 3 })
  t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
  for (const e of res.events) {
    t.equal(e.event, 'time')
    t.ok(!Number.isNaN(Date.parse(JSON.parse(e.data).now)), `an ISO time: ${e.data}`)
  }
})

t.test('GET /demo/ticker streams price ticks', async (t) => {
  const url = await demo(t)
  const res = await collectSse(`${url}/demo/ticker`, { until: (_e, all) => all.length >= 3 })
  t.same(res.events.map((e) => [e.event, e.id]), [['tick', '1'], ['tick', '2'], ['tick', '3']])
  for (const e of res.events) t.match(JSON.parse(e.data), { symbol: String, price: Number, at: String })
})

t.test('GET /demo/orders/:id/progress goes 0 → 100 % and ends with [DONE] and close', async (t) => {
  const url = await demo(t)
  const res = await collectSse(`${url}/demo/orders/A42/progress`)
  t.ok(res.ended, 'the stream ends itself')
  const progress = res.events.filter((e) => e.event === 'progress').map((e) => JSON.parse(e.data))
  t.same(progress.map((p) => p.percent), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
  t.ok(progress.every((p) => p.orderId === 'A42'))
  t.same(res.events.slice(-2).map((e) => [e.event, e.data]), [[undefined, '[DONE]'], ['close', '{"reason":"done"}']])
})

t.test('the demos need the SSE plugin', async (t) => {
  const { default: Fastify } = await import('fastify')
  const app = Fastify()
  await t.rejects(async () => { await app.register(demoRoutes).ready() }, /register the fastify-llm-relay-sse plugin first/)
  await app.close()
})
