/**
 * A network partition between the relay and Redis (a proxy cuts every connection; Redis keeps
 * running, with its data) at the moment the generations of a client end: the slot releases fail
 * then, and are written once Redis is reachable again, so the client is not locked out. (Before:
 * 8 of 8 releases failed with "Stream isn't writeable" and were never retried: every later start
 * of that client got 429 for the slot counter's 11 minutes.)
 */
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { startTcpProxy } from '../fixtures/tcp-proxy.js'
import { waitUntil, waitUntilOk } from '../fixtures/wait.js'

async function start (relay: RunningRelay, tokens: string[], tokenDelayMs: number): Promise<number> {
  const res = await fetch(`${relay.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], mock: { tokens, tokenDelayMs, firstTokenDelayMs: 0, jitterMs: 0, tag: 'partition' } })
  })
  await res.body?.cancel()
  return res.status
}

t.test('releases that fail during a partition are written when Redis is reachable again: the client starts again', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => { await redis.destroy() })
  const proxy = await startTcpProxy(redis.port)
  t.teardown(async () => { await proxy.close() })
  const mock = await startMockUpstream()
  t.teardown(async () => { await mock.close() })
  const relay = await startRelay({ env: { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, UPSTREAM_URL: mock.url } })
  t.teardown(async () => { await relay.close() })

  const words = Array.from({ length: 15 }, (_, i) => `w${i} `)
  for (let i = 0; i < 8; i++) t.equal(await start(relay, words, 100), 201, `generation ${i + 1} of 8 (the client's limit)`)
  t.equal(await start(relay, ['x'], 0), 429, 'the client is at its limit')
  proxy.cut()
  // The eight answers end (1.5 s each) while Redis cannot be reached.
  await waitUntil(() => mock.requests.filter((r) => r.tag === 'partition' && r.completedAt !== undefined).length === 8, 10_000, 'the 8 answers to end')
  await waitUntil(() => relay.app.relay.local.size === 0, 5000, 'the generations to end')
  t.equal(await start(relay, ['x'], 0), 503, 'no start while Redis is unreachable')
  proxy.heal()
  const healedAt = Date.now()
  await waitUntilOk(async () => await start(relay, ['x'], 0) === 201, 10_000, 'a start of the same client')
  t.ok(Date.now() - healedAt < 5000, `the client starts again ${Date.now() - healedAt} ms after the partition healed`)
  const statuses = []
  for (let i = 0; i < 7; i++) statuses.push(await start(relay, words, 100))
  t.same(statuses, [201, 201, 201, 201, 201, 201, 201], 'and has all 8 of its slots')
})
