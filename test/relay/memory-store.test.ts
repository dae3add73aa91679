/**
 * The in-memory store (lib/relay/stores/memory.ts): the store contract every store is held to
 * (test/fixtures/store-contract.ts), then what only the memory store does — delivery within the
 * call, its byte accounting, the global cap's eviction of ended journals, retention, channels'
 * count and age limits and their sweep, and its timers.
 */
import t from 'tap'
import type { Test } from 'tap'
import { StoreFullError } from '../../lib/relay/errors.js'
import { makeEntry } from '../../lib/relay/journal.js'
import { entrySize } from '../../lib/relay/entry-log.js'
import type { EndReason, JournalEntry, JournalListener, JournalMeta } from '../../lib/relay/journal.js'
import type { ChannelRetention } from '../../lib/relay/store.js'
import { MemoryStore } from '../../lib/relay/stores/memory.js'
import type { MemoryStoreOptions } from '../../lib/relay/stores/memory.js'
import { storeContract } from '../fixtures/store-contract.js'
import { waitUntil } from '../fixtures/stack.js'

const meta: JournalMeta = { kind: 'generation', owner: null, createdAt: 0 }
const delta = (id: number, text = `t${id}`): JournalEntry => makeEntry(id, JSON.stringify({ type: 'delta', content: text }))
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const sizeOf = (entries: readonly JournalEntry[]): number => entries.reduce((n, e) => n + entrySize(e), 0)
const events = (n: number, tag = 'e'): Array<{ data: string }> => Array.from({ length: n }, (_, i) => ({ data: JSON.stringify({ tag, i }) }))

/** A listener that records what it was given. */
function recorder (): { ids: number[], batches: number, ends: EndReason[], listener: JournalListener } {
  const rec = {
    ids: [] as number[],
    batches: 0,
    ends: [] as EndReason[],
    listener: {
      onEntries: (entries: readonly JournalEntry[]) => {
        rec.batches++
        for (const e of entries) rec.ids.push(e.id)
      },
      onEnd: (reason: EndReason) => { rec.ends.push(reason) }
    }
  }
  return rec
}

/** What a promise rejects with (undefined if it resolves). */
async function rejection (promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (err: unknown) => err)
}

function store (t: Test, options: MemoryStoreOptions = {}): MemoryStore {
  const s = new MemoryStore({ retainMs: 60_000, ...options })
  t.teardown(async () => { await s.close() })
  return s
}

/** A journal with entries 1..n appended one by one. */
function filled (s: MemoryStore, key: string, n: number): JournalEntry[] {
  s.createSync(key, meta)
  const entries = range(1, n).map((id) => delta(id))
  for (const e of entries) if (!s.append(key, [e])) throw new Error(`append ${e.id} refused`)
  return entries
}

storeContract(t, {
  name: 'memory',
  distributed: false,
  pair: async (t, options = {}) => {
    const s = store(t, { retainMs: options.retainMs ?? 60_000, maxJournalBytes: options.maxJournalBytes, maxTotalBytes: options.maxTotalBytes })
    return [s, s]
  }
})

t.test('reads are served within the call: what is there before subscribe returns, a live entry before append returns', async (t) => {
  const s = store(t)
  filled(s, 'g', 3)
  for (const after of [0, 1, 2, 3]) {
    const rec = recorder()
    s.subscribe('g', after, rec.listener)()
    t.same(rec.ids, range(after + 1, 3), `subscribe after ${after}: the entries after it, delivered before subscribe returns`)
  }
  const live = recorder()
  const unsubscribe = s.subscribe('g', 1, live.listener)
  s.append('g', [delta(4)])
  t.same(live.ids, [2, 3, 4], 'a live entry reaches the listener during append')
  unsubscribe()
  unsubscribe()
  s.append('g', [delta(5)])
  t.same(live.ids, [2, 3, 4], 'nothing after unsubscribe (idempotent)')
  t.equal(s.has('g'), true)
  t.equal(s.has('nope'), false)
})

