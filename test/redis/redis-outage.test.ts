/**
 * redis-server stopped and restarted (empty: no persistence) in the middle of a stream: nothing
 * crashes, the running generation finishes for its local client, readiness and new generations
 * say 503 while Redis is away, and everything recovers when it is back — including the journal,
 * written again from memory so another instance can still resume it.
 */
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, textOf, waitUntilOk } from '../fixtures/stack.js'

t.test('stop and restart redis-server mid-stream', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => { await redis.destroy() })
  const mock = await startMockUpstream()
  t.teardown(async () => { await mock.close() })
  const env = { REDIS_URL: redis.url, UPSTREAM_URL: mock.url }
  const a = await startRelay({ env })
  t.teardown(async () => { await a.close() })
  const b = await startRelay({ env })
  t.teardown(async () => { await b.close() })

  const words = Array.from({ length: 70 }, (_, i) => `r${i}${i % 9 === 4 ? '\r\n' : ' '}`)
  let outage: Promise<void> | undefined
  const during: { readyz: number[], create?: { status: number, body: unknown, ms: number } } = { readyz: [] }
  const created0 = await fetch(`${a.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], mock: { tokens: words, tokenDelayMs: 40, firstTokenDelayMs: 100, jitterMs: 0 } })
  })
  const { streamId } = await created0.json() as { streamId: string }
  // A reader on B follows it live through the outage (its shared XREAD loses its connection).
  const remote = collectSse(`${b.url}/v1/chat/stream/${streamId}`, { until: (e) => e.event === 'close', timeoutMs: 20_000 })
  const stream = collectSse(`${a.url}/v1/chat/stream/${streamId}`, {
    until: (e) => e.event === 'close',
    timeoutMs: 20_000,
    onEvent: (e) => {
      if (outage === undefined && Number(e.id) === 5) {
        outage = (async () => {
          await redis.stop()
          await waitUntilOk(async () => await readyz(a) === 503 && await readyz(b) === 503, 3000, 'readyz 503')
          during.readyz = [await readyz(a), await readyz(b)]
          const started = Date.now()
          const res = await fetch(`${a.url}/v1/chat`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }] })
          })
          during.create = { status: res.status, body: await res.json(), ms: Date.now() - started }
          await new Promise((resolve) => setTimeout(resolve, 800))
          await redis.restart()
        })()
      }
    }
  })
  const res = await stream
  await outage
  t.same(during.readyz, [503, 503], '/readyz said not ready on both instances while Redis was down')
  t.equal(during.create?.status, 503, 'a new generation was refused with 503')
  t.match(during.create?.body, { error: { code: 'store_unavailable' } })
  t.ok((during.create?.ms ?? Infinity) < 1500, `and fast (${during.create?.ms} ms)`)

  t.equal(textOf(res.events), words.join(''), 'the running generation finished for its local client, exact text')
  t.equal(res.events.filter((e) => e.id !== undefined).at(-1)?.data, '[DONE]')
  t.equal(closeReason(res.events), 'done')

  for (const relay of [a, b]) await waitUntilOk(async () => await readyz(relay) === 200, 5000, 'ready again')
  t.pass('/readyz 200 again on both')

  // The restarted Redis is empty: A wrote the journal again from memory under the same ids, so
  // B's live reader continued where it was, and a new reader on B can resume it.
  const followed = await remote
  t.equal(textOf(followed.events), words.join(''), 'the live reader on B got the exact text across the outage')
  t.same(followed.events.filter((e) => e.id !== undefined).map((e) => Number(e.id)), res.events.filter((e) => e.id !== undefined).map((e) => Number(e.id)), 'each event once')
  t.equal(closeReason(followed.events), 'done')
  await waitUntilOk(async () => (await b.app.relay.store.state(streamId))?.ended === 'done', 3000, 'the journal back in Redis')
  const resumed = await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { headers: { 'last-event-id': '3' }, until: (e) => e.event === 'close', timeoutMs: 5000 })
  t.same(resumed.events.filter((e) => e.id !== undefined).map((e) => e.data), res.events.filter((e) => e.id !== undefined).slice(3).map((e) => e.data),
    'B resumes the journal written during the outage, from id 3, exactly')
  t.equal(closeReason(resumed.events), 'done')

  // And new generations work again, across instances.
  const created = await fetch(`${a.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], mock: { tokens: ['after ', 'the ', 'outage'], tokenDelayMs: 20, firstTokenDelayMs: 0, jitterMs: 0 } })
  })
  t.equal(created.status, 201)
  const { streamId: next } = await created.json() as { streamId: string }
  const onB = await collectSse(`${b.url}/v1/chat/stream/${next}`, { until: (e) => e.event === 'close', timeoutMs: 5000 })
  t.equal(textOf(onB.events), 'after the outage')
  t.equal(closeReason(onB.events), 'done')
})

async function readyz (relay: RunningRelay): Promise<number> {
  const res = await fetch(`${relay.url}/readyz`)
  await res.body?.cancel()
  return res.status
}
