/**
 * The journal: numbered events of one channel (a generation is one kind of channel). Every
 * downstream connection — first, resumed, second tab, another instance — is a reader of a
 * journal from some id on. That one idea gives resume, fan-out and multi-instance.
 */
import { formatEntry } from '../sse/format.js'
import type { StreamEndReason } from '../sse/types.js'

/**
 * Why a journal ended: the stream's close reasons; `producer_lost` (a reader's own finding: the
 * instance producing it went away; its readers get an `error` event for it); and `store_error`
 * (not a producer's end: the reader's store could no longer read the journal, a Redis error; the
 * reader may resume).
 */
export type EndReason = StreamEndReason | 'producer_lost' | 'store_error'

/** One numbered event. */
export interface JournalEntry {
  /** Increasing integer per journal, from 1. */
  readonly id: number
  /** The event's data: one line of JSON, or the literal `[DONE]`. Never contains CR or LF. */
  readonly data: string
  /** The SSE `event:` name, when not a plain message (the relay uses only `error`). */
  readonly event?: string | undefined
  /** The whole SSE frame (`id:`, `data:`, blank line), the same text for every reader. */
  readonly frame: string
}

/** What is known of a journal besides its entries. */
export interface JournalMeta {
  /** `generation` (an upstream answer) or `channel` (application events). */
  kind: 'generation' | 'channel'
  /** Key identity allowed to read it; `null` when the relay runs open. */
  owner: string | null
  conversationId?: string | undefined
  /** ms since epoch. */
  createdAt: number
}

/** Receives a journal's entries in order, each once, then (maybe) its end. */
export interface JournalListener {
  /** A batch of consecutive entries. The array may be shared with other readers: do not mutate it. */
  onEntries (entries: readonly JournalEntry[]): void
  /** The journal ended; no entry follows. Called at most once. */
  onEnd (reason: EndReason): void
}

/** Stops a subscription. Idempotent. */
export type Unsubscribe = () => void

/**
 * A journal entry: its id, data and event, and its SSE frame, made on the first read and kept:
 * every reader of the entry (a token to each tab, a channel event to 10,000 subscribers, a batch
 * replayed) writes the same string, which the SSE writer then encodes once for readers in a row.
 * Entries are short-lived: the producer makes one per token for the live readers, and the memory
 * store keeps their text, not the objects (`EntryLog`), so a kept frame costs no retained memory.
 */
class Entry implements JournalEntry {
  #frame: string | undefined

  constructor (readonly id: number, readonly data: string, readonly event: string | undefined) {}

  get frame (): string {
    // `data` never holds CR/LF (one-line JSON or `[DONE]`), so one `data:` line is exact framing.
    this.#frame ??= formatEntry(this.id, this.data, this.event)
    return this.#frame
  }
}

/**
 * Makes an entry. Its SSE frame is the same text for every reader: one event broadcast to N
 * readers is serialized once (per batch of readers written in a row), not N times.
 */
export function makeEntry (id: number, data: string, event?: string): JournalEntry {
  return new Entry(id, data, event)
}

/**
 * Passes on only entries newer than the last one delivered. Stores deliver in order, but a
 * replay and a live batch can overlap at the seam (a subscription made while entries are being
 * appended, a Redis catch-up racing its live read): this is where "each event exactly once"
 * is enforced, whatever the store.
 */
export function exactlyOnce (afterId: number, listener: JournalListener): JournalListener {
  let last = afterId
  return {
    onEntries (entries) {
      const first = entries[0]
      if (first === undefined) return
      const fresh = first.id > last ? entries : entries.filter((e) => e.id > last)
      const newest = fresh[fresh.length - 1]
      if (newest === undefined) return
      last = newest.id
      listener.onEntries(fresh)
    },
    onEnd (reason) {
      listener.onEnd(reason)
    }
  }
}
