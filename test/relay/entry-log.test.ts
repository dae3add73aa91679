/**
 * Unit tests of EntryLog (lib/relay/entry-log.ts), how the memory store keeps entries as bytes:
 * what goes in comes out (ids, data, event names, any Unicode), across pages, entries bigger
 * than a page, drops from the front and their compaction, sealing, and pages given back and
 * reused by other logs; its byte count; ids that do not follow.
 */
import t from 'tap'
import { EntryLog, entrySize } from '../../lib/relay/entry-log.js'
import { makeEntry } from '../../lib/relay/journal.js'
import type { JournalEntry } from '../../lib/relay/journal.js'

const plain = (e: JournalEntry): { id: number, data: string, event: string | undefined, frame: string } =>
  ({ id: e.id, data: e.data, event: e.event, frame: e.frame })
const sizeOf = (entries: readonly JournalEntry[]): number => entries.reduce((n, e) => n + entrySize(e), 0)

/** Entries 1..n with data of every kind: ASCII, multi-byte, astral, empty, long; every 7th named. */
function sample (n: number, from = 1): JournalEntry[] {
  const texts = ['{"content":"hello"}', '{"content":"héllo — naïve"}', '{"content":"日本語のテキスト"}', '{"content":"🙂🚀"}', '', '[DONE]', 'x'.repeat(5000)]
  return Array.from({ length: n }, (_, i) => {
    const id = from + i
    return makeEntry(id, `${texts[id % texts.length] as string}#${id}`, id % 7 === 0 ? (id % 14 === 0 ? 'error' : 'ünïcode-event') : undefined)
  })
}

t.test('entries come back as they went in, from any id, across pages and growth of the index', async (t) => {
  const log = new EntryLog()
  t.same(log.entriesAfter(0), [], 'empty')
  t.equal(log.lastId, 0)
  const entries = sample(300)
  for (const e of entries) log.push(e)
  t.equal(log.length, 300)
  t.equal(log.lastId, 300)
  t.same(log.entriesAfter(0).map(plain), entries.map(plain), 'all of them: ids, data, event names and frames')
  t.same(log.entriesAfter(123).map(plain), entries.slice(123).map(plain), 'the ones after an id')
  t.same(log.entriesAfter(300), [], 'none after the last')
  t.same(log.entriesAfter(1000), [], 'none after an id ahead of the log')
  t.equal(log.bytes, sizeOf(entries), 'bytes are the sum of entrySize')
})

t.test('an id that does not follow the last one is refused, and nothing changes', async (t) => {
  const log = new EntryLog()
  log.push(makeEntry(1, 'a'))
  t.throws(() => log.push(makeEntry(3, 'c')), RangeError, 'a gap')
  t.throws(() => log.push(makeEntry(1, 'a')), RangeError, 'a repeat')
  t.equal(log.lastId, 1)
  log.push(makeEntry(2, 'b'))
  t.same(log.entriesAfter(0).map((e) => e.data), ['a', 'b'])
})

t.test('dropping from the front: ids stay, bytes go, and the compaction keeps every kept entry intact', async (t) => {
  const log = new EntryLog()
  const entries = sample(200)
  for (const e of entries) log.push(e)
  // Drops of every size, so compaction (at half the log) happens several times, with pushes between.
  let next = 201
  let first = 1
  for (const n of [1, 3, 50, 2, 40, 7]) {
    const freed = log.dropFirst(n)
    t.equal(freed, sizeOf(entries.slice(first - 1, first - 1 + n)), `dropping ${n} frees their bytes`)
    first += n
    const more = sample(5, next)
    for (const e of more) log.push(e)
    entries.push(...more)
    next += 5
    t.equal(log.length, next - first)
    t.same(log.entriesAfter(0).map(plain), entries.slice(first - 1).map(plain), `after dropping ${n}: the kept entries, intact`)
    t.same(log.entriesAfter(first + 10).map(plain), entries.slice(first + 10).map(plain), 'and from an id among them')
    t.equal(log.bytes, sizeOf(entries.slice(first - 1)))
  }
  t.equal(log.dropFirst(0), 0, 'dropping none frees nothing')
  const kept = log.bytes
  t.equal(kept, sizeOf(entries.slice(first - 1)))
  t.equal(log.dropFirst(log.length + 10), kept, 'dropping more than kept drops all, and frees all')
  t.equal(log.length, 0)
  t.equal(log.bytes, 0)
  t.equal(log.lastId, next - 1, 'the last id is kept, so the next entry follows it')
  log.push(makeEntry(next, 'after'))
  t.same(log.entriesAfter(0).map((e) => [e.id, e.data]), [[next, 'after']])
})

