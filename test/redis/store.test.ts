import t from 'tap'
import type { Test } from 'tap'
import { Redis } from 'ioredis'
import { makeEntry } from '../../lib/relay/journal.js'
import type { JournalEntry, JournalMeta } from '../../lib/relay/journal.js'
import type { ControlMessage } from '../../lib/relay/store.js'
import { RedisStore } from '../../lib/relay/stores/redis.js'
import type { RedisStoreOptions } from '../../lib/relay/stores/redis.js'
import { collector } from '../fixtures/journal-collector.js'
import { startRedis } from '../fixtures/redis.js'
import type { RunningRedis } from '../fixtures/redis.js'

const META: JournalMeta = { kind: 'generation', owner: 'key:a', conversationId: 'c1', createdAt: 1_700_000_000_000 }

let redis: RunningRedis
t.before(async () => { redis = await startRedis() })
t.teardown(async () => { await redis.destroy() })

/** A store on the test's Redis, closed at the end of the test, ready before it is used. */
async function store (t: Test, options: Partial<RedisStoreOptions> = {}): Promise<RedisStore> {
  const s = new RedisStore({ url: redis.url, prefix: `t${counter++}:`, ...options })
  t.teardown(async () => { await s.close() })
  await s.waitUntilReady()
  return s
}
let counter = 0
/** Two stores of one "cluster" (same prefix): two instances. */
async function pair (t: Test, options: Partial<RedisStoreOptions> = {}): Promise<[RedisStore, RedisStore]> {
  const prefix = `p${counter++}:`
  return [await store(t, { prefix, ...options }), await store(t, { prefix, ...options })]
}

const entry = (id: number): JournalEntry => makeEntry(id, JSON.stringify({ type: 'delta', content: `t${id} \n\r😀` }))
const ids = (entries: readonly JournalEntry[]): number[] => entries.map((e) => e.id)
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function until (what: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!what()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(10)
  }
}

t.test('a journal produced on A is read on B: entries in order, framed as on A, then the end', async (t) => {
  const [a, b] = await pair(t)
  await a.create('s1', META)
  a.append('s1', [entry(1), entry(2)])
  a.append('s1', [makeEntry(3, '{"type":"error","code":"x","message":"y"}', 'error')])
  a.end('s1', 'error')
  await until(() => a.pendingEntries === 0)
  const c = collector()
  b.subscribe('s1', 0, c)
  t.equal(await c.ended, 'error')
  t.same(ids(c.entries), [1, 2, 3])
  t.same(c.entries.map((e) => e.frame), [entry(1).frame, entry(2).frame, makeEntry(3, '{"type":"error","code":"x","message":"y"}', 'error').frame])
  t.same(await b.state('s1'), { meta: META, lastId: 3, ended: 'error' })
  t.same(await a.state('s1'), { meta: META, lastId: 3, ended: 'error' }, 'the producer answers from memory')
  t.equal(await b.state('nope'), undefined)
})

t.test('a remote reader that throws is logged, dropped and ended with error; the other reader goes on', async (t) => {
  const logged: string[] = []
  const [a, b] = await pair(t, { log: (_level, msg) => { logged.push(msg) } })
  await a.create('throws', META)
  const good = collector()
  let calls = 0
  const badEnds: string[] = []
  b.subscribe('throws', 0, { onEntries: () => { calls++; throw new Error('reader broke') }, onEnd: (reason) => { badEnds.push(reason) } })
  b.subscribe('throws', 0, good)
  for (let id = 1; id <= 3; id++) a.append('throws', [entry(id)])
  a.end('throws', 'done')
  t.equal(await good.ended, 'done')
  t.same(ids(good.entries), [1, 2, 3], 'the other reader got everything')
  t.equal(calls, 1, 'the failed reader was dropped')
  t.same(badEnds, ['error'], 'and ended with error, not left open with a gap')
  t.ok(logged.includes('a journal reader failed: dropped'), 'and logged')
})

