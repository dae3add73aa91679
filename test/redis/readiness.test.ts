/**
 * /readyz tells the truth about the store. A Redis that hangs (SIGSTOP: its connections stay
 * open, nothing answers) makes the relay not ready within about a second and for as long as it
 * hangs, while starts get 503 store_unavailable; once it answers again the relay is ready again.
 * (Before: 10 of 10 probes answered 200 during a 6-15 s SIGSTOP while every start got 503.)
 */
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { waitUntilOk } from '../fixtures/wait.js'

const STOP_MS = 6000
/** A hung Redis is seen within: a probe outstanding for half the 1-s command timeout, or a failed tick. */
const NOTICE_MS = 1500

async function status (relay: RunningRelay, path: string, init?: RequestInit): Promise<number> {
  const res = await fetch(`${relay.url}${path}`, init)
  await res.body?.cancel()
  return res.status
}

/** /readyz's `reason` (why not ready). */
async function reason (relay: RunningRelay): Promise<string | undefined> {
  return (await (await fetch(`${relay.url}/readyz`)).json() as { reason?: string }).reason
}

t.test(`Redis hung (SIGSTOP) for ${STOP_MS / 1000} s: /readyz 503 throughout, starts 503, ready again after`, async (t) => {
  const redis = await startRedis()
  t.teardown(async () => { await redis.destroy() })
  const mock = await startMockUpstream()
  t.teardown(async () => { await mock.close() })
  const relay = await startRelay({ env: { REDIS_URL: redis.url, UPSTREAM_URL: mock.url } })
  t.teardown(async () => { await relay.close() })
  t.equal(await status(relay, '/readyz'), 200, 'ready before')

  const pid = redis.pid as number
  const probes: Array<{ at: number, status: number }> = []
  const starting: Array<Promise<number>> = []
  process.kill(pid, 'SIGSTOP')
  const stoppedAt = Date.now()
  try {
    while (Date.now() - stoppedAt < STOP_MS) {
      probes.push({ at: Date.now() - stoppedAt, status: await status(relay, '/readyz') })
      // A start a second, beside the probes (each waits up to the store's command timeout).
      if (probes.length % 4 === 0 && Date.now() - stoppedAt < STOP_MS - 1500) starting.push(status(relay, '/v1/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }) }))
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    // (A subscriber connection left silent for 2 s is replaced; the new one cannot get ready meanwhile.)
    t.match(await reason(relay), /^(127\.0\.0\.1:\d+ has not answered a PING for \d+ ms|a Redis command failed \(.*(Command timed out|PING).*\); not ready for \d+ ms more|notification channel \S+ is not subscribed yet \(connection to main (connect|connecting)\))$/, '/readyz says why: a PING unanswered, a command timed out, or a subscriber connection not up')
  } finally {
    process.kill(pid, 'SIGCONT')
  }
  const starts = await Promise.all(starting)
  const after = probes.filter((p) => p.at >= NOTICE_MS)
  t.ok(after.length >= 10, `${after.length} probes from ${NOTICE_MS} ms on`)
  t.same(after.filter((p) => p.status !== 503), [], `/readyz answered 503 from ${NOTICE_MS} ms after the stop until the end (${probes.length} probes; first 503 at ${probes.find((p) => p.status === 503)?.at} ms)`)
  t.ok(starts.length >= 3 && starts.every((s) => s === 503), `every start got 503 (${starts.join(', ')})`)

  await waitUntilOk(async () => await status(relay, '/readyz') === 200, 10_000, 'ready again')
  t.equal(await reason(relay), undefined, 'no reason once ready')
  const created = await status(relay, '/v1/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], mock: { tokens: ['ok'] } }) })
  t.equal(created, 201, 'and starts work again')
})
