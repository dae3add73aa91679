/**
 * A reader on another instance keeps a generation wanted (Relay.read → RedisStore.holdRemote;
 * Generation.graceExpired asks hasRemoteReaders): two relays on one Redis with a short
 * DETACH_GRACE_MS; the generation runs on A, where nobody reads it; a reader on B holds it
 * well past the grace time, and once that reader leaves (its hold is withdrawn at once), the
 * upstream request on A is aborted within the grace time plus the store's renew interval.
 */
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import type { MockUpstream } from '../../lib/mock/index.js'
import { startRedis } from '../fixtures/redis.js'
import type { RunningRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, payloads, untilClose } from '../fixtures/stack.js'

const GRACE_MS = 300
/** RedisStore's renewMs default (the relay does not set it): holds and leases are renewed this often. */
const RENEW_MS = 1000
const SLACK_MS = 500
const READ_MS = 1500
const TOKENS = 150
const TOKEN_DELAY_MS = 40

let redis: RunningRedis
let mock: MockUpstream
t.before(async () => {
  redis = await startRedis()
  mock = await startMockUpstream()
})
t.teardown(async () => {
  await mock.close()
  await redis.destroy()
})

t.test('a reader on B keeps the generation running on A past DETACH_GRACE_MS; once it leaves, the upstream is aborted', async (t) => {
  const relays: RunningRelay[] = []
  for (let i = 0; i < 2; i++) {
    const relay = await startRelay({ env: { REDIS_URL: redis.url, UPSTREAM_URL: mock.url, DETACH_GRACE_MS: String(GRACE_MS) } })
    t.teardown(async () => { await relay.close() })
    relays.push(relay)
  }
  const [a, b] = relays as [RunningRelay, RunningRelay]
  const tag = 'held-by-b'
  const words = Array.from({ length: TOKENS }, (_, i) => `w${i} `)

  const res = await fetch(`${a.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }], mock: { tokens: words, tokenDelayMs: TOKEN_DELAY_MS, firstTokenDelayMs: 0, jitterMs: 0, tag } })
  })
  const created = await res.json() as { streamId?: string }
  t.equal(res.status, 201, 'created on A')
  const streamId = created.streamId as string
  // Nobody ever reads on A: only B's reader can keep the generation wanted past the grace time.
  const abortedWhileRead = mock.waitFor(tag, (r) => r.aborted, READ_MS).then((r) => r, () => undefined)
  const read = await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { signal: AbortSignal.timeout(READ_MS), timeoutMs: READ_MS + 5000 })
  const leftAt = Date.now()
  t.equal(read.status, 200, 'B serves the stream')
  t.ok(read.aborted, 'B\'s reader left on its own, the stream still running')
  t.equal(closeReason(read.events), undefined, 'no close event while B read')
  const deltas = payloads(read.events).filter((p) => p.type === 'delta')
  const lastAt = read.events.at(-1)?.at ?? 0
  t.ok(lastAt > 3 * GRACE_MS, `B was still receiving tokens ${Math.round(lastAt)} ms in (grace ${GRACE_MS} ms); ${deltas.length} deltas`)
  t.ok(deltas.length >= (READ_MS / TOKEN_DELAY_MS) / 2 && deltas.length < TOKENS, `a running answer: ${deltas.length} of ${TOKENS} tokens`)
  const early = await abortedWhileRead
  t.equal(early, undefined, early === undefined ? 'the upstream was not aborted while B read' : `the upstream was aborted while B read, ${early.abortedAt as number - early.startedAt} ms after its start`)
  const during = mock.requests.find((r) => r.tag === tag)
  t.ok(during !== undefined && !during.aborted && during.completedAt === undefined, 'the upstream request was still running when B left')

  const bound = GRACE_MS + RENEW_MS + SLACK_MS
  const record = await mock.waitFor(tag, (r) => r.aborted, bound + 2000).catch(() => undefined)
  t.ok(record?.aborted, 'the upstream request on A is aborted once B\'s reader is gone')
  const took = (record?.abortedAt ?? Infinity) - leftAt
  t.ok(took <= bound, `aborted ${took} ms after B's reader left (bound: grace ${GRACE_MS} + renew ${RENEW_MS} + ${SLACK_MS} = ${bound} ms)`)
  t.ok((record?.tokensSent ?? TOKENS) < TOKENS, `stopped early: ${record?.tokensSent ?? '?'} of ${TOKENS} tokens sent`)

  const late = await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { until: untilClose, timeoutMs: 5000 })
  t.equal(closeReason(late.events), 'abandoned', 'the journal ended abandoned, as seen from B')
})