t.test('local readers are served from memory synchronously, before append returns', async (t) => {
  const s = await store(t)
  await s.create('s', META)
  s.append('s', [entry(1)])
  const c = collector()
  s.subscribe('s', 0, c)
  t.same(ids(c.entries), [1], 'catch-up delivered before subscribe returned')
  s.append('s', [entry(2)])
  t.same(ids(c.entries), [1, 2], 'live entry delivered before append returned')
})

t.test('exactly once across the XRANGE/XREAD seam while A appends', async (t) => {
  const [a, b] = await pair(t)
  const N = 1500
  await a.create('seam', META)
  const readers: Array<{ after: number, c: ReturnType<typeof collector> }> = []
  let next = 1
  // A producer appending in small bursts across many event-loop turns, and readers joining B
  // at random moments from random ids: each catch-up races the live read.
  await new Promise<void>((resolve) => {
    const step = (): void => {
      const burst = 1 + Math.floor(Math.random() * 4)
      for (let i = 0; i < burst && next <= N; i++) a.append('seam', [entry(next++)])
      if (Math.random() < 0.05) {
        const after = Math.floor(Math.random() * next)
        const c = collector()
        b.subscribe('seam', after, c)
        readers.push({ after, c })
      }
      if (next <= N) setImmediate(step)
      else resolve()
    }
    step()
  })
  a.end('seam', 'done')
  t.ok(readers.length > 10, `${readers.length} readers joined mid-stream`)
  for (const { after, c } of readers) {
    t.equal(await c.ended, 'done')
    const got = ids(c.entries)
    if (got.length !== N - after || got.some((id, i) => id !== after + 1 + i)) {
      t.fail(`reader after ${after}: ${got.length} entries, expected ${after + 1}..${N} once each`)
    }
  }
  t.pass('every reader got every entry after its id exactly once, in order')
  t.equal(b.followed, 0, 'followers dropped once their journals ended')
})

t.test('a reader joining after the end gets the rest and the end; after the last id just the end', async (t) => {
  const [a, b] = await pair(t)
  await a.create('e', META)
  a.append('e', [entry(1), entry(2), entry(3)])
  a.end('e', 'cancelled')
  await until(() => a.pendingEntries === 0)
  await sleep(20)
  const mid = collector()
  b.subscribe('e', 2, mid)
  t.equal(await mid.ended, 'cancelled')
  t.same(ids(mid.entries), [3])
  const last = collector()
  b.subscribe('e', 3, last)
  t.equal(await last.ended, 'cancelled')
  t.same(last.entries, [])
})

t.test('an empty journal ended on A ends on B', async (t) => {
  const [a, b] = await pair(t)
  await a.create('empty', META)
  const c = collector()
  b.subscribe('empty', 0, c)
  await sleep(50)
  a.end('empty', 'superseded')
  t.equal(await c.ended, 'superseded')
  t.same(c.entries, [])
})

t.test('many remote journals share one blocking connection and each is woken at once', async (t) => {
  const [a, b] = await pair(t, { blockMs: 5000 })
  const streams = Array.from({ length: 20 }, (_, i) => `m${i}`)
  const collectors = []
  for (const id of streams) {
    await a.create(id, META)
    const c = collector()
    b.subscribe(id, 0, c)
    collectors.push(c)
    // Each new journal joins the XREAD already blocked on the others: a 5 s BLOCK would show.
    const started = Date.now()
    a.append(id, [entry(1)])
    await until(() => c.entries.length === 1, 2000)
    t.ok(Date.now() - started < 1000, `${id} delivered live without waiting for the BLOCK timeout`)
  }
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const clients = await admin.client('LIST') as string
  const blocked = clients.split('\n').filter((line) => / cmd=xread /.test(line))
  t.equal(blocked.length, 1, 'one XREAD connection for all 20 remote journals')
  for (const id of streams) a.end(id, 'done')
  for (const c of collectors) t.equal(await c.ended, 'done')
})

