/**
 * The producing instance dies mid-generation (a real process, killed with SIGKILL: no shutdown
 * hook, no end marker, its lease simply stops being renewed). A reader on another instance must
 * get `producer_lost` within the lease time, never an endless wait.
 */
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import { startRelayProcess } from '../fixtures/relay-process.js'
import { collectSse } from '../fixtures/sse-client.js'
import { textOf } from '../fixtures/stack.js'

/** The store's default lease (3 s) plus its check interval (1 s): the promise of the issue. */
const LEASE_BOUND_MS = 4000

t.test('kill -9 of the producing instance: the reader on B gets producer_lost within the lease time', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => { await redis.destroy() })
  const mock = await startMockUpstream()
  t.teardown(async () => { await mock.close() })
  const env = { REDIS_URL: redis.url, UPSTREAM_URL: mock.url }

  // A: the real server entry, in its own process.
  const a = await startRelayProcess(t, env)
  const aUrl = a.url

  const b = await startRelay({ env })
  t.teardown(async () => { await b.close() })

  const words = Array.from({ length: 200 }, (_, i) => `k${i} `)
  const created = await fetch(`${aUrl}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], mock: { tokens: words, tokenDelayMs: 40, firstTokenDelayMs: 0, jitterMs: 0 } })
  })
  const { streamId } = await created.json() as { streamId: string }

  let killedAt = 0
  const res = await collectSse(`${b.url}/v1/chat/stream/${streamId}`, {
    until: (e) => e.event === 'close',
    timeoutMs: 20_000,
    onEvent: (e) => {
      if (killedAt === 0 && Number(e.id) >= 5) {
        killedAt = Date.now()
        a.kill('SIGKILL')
      }
    }
  })
  t.equal(res.status, 200, 'B serves the stream')
  t.ok(killedAt > 0, 'A was killed mid-generation (after event 5)')
  a.kill('SIGKILL') // (no-op once killed; if the stream failed before event 5, `exited` must still settle)
  t.equal((await a.exited).signal, 'SIGKILL', 'A died of SIGKILL')
  const error = res.events.find((e) => e.event === 'error')
  t.ok(error !== undefined, 'B\'s reader got an error event')
  t.match(JSON.parse(error?.data ?? '{}'), { type: 'error', code: 'producer_lost' })
  const close = res.events.at(-1)
  t.equal(close?.event, 'close')
  t.not(res.events.some((e) => e.data === '[DONE]'), true, 'no [DONE]: a cut answer is never taken for a whole one')
  const took = Math.round((close?.at ?? 0) - (res.events.find((e) => Number(e.id) >= 5)?.at ?? 0))
  t.ok(took < LEASE_BOUND_MS + 1000, `producer_lost ${took} ms after the kill (bound ${LEASE_BOUND_MS} ms)`)
  const text = textOf(res.events)
  t.ok(text.length > 0 && words.join('').startsWith(text), 'what arrived is an exact prefix of the answer')

  const late = await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { until: (e) => e.event === 'close', timeoutMs: 5000 })
  t.match(JSON.parse(late.events.find((e) => e.event === 'error')?.data ?? '{}'), { code: 'producer_lost' }, 'a later reader gets the same end at once')
  t.equal(textOf(late.events), text, 'and the same text')
})
