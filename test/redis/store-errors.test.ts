/**
 * Errors Redis answers (not outages: Redis is up and refuses) are logged once with their code,
 * counted in relay_store_errors_total{code}, and make /readyz not ready while they last; a reader
 * whose follower can no longer read gets an `error` event and `close`, never a silent hang.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { startMockUpstream } from '../../lib/mock/index.js'
import type { MockUpstream } from '../../lib/mock/index.js'
import { startRedis } from '../fixtures/redis.js'
import type { RunningRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, untilClose, waitUntilOk } from '../fixtures/stack.js'

let redis: RunningRedis
let mock: MockUpstream
let admin: Redis
t.before(async () => {
  redis = await startRedis()
  mock = await startMockUpstream()
  admin = new Redis(redis.url)
})
t.teardown(async () => {
  admin.disconnect()
  await mock.close()
  await redis.destroy()
})

/** A relay whose log lines (pino JSON) are kept. */
async function relayWithLog (t: Test): Promise<{ relay: RunningRelay, lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  const relay = await startRelay({ env: { REDIS_URL: redis.url, UPSTREAM_URL: mock.url }, logger: { level: 'warn', stream } })
  t.teardown(async () => { await relay.close() })
  return { relay, lines }
}

async function readyz (relay: RunningRelay): Promise<number> {
  const res = await fetch(`${relay.url}/readyz`)
  await res.body?.cancel()
  return res.status
}

async function errorsCounted (relay: RunningRelay, code: string): Promise<number> {
  const text = await (await fetch(`${relay.url}/metrics`)).text()
  const match = new RegExp(`^relay_store_errors_total\\{code="${code}"\\} (\\d+)`, 'm').exec(text)
  return match === null ? 0 : Number(match[1])
}

async function start (relay: RunningRelay, mockScript: Record<string, unknown> = { tokens: ['ok'] }): Promise<{ status: number, body: unknown }> {
  const res = await fetch(`${relay.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], mock: mockScript }) })
  return { status: res.status, body: await res.json() }
}

t.test('Redis out of memory (OOM): starts 503, the error logged once with its code and counted, not ready while it lasts', async (t) => {
  const { relay, lines } = await relayWithLog(t)
  t.equal(await readyz(relay), 200)
  await admin.config('SET', 'maxmemory-policy', 'noeviction')
  await admin.config('SET', 'maxmemory', '1')
  try {
    for (let i = 0; i < 3; i++) {
      const refused = await start(relay)
      t.equal(refused.status, 503, `start ${i + 1}: 503`)
      t.match(refused.body, { error: { code: 'store_unavailable' } })
    }
    await waitUntilOk(async () => await readyz(relay) === 503, 3000, '/readyz 503')
    t.pass('/readyz 503 while Redis refuses writes')
    t.ok(await errorsCounted(relay, 'OOM') >= 3, `relay_store_errors_total{code="OOM"} ${await errorsCounted(relay, 'OOM')}`)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    t.equal(await readyz(relay), 503, 'still not ready while it lasts')
  } finally {
    await admin.config('SET', 'maxmemory', '0')
  }
  const logged = lines.filter((line) => line.code === 'OOM')
  t.equal(logged.length, 1, `logged once (${logged.length} lines), though it failed again and again`)
  t.equal(logged[0]?.level, 50, 'as an error')
  t.match(logged[0]?.msg, /Redis error OOM/)
  await waitUntilOk(async () => await readyz(relay) === 200, 5000, '/readyz 200 once Redis takes writes again')
  t.equal((await start(relay)).status, 201, 'starts work again')
})

t.test('a reader whose follower can no longer read (NOPERM on XREAD): an error event and close, the error counted', async (t) => {
  const a = await relayWithLog(t)
  const b = await relayWithLog(t)
  const created = await start(a.relay, { tokens: Array.from({ length: 100 }, (_, i) => `w${i} `), tokenDelayMs: 50, firstTokenDelayMs: 0, jitterMs: 0 })
  const { streamId } = created.body as { streamId: string }
  let seen = 0
  let resolveSeen!: () => void
  const reading = new Promise<void>((resolve) => { resolveSeen = resolve })
  const res = collectSse(`${b.relay.url}/v1/chat/stream/${streamId}`, { until: untilClose, timeoutMs: 15_000, onEvent: () => { if (++seen === 3) resolveSeen() } })
  await reading
  await admin.call('ACL', 'SETUSER', 'default', '-xread')
  try {
    const events = (await res).events
    const error = events.find((e) => e.event === 'error')
    t.match(JSON.parse(error?.data ?? '{}'), { type: 'error', code: 'store_error' }, 'an error event')
    t.equal(closeReason(events), 'error', 'then close')
    t.ok(events.filter((e) => e.id !== undefined).length >= 3, 'after what it had read')
    t.ok(await errorsCounted(b.relay, 'NOPERM') >= 1, 'the error counted on the reader\'s instance')
    t.ok(b.lines.some((line) => line.code === 'NOPERM'), 'and logged with its code')
  } finally {
    await admin.call('ACL', 'SETUSER', 'default', '+xread')
  }
})