t.test('journals expire RETAIN_MS after they end; unfinished ones carry a renewed expiry', async (t) => {
  const [a, b] = await pair(t, { retainMs: 400, leaseMs: 300, renewMs: 100 })
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const prefix = (a as unknown as { keys: { prefix: string } }).keys.prefix
  await a.create('x', META)
  a.append('x', [entry(1)])
  await until(() => a.pendingEntries === 0)
  await sleep(50)
  const open = await admin.pttl(`${prefix}{x}:log`)
  t.ok(open > 0 && open <= 700, `an unfinished journal expires (pttl ${open})`)
  await sleep(600)
  t.ok(await admin.exists(`${prefix}{x}:log`), 'renewed while its producer lives')
  a.end('x', 'done')
  await until(() => a.pendingEntries === 0)
  await sleep(50)
  t.same((await b.state('x'))?.ended, 'done')
  await sleep(500)
  t.equal(await b.state('x'), undefined, 'gone from Redis after RETAIN_MS')
  t.equal(await admin.exists(`${prefix}{x}:log`, `${prefix}{x}:meta`, `${prefix}{x}:lease`), 0)
  t.equal(await a.state('x'), undefined, 'and from the producer\'s memory')
})

t.test('discard forgets a journal nobody used, in memory and in Redis; the key can be made again', async (t) => {
  const [a, b] = await pair(t)
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const prefix = (a as unknown as { keys: { prefix: string } }).keys.prefix
  await a.create('d1', META)
  t.equal(await admin.exists(`${prefix}{d1}:meta`, `${prefix}{d1}:lease`), 2, 'made: meta and lease')
  await a.discard('d1')
  t.equal(await admin.exists(`${prefix}{d1}:meta`, `${prefix}{d1}:lease`, `${prefix}{d1}:log`), 0, 'nothing left in Redis')
  t.equal(await a.state('d1'), undefined, 'unknown to its instance')
  t.equal(await b.state('d1'), undefined, 'and to the other')
  t.equal(a.size, 0, 'nothing held in memory')
  await a.create('d1', META)
  t.same((await b.state('d1'))?.lastId, 0, 'made again')
})

t.test('per-client slots hold across two instances', async (t) => {
  const [a, b] = await pair(t)
  t.equal(await a.acquireSlot('ip:1', 2), true)
  t.equal(await b.acquireSlot('ip:1', 2), true)
  t.equal(await a.acquireSlot('ip:1', 2), false, 'third slot refused on A')
  t.equal(await b.acquireSlot('ip:1', 2), false, 'and on B')
  t.equal(await a.acquireSlot('ip:2', 2), true, 'another client is counted apart')
  await b.releaseSlot('ip:1')
  t.equal(await a.acquireSlot('ip:1', 2), true, 'a slot given back on B is free on A')
  await a.releaseSlot('ip:1')
  await a.releaseSlot('ip:1')
  await a.releaseSlot('ip:1')
  t.equal(await a.acquireSlot('ip:1', 1), true, 'never below zero')
  t.equal(await b.acquireSlot('ip:1', 1), false)
})

t.test('conversation map: swap returns the previous, clear only if still active', async (t) => {
  const [a, b] = await pair(t)
  t.equal(await a.swapActive('conv', 's1'), undefined)
  t.equal(await b.swapActive('conv', 's2'), 's1')
  t.equal(await a.getActive('conv'), 's2')
  await a.clearActive('conv', 's1')
  t.equal(await b.getActive('conv'), 's2', 'not cleared by a stale generation')
  await a.clearActive('conv', 's2')
  t.equal(await b.getActive('conv'), undefined)
})

t.test('control messages reach every instance', async (t) => {
  const [a, b] = await pair(t)
  const got: ControlMessage[] = []
  a.onControl((m) => got.push(m))
  await b.publishControl({ streamId: 's9', action: 'cancelled' })
  await until(() => got.length === 1)
  t.same(got, [{ streamId: 's9', action: 'cancelled' }])
})

