/**
 * `maxStreamLength` (lib/relay/stores/redis/writer.ts, a flush: `XADD <log> MAXLEN ~ <maxStreamLength>`):
 * a journal's Redis stream holds about that many stream entries (batches), however many flushes
 * wrote it. `~` lets Redis trim only whole radix-tree nodes, so the stream may hold up to one
 * node's worth more than the bound (`stream-node-max-entries`), and never fewer than the bound.
 * Trimming removes the oldest batches: a reader following live is not affected.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { makeEntry } from '../../lib/relay/journal.js'
import type { JournalEntry, JournalMeta } from '../../lib/relay/journal.js'
import { RedisStore } from '../../lib/relay/stores/redis.js'
import { collector, endedWithin } from '../fixtures/journal-collector.js'
import { startRedis } from '../fixtures/redis.js'
import type { RunningRedis } from '../fixtures/redis.js'

const META: JournalMeta = { kind: 'generation', owner: 'key:a', conversationId: 'c1', createdAt: 1_700_000_000_000 }
const MAX_STREAM_LENGTH = 10
const FLUSHES = 300

let redis: RunningRedis
t.before(async () => { redis = await startRedis() })
t.teardown(async () => { await redis.destroy() })

const entry = (id: number): JournalEntry => makeEntry(id, JSON.stringify({ type: 'delta', content: `t${id} ` }))
const turn = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

async function until (what: () => boolean, timeoutMs: number, label: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!what()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`)
    await turn()
  }
}

/** Calls of one command since the last CONFIG RESETSTAT (INFO commandstats). */
async function calls (admin: Redis, command: string): Promise<number> {
  const info = await admin.info('commandstats')
  const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)
  return match === null ? 0 : Number(match[1])
}

t.test(`a journal flushed ${FLUSHES} times keeps about maxStreamLength (${MAX_STREAM_LENGTH}) stream entries in Redis`, async (t) => {
  const prefix = 'maxlen:'
  const options = { url: redis.url, prefix, maxStreamLength: MAX_STREAM_LENGTH, flushMs: 0 }
  const a = new RedisStore(options)
  const b = new RedisStore(options)
  const admin = new Redis(redis.url)
  t.teardown(async () => {
    admin.disconnect()
    await a.close()
    await b.close()
  })
  await a.waitUntilReady()
  await b.waitUntilReady()
  const log = a.keys.log('s')
  const nodeMax = Number((await admin.config('GET', 'stream-node-max-entries') as string[])[1])
  t.ok(nodeMax > 0, `stream-node-max-entries is ${nodeMax}`)
  t.ok(FLUSHES > MAX_STREAM_LENGTH + nodeMax, `${FLUSHES} flushes are more than the most approximate trimming may keep (${MAX_STREAM_LENGTH} + ${nodeMax})`)

  await a.create('s', META)
  const live = collector()
  b.subscribe('s', 0, live)
  await admin.config('RESETSTAT')
  let most = 0
  for (let id = 1; id <= FLUSHES; id++) {
    a.append('s', [entry(id)])
    // Each append gets its own flush (one XADD): the next is appended only once this one is taken.
    await until(() => a.pendingEntries === 0, 5000, `entry ${id} to be flushed`)
    if (id % 25 === 0) most = Math.max(most, await admin.xlen(log))
  }
  await until(() => live.entries.length === FLUSHES, 5000, 'the live reader on B to have every entry')
  const xadds = await calls(admin, 'xadd')
  t.ok(xadds >= FLUSHES, `${xadds} XADDs for ${FLUSHES} appends: one stream entry per flush`)

  const length = await admin.xlen(log)
  t.ok(length <= MAX_STREAM_LENGTH + nodeMax, `XLEN ${length} <= ${MAX_STREAM_LENGTH} + ${nodeMax} (approximate MAXLEN)`)
  t.ok(most <= MAX_STREAM_LENGTH + nodeMax, `never above that while written (most seen ${most})`)
  t.ok(length >= MAX_STREAM_LENGTH, `XLEN ${length} >= ${MAX_STREAM_LENGTH}: trimming never goes below the bound`)
  const kept = await admin.xrange(log, '-', '+')
  const keptIds = kept.map(([id]) => id)
  const firstKept = Number(keptIds[0]?.split('-')[0])
  t.same(keptIds, Array.from({ length: kept.length }, (_, i) => `${firstKept + i}-0`), 'the newest batches are kept, consecutive')
  t.equal(keptIds.at(-1), `${FLUSHES}-0`, 'up to the last one')

  a.end('s', 'done')
  t.equal(await endedWithin(live, 5000), 'done', 'the live reader on B ends done')
  t.same(live.entries.map((e) => e.id), Array.from({ length: FLUSHES }, (_, i) => i + 1), 'having read every entry, in order, though older batches were trimmed behind it')
  const ended = await admin.xlen(log)
  t.ok(ended <= MAX_STREAM_LENGTH + nodeMax + 1, `after the end marker: XLEN ${ended}`)
  const recent = collector()
  b.subscribe('s', FLUSHES - 5, recent)
  t.equal(await endedWithin(recent, 5000), 'done')
  t.same(recent.entries.map((e) => e.id), [296, 297, 298, 299, 300], 'a reader resuming within the kept batches gets the rest')
})
