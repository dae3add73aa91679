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
    await app.register(demoRoutes, { channels: new Channels({ store }), clockIntervalMs: 20, tickerIntervalMs: 20, progressStepMs: 5, typingCharMs: 5 })
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

t.test('GET /demo/typing: one character (code point) per event, each with its id, then close', async (t) => {
  const url = await demo(t)
  const text = 'Hé 🙂\n"x"'
  const res = await collectSse(`${url}/demo/typing?text=${encodeURIComponent(text)}`)
  t.ok(res.ended, 'the stream ends itself')
  const chars = res.events.filter((e) => e.event === 'char')
  t.same(chars.map((e) => JSON.parse(e.data).char), Array.from(text), 'one event per character, the emoji whole')
  t.same(chars.map((e) => e.id), Array.from(text).map((_c, i) => String(i + 1)), 'ids 1..n')
  t.same(res.events.at(-1)?.event, 'close')
  t.same(JSON.parse(res.events.at(-1)?.data ?? '{}'), { reason: 'done' })

  const resumed = await collectSse(`${url}/demo/typing?text=${encodeURIComponent(text)}`, { headers: { 'last-event-id': '3' } })
  t.same(resumed.events.filter((e) => e.event === 'char').map((e) => JSON.parse(e.data).char).join(''), Array.from(text).slice(3).join(''),
    'after Last-Event-ID: the rest of the text, nothing repeated')
  const untyped = await collectSse(`${url}/demo/typing`, { until: (_e, all) => all.length >= 5 })
  t.equal(untyped.events.map((e) => JSON.parse(e.data).char).join(''), 'Hello', 'without ?text=, its own text')
})

t.test('a demo request its schema refuses gets the JSON error of the API', async (t) => {
  const url = await demo(t)
  for (const path of [`/demo/typing?text=${'x'.repeat(1001)}`, '/demo/typing?text=', '/demo/orders/bad!id/progress']) {
    const res = await fetch(`${url}${path}`)
    t.equal(res.status, 400, path)
    t.match(await res.json(), { error: { code: 'invalid_request', message: String } }, path)
  }
})

t.test('the demos need the SSE plugin', async (t) => {
  const { default: Fastify } = await import('fastify')
  const app = Fastify()
  await t.rejects(async () => { await app.register(demoRoutes, { channels: new Channels({ store: new MemoryStore() }) }).ready() }, /register the fastify-llm-relay-sse plugin first/)
  await app.close()
})