t.test('random pushes and drops agree with an array of the same entries', async (t) => {
  // A fixed-seed generator: the same sequence every run.
  let seed = 42
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  }
  const sizes = [0, 1, 90, 511, 512, 513, 4000, 4096, 4097, 9000]
  const log = new EntryLog()
  const reference: JournalEntry[] = []
  let next = 1
  for (let step = 0; step < 3000; step++) {
    if (random(4) === 0) {
      const n = random(12)
      const freed = log.dropFirst(n)
      t.equal(freed, sizeOf(reference.splice(0, n)), `step ${step}: drop ${n}`)
    } else {
      const size = sizes[random(sizes.length)] as number
      const entry = makeEntry(next++, 'é'.repeat(random(3)) + 'a'.repeat(size), random(5) === 0 ? 'ev' : undefined)
      log.push(entry)
      reference.push(entry)
    }
    if (step % 100 === 0 || step === 2999) {
      t.same(log.entriesAfter(0).map(plain), reference.map(plain), `step ${step}: the same entries`)
      t.equal(log.bytes, sizeOf(reference), `step ${step}: the same bytes`)
    }
  }
  t.equal(log.lastId, next - 1)
})

t.test('a sealed log reads the same, holds the same bytes, and can still drop', async (t) => {
  const log = new EntryLog()
  const entries = sample(70)
  for (const e of entries) log.push(e)
  log.seal()
  t.same(log.entriesAfter(0).map(plain), entries.map(plain))
  t.equal(log.bytes, sizeOf(entries))
  log.dropFirst(40)
  t.same(log.entriesAfter(0).map(plain), entries.slice(40).map(plain))
  const empty = new EntryLog()
  empty.seal()
  t.same(empty.entriesAfter(0), [], 'an empty log seals too')
})

t.test('pages given back by a forgotten log are reused without touching what other logs hold', async (t) => {
  const sealed = new EntryLog()
  const kept = sample(150)
  for (const e of kept) sealed.push(e)
  sealed.seal()
  const live = new EntryLog()
  const liveEntries = sample(40)
  for (const e of liveEntries) live.push(e)
  for (let round = 0; round < 5; round++) {
    const temp = new EntryLog()
    for (const e of sample(120).map((e) => makeEntry(e.id, 'z'.repeat(e.data.length)))) temp.push(e)
    temp.release()
    t.equal(temp.length, 0, 'a released log is empty')
    t.equal(temp.bytes, 0)
    t.equal(temp.lastId, 120, 'and keeps its last id')
    // Another log takes the pages back while the live one goes on writing in its own.
    const other = new EntryLog()
    for (const e of sample(120).map((e) => makeEntry(e.id, 'y'.repeat(e.data.length)))) other.push(e)
    const more = sample(3, liveEntries.length + 1)
    for (const e of more) live.push(e)
    liveEntries.push(...more)
  }
  t.same(sealed.entriesAfter(0).map(plain), kept.map(plain), 'a sealed log is intact')
  t.same(live.entriesAfter(0).map(plain), liveEntries.map(plain), 'a live log is intact')
})

t.test('entrySize counts UTF-8 bytes, and the event name when there is one', async (t) => {
  t.equal(entrySize(makeEntry(1, 'abc')), 3 + 9)
  t.equal(entrySize(makeEntry(1, 'é🙂')), 2 + 4 + 9)
  t.equal(entrySize(makeEntry(1, 'abc', 'error')), 3 + 5 + 1 + 9)
})
