import t from 'tap'
import { demoRoutes } from '../../examples/demo-routes.js'
import { Channels } from '../../lib/relay/channels.js'
import { MemoryStore } from '../../lib/relay/stores/memory.js'
import { collectSse } from '../fixtures/sse-client.js'
import { startApp } from '../fixtures/sse-server.js'

async function demo (t: Parameters<typeof startApp>[0], retainMs?: number): Promise<string> {
  const store = new MemoryStore({ retainMs })
  t.teardown(() => store.close())
  const { url } = await startApp(t, async (app) => {
    await app.register(demoRoutes, { channels: new Channels({ store }), clockIntervalMs: 20, tickerIntervalMs: 20, progressStepMs: 5 })
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

t.test('GET /demo/ticker: readers share one producer and see the same ticks', async (t) => {
  const url = await demo(t)
  const [a, b] = await Promise.all([0, 1].map(async () => await collectSse(`${url}/demo/ticker`, { until: (_e, all) => all.length >= 4 })))
  for (const res of [a, b]) {
    t.same(res?.events.map((e) => e.event), ['tick', 'tick', 'tick', 'tick'])
    for (const e of res?.events ?? []) t.match(JSON.parse(e.data), { symbol: String, price: Number, at: String })
  }
  // One producer: the same id carries the same tick for every reader.
  const byId = new Map(a?.events.map((e) => [e.id, e.data]))
  const shared = b?.events.filter((e) => byId.has(e.id)) ?? []
  t.ok(shared.length >= 2, 'the readers overlap')
  for (const e of shared) t.equal(e.data, byId.get(e.id))
  const resumed = await collectSse(`${url}/demo/ticker`, { headers: { 'last-event-id': a?.events[1]?.id as string }, until: (_e, all) => all.length >= 2 })
  t.same(resumed.events.slice(0, 2).map((e) => e.id), a?.events.slice(2, 4).map((e) => e.id), 'a resume continues after its last id')
})

t.test('GET /demo/orders/:id/progress goes 0 → 100 % for every watcher, then closes', async (t) => {
  const url = await demo(t)
  const [first, second] = await Promise.all([0, 1].map(async () => await collectSse(`${url}/demo/orders/A42/progress`)))
  for (const res of [first, second]) {
    t.ok(res?.ended, 'the stream ends itself')
    const progress = res?.events.filter((e) => e.event === 'progress').map((e) => JSON.parse(e.data)) ?? []
    t.same(progress.map((p) => p.percent), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    t.ok(progress.every((p) => p.orderId === 'A42'))
    t.same(res?.events.at(-1), { event: 'close', data: '{"reason":"done"}', id: undefined, at: res?.events.at(-1)?.at })
  }
  const late = await collectSse(`${url}/demo/orders/A42/progress`)
  t.equal(late.events.filter((e) => e.event === 'progress').length, 11, 'a late watcher replays the finished job')
})

t.test('an order whose finished channel has expired runs again for a new watcher, instead of leaving it waiting', async (t) => {
  const url = await demo(t, 100)
  const percents = async (): Promise<number[]> => {
    const res = await collectSse(`${url}/demo/orders/B7/progress`)
    t.ok(res.ended, 'the stream ends itself')
    return res.events.filter((e) => e.event === 'progress').map((e) => JSON.parse(e.data).percent)
  }
  t.same(await percents(), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(await percents(), [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 'after the channel expired: the job again')
})

t.test('the demos need the SSE plugin', async (t) => {
  const { default: Fastify } = await import('fastify')
  const app = Fastify()
  await t.rejects(async () => { await app.register(demoRoutes, { channels: new Channels({ store: new MemoryStore() }) }).ready() }, /register the fastify-llm-relay-sse plugin first/)
  await app.close()
})