t.test('a reader that throws is dropped at once, its failure logged as an error, on a journal and on a channel', async (t) => {
  const logged: Array<{ level: string, msg: string }> = []
  const s = store(t, { log: (level, msg) => { logged.push({ level, msg }) } })
  filled(s, 'g', 1)
  const good = recorder()
  let calls = 0
  const badEnds: EndReason[] = []
  const bad: JournalListener = {
    onEntries: () => { calls++; throw new Error('reader broke') },
    onEnd: (reason) => { badEnds.push(reason) }
  }
  s.subscribe('g', 1, bad)
  s.subscribe('g', 1, good.listener)
  t.equal(s.append('g', [delta(2)]), true, 'the append is taken')
  t.equal(s.append('g', [delta(3)]), true, 'and the next')
  s.end('g', 'done')
  t.same(good.ids, [2, 3], 'the other reader got every entry')
  t.same(good.ends, ['done'], 'and the end')
  t.equal((await s.state('g'))?.ended, 'done', 'the journal ended')
  t.equal(calls, 1, 'the failed reader was dropped')
  t.same(badEnds, ['error'], 'and ended with error, not left open')
  t.same(logged.map((l) => l.level), ['error'], 'its failure logged as an error')
  const channel = s.publishSync('c', [{ data: '1' }], { maxEvents: 10, maxAgeMs: 60_000 })
  s.subscribe('c', 1, bad)
  t.same(s.publishSync('c', [{ data: '2' }], { maxEvents: 10, maxAgeMs: 60_000 }), [channel[0] as number + 1], 'a channel publish goes through too')
})

t.test('the per-journal cap refuses the entry that would cross it, and nothing else', async (t) => {
  const one = sizeOf([delta(1)])
  const s = store(t, { maxJournalBytes: one * 3 })
  filled(s, 'g', 3)
  const rec = recorder()
  s.subscribe('g', 0, rec.listener)
  t.equal(s.append('g', [delta(4)]), false, 'the 4th entry is over the cap')
  t.equal((await s.state('g'))?.lastId, 3, 'nothing was added')
  t.same(rec.ids, [1, 2, 3], 'listeners saw nothing of it')
  t.equal(s.bytes, one * 3, 'bytes count what is held')
  filled(s, 'other', 3)
  t.equal(s.bytes, one * 6, 'the cap is per journal: another journal takes as much')
  t.equal(s.append('g', [makeEntry(4, '')]), false, 'still over, however small the entry')
})

t.test('the entry that ends a journal ([DONE] or error) is taken past both caps: readers can tell a whole answer from a cut one', async (t) => {
  const one = sizeOf([delta(1)])
  const s = store(t, { maxJournalBytes: one * 3, maxTotalBytes: one * 3 })
  filled(s, 'g', 3)
  const rec = recorder()
  s.subscribe('g', 0, rec.listener)
  t.equal(s.append('g', [delta(4)]), false, 'a 4th delta is over the caps')
  const error = makeEntry(4, JSON.stringify({ type: 'error', code: 'answer_too_large', message: 'too large' }), 'error')
  t.equal(s.append('g', [error]), true, 'the error entry is taken')
  t.same(rec.ids, [1, 2, 3, 4], 'and delivered')
  t.equal(s.bytes, one * 3 + entrySize(error), 'and counted')
  t.equal(s.append('g', [delta(5)]), false, 'the caps still hold for anything else')

  filled(s, 'whole', 0)
  for (let id = 1; s.append('whole', [delta(id)]); id++);
  const last = (await s.state('whole'))?.lastId as number
  t.equal(s.append('whole', [makeEntry(last + 1, '[DONE]')]), true, 'the [DONE] of an answer that filled the cap is taken: it is whole')
  t.equal(s.append('whole', [makeEntry(last + 2, '[DONE]', 'x')]), false, 'a named event whose data is [DONE] is no sentinel')
})

t.test('the global cap evicts ended journals, oldest end first; live journals are never evicted', async (t) => {
  const one = sizeOf([delta(1)])
  const s = store(t, { maxTotalBytes: one * 10 })
  filled(s, 'a', 3)
  filled(s, 'b', 3)
  filled(s, 'live', 3)
  // b ends before a: b is the older ended journal.
  s.end('b', 'done')
  s.end('a', 'done')
  t.equal(s.bytes, one * 9)
  t.equal(s.append('live', [delta(4)]), true, 'room left: nothing evicted')
  t.equal(s.size, 3)
  t.equal(s.append('live', [delta(5)]), true, 'over the cap: the oldest ended journal makes room')
  t.equal(await s.state('b'), undefined, 'b (ended first) was evicted')
  t.ok(await s.state('a') !== undefined, 'a (ended later) is kept: one eviction was enough')
  t.equal(s.bytes, one * 8)
  t.equal(s.append('live', [delta(6), delta(7), delta(8)]), true)
  t.equal(await s.state('a'), undefined, 'then a')
  t.equal(s.bytes, one * 8)
  t.equal(s.size, 1)
  t.same((await s.state('live'))?.lastId, 8)
})

