/**
 * How the memory store keeps a journal's entries: their text as UTF-8 in pages of bytes and where
 * each ends, not one object per entry.
 *
 * Why: a relay keeps every token of every answer of the last `RETAIN_MS` replayable. As objects
 * (an entry and its data string per token) they are what the garbage collector copies out of the
 * young generation at every scavenge and walks at every mark-compact: at 20,000 tokens a second
 * that made the relay's scavenges about 2.5 times longer than a relay that keeps nothing,
 * pauses that every stream on the process waits through. As bytes off the V8 heap they cost the
 * collector nothing, and a token costs its UTF-8 length plus nine bytes (~115 in all for an
 * OpenAI chunk, against ~210 as objects: `bench/memory-journal.ts`). The
 * entries handed to live readers are made by the producer anyway and die young; a replay (a
 * resume, a late reader) makes fresh ones from the bytes.
 *
 * Pages are buffers of two fixed sizes taken from and given back to pools when a journal is forgotten,
 * so a log grows without copying and without garbage: a buffer grown by doubling leaves its old
 * copies for the collector, which frees them only at a mark-compact (they live long enough to
 * be promoted) — memory the process holds for nothing until then. A journal's first page is
 * small: an answer held open but mostly idle has a few entries (a page is resident in memory
 * once written in); the next ones are full-size. An ended log keeps its last, partly filled page
 * as an exact copy.
 */
import { Buffer } from 'node:buffer'
import { makeEntry } from './journal.js'
import type { JournalEntry } from './journal.js'

/** What an entry costs besides its text: its page and end offset (4 bytes each) and whether it is named (1). */
const ENTRY_OVERHEAD = 9
/** Small enough that 10,000 live journals hold 40 MiB of pages; a token is ~100 bytes. An entry bigger than a page gets a buffer of its own. */
const PAGE_BYTES = 4096
/** A journal's first page: about five tokens. */
const FIRST_PAGE_BYTES = 512
/** Free pages of each size kept for reuse (16 MiB and 2 MiB); beyond that, given back to the collector. */
const POOL_MAX = 4096
const MIN_ENTRIES = 16
const NO_INDEX = new Uint32Array(0)
const NO_FLAGS = new Uint8Array(0)
const LF = 10

/** Pages no log holds, by size, shared by every log of the process. */
const freePages = new Map<number, Buffer[]>([[PAGE_BYTES, []], [FIRST_PAGE_BYTES, []]])

function takePage (size: number): Buffer {
  return freePages.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size)
}

/** Whether `page` is a whole page of a pool (not an exact copy, not a big entry's own buffer). */
function pooled (page: Buffer): boolean {
  return freePages.has(page.length)
}

function givePage (page: Buffer): void {
  // (A buffer of a pool's size is the log's own whatever it was made as: it may go to that pool.)
  const free = freePages.get(page.length)
  if (free !== undefined && free.length < POOL_MAX) free.push(page)
}

/** Bytes an entry holds in a log: the memory caps' measure. */
export function entrySize (entry: JournalEntry): number {
  const text = Buffer.byteLength(entry.data)
  return entry.event === undefined ? text + ENTRY_OVERHEAD : text + Buffer.byteLength(entry.event) + 1 + ENTRY_OVERHEAD
}

/**
 * The entries of one journal, ids consecutive. Entries can be dropped from the front (a
 * channel's retention), never from the middle. {@link release} it when the journal is forgotten.
 */
export class EntryLog {
  /** Id of the entry before the first one kept. */
  #base = 0
  /** Entries' text, back to back within a page: the data, or the event name, LF, then the data (neither holds LF). */
  #pages: Buffer[] = []
  /** Bytes used in the last page. */
  #used = 0
  /** `#pageOf[i]`: the page of entry `i`; `#ends[i]`: where its text ends there (it starts where the previous entry's ends, or at 0 on a new page). */
  #pageOf: Uint32Array = NO_INDEX
  #ends: Uint32Array = NO_INDEX
  /** `#named[i]`: 1 when entry `i` has an event name. */
  #named: Uint8Array = NO_FLAGS
  /** Entries in the arrays, and how many at the front are dropped (they go at the next compaction). */
  #count = 0
  #dropped = 0
  #bytes = 0

  /** Entries kept. */
  get length (): number {
    return this.#count - this.#dropped
  }

  /** Id of the newest entry; the id before the first kept one when none is. */
  get lastId (): number {
    return this.#base + this.#count - this.#dropped
  }

  /** Bytes held, as {@link entrySize} counts them. */
  get bytes (): number {
    return this.#bytes
  }

