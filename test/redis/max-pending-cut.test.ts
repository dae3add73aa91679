/**
 * The `maxPendingBytes` cut (lib/relay/stores/redis/writer.ts, `append` → `cut`): while Redis takes no
 * writes, a producer's unwritten entries are bounded; past the bound the journal is no longer
 * written to Redis and ends there as `error`, so a reader on another instance gets a gap-free
 * prefix and an error end, never something that reads as a whole answer. Local readers on the
 * producer keep the whole journal (memory).
 *
 * Redis is frozen with SIGSTOP, not stopped: a restarted (empty) Redis would make the producer
 * write the whole journal again from memory (`recover`), which undoes the cut by design.
 */
import t from 'tap'
import type { Test } from 'tap'
import { makeEntry } from '../../lib/relay/journal.js'
import type { JournalEntry, JournalMeta } from '../../lib/relay/journal.js'
import { RedisStore } from '../../lib/relay/stores/redis.js'
import type { RedisStoreOptions } from '../../lib/relay/stores/redis.js'
import { collector, endedWithin } from '../fixtures/journal-collector.js'
import { startRedis } from '../fixtures/redis.js'
import { waitUntil } from '../fixtures/wait.js'
import type { RunningRedis } from '../fixtures/redis.js'

const META: JournalMeta = { kind: 'generation', owner: 'key:a', conversationId: 'c1', createdAt: 1_700_000_000_000 }
const MAX_PENDING = 1024
const COMMAND_TIMEOUT = 200

let redis: RunningRedis
t.before(async () => { redis = await startRedis() })
t.teardown(async () => {
  // Never leave a frozen server behind (its teardown would wait on SIGTERM, which a stopped process ignores).
  const pid = redis.pid
  if (pid !== undefined) process.kill(pid, 'SIGCONT')
  await redis.destroy()
})

let counter = 0
async function pair (t: Test, options: Partial<RedisStoreOptions>): Promise<[RedisStore, RedisStore]> {
  const prefix = `cut${counter++}:`
  const stores: RedisStore[] = []
  for (let i = 0; i < 2; i++) {
    const s = new RedisStore({ url: redis.url, prefix, ...options })
    t.teardown(async () => { await s.close() })
    await s.waitUntilReady()
    stores.push(s)
  }
  return stores as [RedisStore, RedisStore]
}

/** ~100 bytes of data per entry. */
const entry = (id: number): JournalEntry => makeEntry(id, JSON.stringify({ type: 'delta', content: `token ${String(id).padStart(4, '0')} ${'x'.repeat(60)}` }))
const ids = (entries: readonly JournalEntry[]): number[] => entries.map((e) => e.id)
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const turn = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

t.test('over maxPendingBytes while Redis is frozen: memory stays bounded, a remote reader gets a gap-free prefix and error, local readers the whole answer', async (t) => {
  const [a, b] = await pair(t, { maxPendingBytes: MAX_PENDING, commandTimeoutMs: COMMAND_TIMEOUT, leaseMs: 10_000 })
  const pid = redis.pid as number
  await a.create('s', META)
  const local = collector()
  a.subscribe('s', 0, local)
  const remote = collector()
  b.subscribe('s', 0, remote)

  // Written while Redis is there: the remote reader has them live.
  a.append('s', [entry(1), entry(2)])
  await waitUntil(() => remote.entries.length === 2, 5000, 'entries 1-2 on B')
  t.equal(a.pendingEntries, 0, 'nothing waits before the outage')

  const N = 60 // ~6 KB, well over the 1 KiB cap
  process.kill(pid, 'SIGSTOP')
  let bytesAppended = 0
  let accepted = 0
  /** The most bytes queued for Redis seen after any append (the store's own count). */
  let mostQueued = 0
  const queued = (): number => a.pendingBytes
  try {
    // A producer going on token by token, each in its own event-loop turn: the first append's
    // flush hangs on the frozen server (for commandTimeoutMs), and later ones queue behind it.
    for (let id = 3; id <= N; id++) {
      const e = entry(id)
      if (a.append('s', [e])) accepted++
      bytesAppended += e.data.length
      mostQueued = Math.max(mostQueued, queued())
      await turn()
    }
    t.equal(accepted, N - 2, 'every append accepted locally')
    t.ok(bytesAppended > 4 * MAX_PENDING, `${bytesAppended} bytes appended while Redis was frozen`)
    // Queued entries stay under the cap; a hung flush that times out puts its own entries back
    // (themselves under the cap when it took them): twice the cap is the most this can reach.
    t.ok(mostQueued <= 2 * MAX_PENDING, `bytes queued for Redis stayed bounded (at most ${mostQueued}, cap ${MAX_PENDING}) while ${bytesAppended} were appended`)
    // Let hung flushes time out (more than once) and put their entries back.
    await sleep(3 * COMMAND_TIMEOUT)
    t.ok(queued() <= 2 * MAX_PENDING, `still bounded after the hung flushes timed out (${queued()} bytes, ${a.pendingEntries} entries)`)
    t.same(ids(local.entries), Array.from({ length: N }, (_, i) => i + 1), 'the local reader got every entry meanwhile, from memory')
    t.equal(remote.reason, undefined, 'the remote reader has not ended')
  } finally {
    process.kill(pid, 'SIGCONT')
  }

  // Redis answers again: the cut holds (nothing more of this journal goes to Redis, or readers
  // elsewhere would see a gap), and the journal has not ended yet, so nor has the remote reader.
  const M = N + 10
  for (let id = N + 1; id <= M; id++) {
    a.append('s', [entry(id)])
    await sleep(10)
  }
  await sleep(300)
  t.equal(remote.reason, undefined, 'the remote reader waits for the end: a cut journal does not end before its producer ends it')
  a.end('s', 'done')
  t.equal(local.reason, 'done', 'the local reader ends done')
  t.same(ids(local.entries), Array.from({ length: M }, (_, i) => i + 1), 'with every entry')

  const reason = await endedWithin(remote, 5000)
  t.equal(reason, 'error', 'the remote reader ends with error: a cut answer, not taken for a whole one')
  const got = ids(remote.entries)
  const k = got.length
  t.same(got, Array.from({ length: k }, (_, i) => i + 1), `the remote reader got ids 1..${k}, in order, no gap`)
  t.ok(k >= 2 && k < N, `a prefix: ${k} of ${M} entries (${N} appended by the end of the outage)`)
  t.same(remote.entries.map((e) => e.data), local.entries.slice(0, k).map((e) => e.data), 'the same data as the producer\'s')

  await waitUntil(() => a.pendingEntries === 0, 5000, 'A to have nothing pending')
  t.equal(a.pendingEntries, 0, 'the producer has nothing left to write')
  t.equal(a.pendingBytes, 0, 'and counts no queued byte')

  const late = collector()
  b.subscribe('s', 0, late)
  t.equal(await endedWithin(late, 5000), 'error', 'a reader joining later on B gets the same end')
  t.same(ids(late.entries), got, 'and the same prefix')
  t.equal((await b.state('s'))?.ended, 'error', 'Redis says error')
  t.equal((await a.state('s'))?.ended, 'done', 'the producer (memory) still says done')
  const whole = collector()
  a.subscribe('s', 0, whole)
  t.equal(whole.reason, 'done')
  t.equal(whole.entries.length, M, 'a local reader after the end still reads the whole answer')
})