t.test('over the global cap with too little to evict: the write is refused and nothing is evicted for nothing', async (t) => {
  const one = sizeOf([delta(1)])
  const s = store(t, { maxTotalBytes: one * 6 })
  filled(s, 'old', 1)
  s.end('old', 'done')
  filled(s, 'live', 5)
  t.equal(s.append('live', [delta(6), delta(7)]), false, 'two more entries cannot fit even with old evicted')
  t.ok(await s.state('old') !== undefined, 'the finished journal is still replayable')
  t.equal(s.bytes, one * 6)
  t.equal((await s.state('live'))?.lastId, 5)
  t.equal(s.append('live', [delta(6)]), true, 'one more entry fits once old is evicted')
  t.equal(await s.state('old'), undefined)

  t.ok(await rejection(s.publish('ch', events(1), { maxEvents: 10, maxAgeMs: 60_000 })) instanceof StoreFullError, 'a channel publish over the cap is a StoreFullError')
  t.equal(s.bytes, one * 6, 'and adds nothing')
})

t.test('retention: an ended journal stays readable for retainMs, then is forgotten and its bytes freed', async (t) => {
  const retainMs = 80
  const s = store(t, { retainMs })
  filled(s, 'g', 3)
  filled(s, 'live', 1)
  const bytesBefore = s.bytes
  const endedAt = Date.now()
  s.end('g', 'done')
  t.ok(await s.state('g') !== undefined, 'readable right after the end')
  await waitUntil(async () => await s.state('g') === undefined, 2000, 'the journal to expire')
  t.ok(Date.now() - endedAt >= retainMs - 5, `forgotten after retainMs (${Date.now() - endedAt} ms)`)
  t.equal(s.bytes, bytesBefore - sizeOf([delta(1), delta(2), delta(3)]), 'its bytes are freed')
  t.equal(s.size, 1)
  t.ok(await s.state('live') !== undefined, 'a journal that did not end never expires')
})

t.test('channels: ids continue, retention by count keeps the newest, readers from a dropped id get what is kept', async (t) => {
  const s = store(t)
  const retention: ChannelRetention = { maxEvents: 3, maxAgeMs: 60_000 }
  t.same(await s.publish('ch', events(4), retention), [1, 2, 3, 4])
  t.same(await s.publish('ch', events(6), retention), [5, 6, 7, 8, 9, 10], 'ids continue')
  t.same(await s.state('ch'), { meta: { kind: 'channel', owner: null, createdAt: (await s.state('ch'))?.meta.createdAt }, lastId: 10, ended: undefined })
  const kept: Array<[number, number[]]> = [[0, [8, 9, 10]], [5, [8, 9, 10]], [7, [8, 9, 10]], [8, [9, 10]], [9, [10]], [10, []]]
  for (const [after, ids] of kept) {
    const rec = recorder()
    s.subscribe('ch', after, rec.listener)()
    t.same(rec.ids, ids, `after ${after}: ${ids.length === 3 ? 'the 3 kept' : 'the kept ones after it'}`)
  }
  t.equal(s.bytes, sizeOf([makeEntry(8, JSON.stringify({ tag: 'e', i: 3 })), makeEntry(9, JSON.stringify({ tag: 'e', i: 4 })), makeEntry(10, JSON.stringify({ tag: 'e', i: 5 }))]), 'only the kept events count')

  const live = recorder()
  s.subscribe('ch', 10, live.listener)
  await s.publish('ch', events(2), retention)
  t.same(live.ids, [11, 12], 'a live reader gets new events in one batch per publish')
  t.equal(live.batches, 1)

  s.end('ch', 'done')
  const closed = await rejection(s.publish('ch', events(1), retention))
  t.ok(closed instanceof StoreFullError, 'an ended channel takes no more events: StoreFullError')
  t.match(closed, { code: 'store_full', status: 503, message: /closed/ })
  t.same(live.ends, ['done'])
})