  /** Appends an entry. Its id must follow {@link lastId}: a gap would renumber every entry after it. */
  push (entry: JournalEntry): void {
    if (entry.id !== this.lastId + 1) throw new RangeError(`journal entry ${entry.id} does not follow ${this.lastId}`)
    const text = entry.event === undefined ? entry.data : `${entry.event}\n${entry.data}`
    let page = this.#pages[this.#pages.length - 1]
    // A UTF-16 code unit is at most 3 bytes of UTF-8: when the worst case fits, no need to count.
    if (page === undefined || this.#used + text.length * 3 > page.length) {
      const size = Buffer.byteLength(text)
      if (page === undefined || this.#used + size > page.length) {
        const room = page === undefined && size <= FIRST_PAGE_BYTES ? FIRST_PAGE_BYTES : PAGE_BYTES
        page = size > room ? Buffer.allocUnsafeSlow(size) : takePage(room)
        this.#pages.push(page)
        this.#used = 0
      }
    }
    const size = page.write(text, this.#used)
    this.#used += size
    if (this.#count === this.#ends.length) this.#growIndex()
    this.#pageOf[this.#count] = this.#pages.length - 1
    this.#ends[this.#count] = this.#used
    this.#named[this.#count] = entry.event === undefined ? 0 : 1
    this.#count++
    this.#bytes += size + ENTRY_OVERHEAD
  }

  /** The entries with ids above `afterId` (all kept ones when it is before the first), made afresh. */
  entriesAfter (afterId: number): JournalEntry[] {
    const entries: JournalEntry[] = []
    for (let i = this.#dropped + Math.max(0, afterId - this.#base); i < this.#count; i++) {
      const page = this.#pages[this.#pageOf[i] as number] as Buffer
      const start = this.#startOf(i)
      const end = this.#ends[i] as number
      const id = this.#base + i - this.#dropped + 1
      if (this.#named[i] === 0) {
        entries.push(makeEntry(id, page.toString('utf8', start, end)))
      } else {
        const lf = page.indexOf(LF, start)
        entries.push(makeEntry(id, page.toString('utf8', lf + 1, end), page.toString('utf8', start, lf)))
      }
    }
    return entries
  }

  /** Drops the `n` oldest entries (at most all). Returns the bytes freed. */
  dropFirst (n: number): number {
    const drop = Math.min(n, this.length)
    if (drop <= 0) return 0
    let text = 0
    for (let i = this.#dropped; i < this.#dropped + drop; i++) text += (this.#ends[i] as number) - this.#startOf(i)
    this.#dropped += drop
    this.#base += drop
    const freed = text + drop * ENTRY_OVERHEAD
    this.#bytes -= freed
    // Give back pages and shift the index once the dropped entries are half of it: amortized O(1) a drop.
    if (this.#dropped * 2 >= this.#count) this.#compact()
    return freed
  }

  /** Nothing more will be appended: the last page's free room goes back to the pool (the page is kept as an exact copy). */
  seal (): void {
    const last = this.#pages.length - 1
    const page = this.#pages[last]
    if (page !== undefined && pooled(page) && this.#used < page.length) {
      const exact = Buffer.allocUnsafeSlow(this.#used)
      page.copy(exact, 0, 0, this.#used)
      this.#pages[last] = exact
      givePage(page)
    }
    if (this.#count < this.#ends.length) {
      this.#pageOf = this.#pageOf.slice(0, this.#count)
      this.#ends = this.#ends.slice(0, this.#count)
      this.#named = this.#named.slice(0, this.#count)
    }
  }

  /** The journal is forgotten: its pages go back to the pool, and the log is empty. */
  release (): void {
    for (const page of this.#pages) givePage(page)
    this.#pages = []
    this.#used = 0
    this.#base += this.#count - this.#dropped
    this.#count = 0
    this.#dropped = 0
    this.#bytes = 0
  }

  /** Where entry `i`'s text starts in its page. */
  #startOf (i: number): number {
    return i > 0 && this.#pageOf[i - 1] === this.#pageOf[i] ? this.#ends[i - 1] as number : 0
  }

  #growIndex (): void {
    const size = Math.max(MIN_ENTRIES, this.#ends.length * 2)
    const pageOf = new Uint32Array(size)
    pageOf.set(this.#pageOf)
    const ends = new Uint32Array(size)
    ends.set(this.#ends)
    const named = new Uint8Array(size)
    named.set(this.#named)
    this.#pageOf = pageOf
    this.#ends = ends
    this.#named = named
  }

  /** Removes the dropped entries from the index, and gives back the pages before the first kept entry's. */
  #compact (): void {
    // All dropped: the last page stays, as the next entry goes on in it.
    const firstPage = this.#dropped < this.#count ? this.#pageOf[this.#dropped] as number : this.#pages.length - 1
    // An entry starts where the one before it ends on the same page: the last dropped entry stays
    // in the index (still dropped) when the first kept one, or the next one written, shares its page.
    const keepFrom = this.#pageOf[this.#dropped - 1] === firstPage ? 1 : 0
    for (const page of this.#pages.splice(0, firstPage)) givePage(page)
    const from = this.#dropped - keepFrom
    this.#pageOf.copyWithin(0, from, this.#count)
    this.#ends.copyWithin(0, from, this.#count)
    this.#named.copyWithin(0, from, this.#count)
    this.#count -= from
    this.#dropped = keepFrom
    for (let i = 0; i < this.#count; i++) this.#pageOf[i]! -= firstPage
  }
}