t.test('remote readers are announced to the producer while held', async (t) => {
  const [a, b] = await pair(t, { leaseMs: 400, renewMs: 100 })
  await a.create('h', META)
  t.equal(await a.hasRemoteReaders('h'), false)
  const release1 = b.holdRemote('h')
  const release2 = b.holdRemote('h')
  await sleep(50)
  t.equal(await a.hasRemoteReaders('h'), true)
  await sleep(800)
  t.equal(await a.hasRemoteReaders('h'), true, 'kept alive past its ttl by renewal')
  release1()
  await sleep(50)
  t.equal(await a.hasRemoteReaders('h'), true, 'one reader still holds it')
  release2()
  await sleep(50)
  t.equal(await a.hasRemoteReaders('h'), false)
  t.equal(a.holdRemote('h').name, 'noop', 'the producer never holds its own journal')
})

t.test('a producer that dies ends its journal as producer_lost for readers elsewhere', async (t) => {
  const [a, b] = await pair(t, { leaseMs: 500, renewMs: 100 })
  const c = await store(t, { prefix: (a as unknown as { keys: { prefix: string } }).keys.prefix, leaseMs: 500, renewMs: 100 })
  await a.create('d', META)
  a.append('d', [entry(1), entry(2)])
  const reader = collector()
  b.subscribe('d', 0, reader)
  await until(() => reader.entries.length === 2)
  await sleep(600)
  t.equal(reader.reason, undefined, 'a live producer is not declared lost')
  // Dies without ending its journal: no more lease renewals, no end marker.
  const died = Date.now()
  await a.close()
  t.equal(await reader.ended, 'producer_lost')
  const took = Date.now() - died
  t.ok(took < 2000, `noticed ${took} ms after the producer died (lease 500 ms)`)
  t.same(ids(reader.entries), [1, 2])
  const late = collector()
  c.subscribe('d', 1, late)
  t.equal(await late.ended, 'producer_lost', 'a later reader elsewhere gets the same end')
  t.same(ids(late.entries), [2])
  t.equal((await c.state('d'))?.ended, 'producer_lost')
})

t.test('store errors carry code store_unavailable and status 503 when Redis is down', async (t) => {
  const down = new RedisStore({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 200 })
  t.teardown(async () => { await down.close() })
  t.equal(down.ready, false)
  const started = Date.now()
  await t.rejects(down.create('z', META), { code: 'store_unavailable', status: 503 })
  await t.rejects(down.acquireSlot('c', 1), { code: 'store_unavailable' })
  await t.rejects(down.swapActive('c', 's'), { code: 'store_unavailable' })
  await t.rejects(down.state('z'), { code: 'store_unavailable' })
  t.ok(Date.now() - started < 500, 'fails fast, no offline queue')
})

t.test('channels: any instance publishes, ids are consecutive across instances, every reader follows', async (t) => {
  const [a, b] = await pair(t)
  const retention = { maxEvents: 1000, maxAgeMs: 60_000 }
  await b.openChannel('channel:news', retention)
  const reader = collector()
  b.subscribe('channel:news', 0, reader)
  const published = await Promise.all([
    a.publish('channel:news', [{ data: '"a1"' }, { data: '"a2"', event: 'tick' }], retention),
    b.publish('channel:news', [{ data: '"b1"' }], retention),
    a.publish('channel:news', [{ data: '"a3"' }], retention)
  ])
  t.same(published.flat().sort((x, y) => x - y), [1, 2, 3, 4], 'no id shared, none skipped')
  await until(() => reader.entries.length === 4)
  t.same(ids(reader.entries), [1, 2, 3, 4])
  t.equal(reader.entries.find((e) => e.data === '"a2"')?.event, 'tick')
  a.end('channel:news', 'done')
  t.equal(await reader.ended, 'done')
  await t.rejects(b.publish('channel:news', [{ data: '1' }], retention), { code: 'store_full' })
  t.equal((await a.state('channel:news'))?.ended, 'done', 'a channel is never taken for a lost producer')
})

t.test('channels: retention by count keeps the newest events', async (t) => {
  const [a, b] = await pair(t)
  const retention = { maxEvents: 3, maxAgeMs: 60_000 }
  for (let i = 1; i <= 10; i++) await a.publish('channel:c', [{ data: String(i) }], retention)
  const reader = collector()
  b.subscribe('channel:c', 0, reader)
  await until(() => reader.entries.length >= 3)
  t.same(ids(reader.entries), [8, 9, 10])
})