t.test('channels: retention by age drops old events on publish and on read, ids are never reused', async (t) => {
  const maxAgeMs = 40
  // The sweep runs every 10 s here: what is seen is the trimming done by publish and subscribe.
  const s = store(t)
  const retention: ChannelRetention = { maxEvents: 100, maxAgeMs }
  t.same(await s.publish('ch', events(2, 'old'), retention), [1, 2])
  const publishedAt = Date.now()
  // Aging is the behaviour under test: wait out the age limit once.
  await new Promise((resolve) => setTimeout(resolve, maxAgeMs + 15))
  t.same(await s.publish('ch', events(1, 'new'), retention), [3])
  const rec = recorder()
  s.subscribe('ch', 0, rec.listener)()
  t.same(rec.ids, [3], `events older than ${maxAgeMs} ms are gone (${Date.now() - publishedAt} ms later)`)
  t.equal(s.bytes, sizeOf([makeEntry(3, JSON.stringify({ tag: 'new', i: 0 }))]), 'their bytes are freed')
  await new Promise((resolve) => setTimeout(resolve, maxAgeMs + 15))
  const later = recorder()
  s.subscribe('ch', 0, later.listener)()
  t.same(later.ids, [], 'a read trims too: nothing is older than the limit')
  t.equal(s.bytes, 0)
  t.same((await s.state('ch'))?.lastId, 3, 'the channel keeps its last id while it is known')
  t.same(await s.publish('ch', events(1), retention), [4])
})

t.test('channels: the sweep ages events out and forgets channels nobody publishes to or reads', async (t) => {
  const maxAgeMs = 40
  // retainMs also sets the sweep interval (at most 10 s): short, so the sweep is seen.
  const s = store(t, { retainMs: 50 })
  const retention: ChannelRetention = { maxEvents: 100, maxAgeMs }
  await s.publish('aged', events(2), retention)
  await s.openChannel('idle', retention)
  await s.openChannel('held', retention)
  await s.publish('held', events(1), retention)
  const reader = recorder()
  const hold = s.subscribe('held', 0, reader.listener)
  t.teardown(hold)

  await waitUntil(async () => await s.state('aged') === undefined && await s.state('idle') === undefined, 3000, 'the unread channels to be forgotten')
  t.pass('a channel whose events aged out, and an empty one, both unread, are forgotten by the sweep')
  const held = await s.state('held')
  t.ok(held !== undefined, 'a channel with a reader is kept')
  t.equal(held?.lastId, 1, 'with its last id')
  t.equal(s.bytes, 0, 'and every aged event is freed')
  await s.publish('held', events(1), retention)
  t.same(reader.ids, [1, 2], 'its reader goes on receiving')
})

t.test('timers never hold the process, and close() clears every one of them', async (t) => {
  // Every timer the store makes goes through these: record them, and which ended how.
  const made: Array<{ handle: NodeJS.Timeout, repeat: boolean, fired: boolean, refed: boolean }> = []
  const cleared = new Set<NodeJS.Timeout>()
  const real = { setTimeout: globalThis.setTimeout, setInterval: globalThis.setInterval, clearTimeout: globalThis.clearTimeout, clearInterval: globalThis.clearInterval }
  const track = (repeat: boolean) => (fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): NodeJS.Timeout => {
    const record = { handle: undefined as unknown as NodeJS.Timeout, repeat, fired: false, refed: true }
    const make = repeat ? real.setInterval : real.setTimeout
    record.handle = make(() => {
      record.fired = true
      fn(...args)
    }, ms)
    const unref = record.handle.unref.bind(record.handle)
    record.handle.unref = () => {
      record.refed = false
      return unref()
    }
    made.push(record)
    return record.handle
  }
  const untrack = (fn: (h?: NodeJS.Timeout | string | number) => void) => (h?: NodeJS.Timeout | string | number): void => {
    if (typeof h === 'object') cleared.add(h)
    fn(h)
  }
  Object.assign(globalThis, { setTimeout: track(false), setInterval: track(true), clearTimeout: untrack(real.clearTimeout), clearInterval: untrack(real.clearInterval) })
  let s: MemoryStore
  try {
    s = new MemoryStore({ retainMs: 60_000 })
    filled(s, 'a', 2)
    filled(s, 'b', 2)
    s.end('a', 'done')
    s.end('b', 'error')
    await s.publish('ch', events(2), { maxEvents: 10, maxAgeMs: 60_000 })
  } finally {
    Object.assign(globalThis, real)
  }
  t.equal(made.length, 3, 'the sweeper and one expiry per ended journal')
  t.ok(made.every((r) => !r.refed), 'every timer is unref()ed: the store never keeps a process alive')
  Object.assign(globalThis, { clearTimeout: untrack(real.clearTimeout), clearInterval: untrack(real.clearInterval) })
  try {
    await s.close()
  } finally {
    Object.assign(globalThis, real)
  }
  const left = made.filter((r) => !cleared.has(r.handle) && (r.repeat || !r.fired))
  t.equal(left.length, 0, 'after close() no timer is left pending')
  t.equal(s.size, 0, 'and nothing is held')
  t.equal(s.bytes, 0)
})
