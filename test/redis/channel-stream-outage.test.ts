/**
 * A channel stream asked for while Redis is away (stopped, or hung): the store is asked before
 * anything is sent, so the reader gets a real 503 with the contract's JSON error and
 * `retry-after` — not a 200 stream that only pings while nothing can reach it. Once Redis is
 * back, the same request streams the channel. The same holds for the demos built on channels.
 */
import t from 'tap'
import type { Test } from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { waitUntilOk } from '../fixtures/stack.js'

/** How long a refused stream may take (Redis down: at once; Redis hung: the 1 s command timeout). */
const BOUND_MS = 3000
const PUBLISH_KEY = 'channel-outage-publisher'

interface Answer { status: number, contentType: string | null, retryAfter: string | null, body: unknown, ms: number }

/** GETs `path` and reads a JSON answer; a stream (or a hang) fails the bound instead of waiting. */
async function get (relay: RunningRelay, path: string): Promise<Answer> {
  const started = Date.now()
  const res = await fetch(`${relay.url}${path}`, { headers: { accept: 'text/event-stream' }, signal: AbortSignal.timeout(BOUND_MS) })
  const contentType = res.headers.get('content-type')
  let body: unknown
  if (contentType?.startsWith('application/json') === true) body = await res.json()
  else await res.body?.cancel()
  return { status: res.status, contentType, retryAfter: res.headers.get('retry-after'), body, ms: Date.now() - started }
}

async function readyz (relay: RunningRelay): Promise<number> {
  const res = await fetch(`${relay.url}/readyz`)
  await res.body?.cancel()
  return res.status
}

function checkRefused (t: Test, answer: Answer, what: string): void {
  t.equal(answer.status, 503, `${what}: 503, not a 200 stream`)
  t.match(answer.contentType, /^application\/json/, `${what}: a JSON body`)
  t.match(answer.body, { error: { code: 'store_unavailable', message: String } }, `${what}: the contract's error shape`)
  t.ok(answer.retryAfter !== null && Number(answer.retryAfter) >= 0, `${what}: retry-after (${answer.retryAfter})`)
  t.ok(answer.ms < BOUND_MS, `${what}: answered in ${answer.ms} ms`)
}

t.test('a channel stream while Redis is down or hung: 503 store_unavailable; after it is back, the stream works', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => { await redis.destroy() })
  const mock = await startMockUpstream()
  t.teardown(async () => { await mock.close() })
  const relay = await startRelay({ env: { REDIS_URL: redis.url, UPSTREAM_URL: mock.url, RELAY_PUBLISH_KEYS: PUBLISH_KEY } })
  t.teardown(async () => { await relay.close() })

  // Hung (SIGSTOP): the connection looks up, the command times out.
  const pid = redis.pid as number
  process.kill(pid, 'SIGSTOP')
  let hung: Answer
  try {
    hung = await get(relay, '/v1/channels/x/stream')
  } finally {
    process.kill(pid, 'SIGCONT')
  }
  checkRefused(t, hung, 'Redis hung')

  // Down: refused at once.
  await redis.stop()
  await waitUntilOk(async () => await readyz(relay) === 503, BOUND_MS, '/readyz 503')
  checkRefused(t, await get(relay, '/v1/channels/x/stream'), 'Redis down')
  checkRefused(t, await get(relay, '/v1/channels/x/stream?lastEventId=3'), 'Redis down, resuming')
  checkRefused(t, await get(relay, '/demo/orders/o1/progress'), 'Redis down, demo order')
  checkRefused(t, await get(relay, '/demo/ticker'), 'Redis down, demo ticker')

  await redis.restart()
  await waitUntilOk(async () => await readyz(relay) === 200, 10_000, '/readyz 200 again')

  const publish = async (data: unknown): Promise<number[]> => {
    const res = await fetch(`${relay.url}/v1/channels/x/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${PUBLISH_KEY}` },
      body: JSON.stringify({ event: 'step', data }),
      signal: AbortSignal.timeout(BOUND_MS)
    })
    t.equal(res.status, 202, 'published')
    return (await res.json() as { ids: number[] }).ids
  }
  t.same(await publish({ n: 1 }), [1])
  let first: () => void = () => {}
  const subscribed = new Promise<void>((resolve) => { first = resolve })
  const reading = collectSse(`${relay.url}/v1/channels/x/stream`, { until: (_e, all) => all.length >= 2, onEvent: () => first(), timeoutMs: 5000 })
  // The first event came: the reader is subscribed, and gets the next one live.
  await Promise.race([subscribed, reading])
  t.same(await publish({ n: 2 }), [2])
  const res = await reading
  t.equal(res.status, 200)
  t.same(res.events.map((e) => [e.id, e.event, e.data]), [['1', 'step', '{"n":1}'], ['2', 'step', '{"n":2}']], 'the stream works once Redis is back')
})
