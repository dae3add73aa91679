import { exactlyOnce, makeEntry } from '../journal.js'
import type { EndReason, JournalEntry, JournalListener, JournalMeta, Unsubscribe } from '../journal.js'
import { EntryLog, entrySize } from '../entry-log.js'
import { CappedCounts } from '../capped-counts.js'
import type { ChannelEventInput, ChannelRetention, ControlMessage, JournalState, RelayStore, StoreLog } from '../store.js'
import { StoreFullError } from '../errors.js'
import { DONE } from '../events.js'

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** How long an ended journal stays readable, in ms. @default 300000 */
  retainMs?: number
  /** Most bytes one generation's journal may hold (a channel is bounded by its retention instead). @default 8388608 (8 MiB) */
  maxJournalBytes?: number
  /** Most bytes all journals together may hold; ended journals are evicted oldest first. @default 268435456 (256 MiB) */
  maxTotalBytes?: number
  /** Where a reader (listener) that throws is reported; it never stops the producer or the other readers. */
  log?: StoreLog
}

interface Journal {
  meta: JournalMeta
  /** The entries, as bytes (see {@link EntryLog}); a channel's retention drops the oldest. */
  log: EntryLog
  /** Channels only: when each kept entry was published (for the age limit), and the limits. */
  publishedAt: number[] | undefined
  retention: ChannelRetention | undefined
  /** Channels only: last publish or read, for forgetting idle channels. */
  touchedAt: number
  ended: EndReason | undefined
  listeners: Set<JournalListener>
  expiry: NodeJS.Timeout | undefined
}

/**
 * The in-process store: journals as {@link EntryLog}s, listeners called synchronously on append
 * with the entries as given. Ids are consecutive, so the entries after `afterId` are found by
 * arithmetic: resume is a slice, not a search.
 */
export class MemoryStore implements RelayStore {
  readonly ready = true
  private readonly journals = new Map<string, Journal>()
  /** Ended journals in the order they ended: the eviction order under memory pressure. */
  private readonly endedOrder = new Set<string>()
  /** Bytes held by the journals in `endedOrder`: what eviction could free, kept as a sum so a full store does not add them up on every append. */
  private endedBytes = 0
  private readonly active = new Map<string, string>()
  private readonly slots = new CappedCounts()
  private readonly controlListeners: Array<(message: ControlMessage) => void> = []
  private totalBytes = 0
  private readonly retainMs: number
  private readonly maxJournalBytes: number
  private readonly maxTotalBytes: number
  private readonly sweeper: NodeJS.Timeout
  private readonly log: StoreLog

  constructor (options: MemoryStoreOptions = {}) {
    this.log = options.log ?? noop
    this.retainMs = options.retainMs ?? 300_000
    this.maxJournalBytes = options.maxJournalBytes ?? 8 * 1024 * 1024
    this.maxTotalBytes = options.maxTotalBytes ?? 256 * 1024 * 1024
    // Channels age out even when nobody publishes: one coarse timer for all of them.
    this.sweeper = setInterval(() => this.sweepChannels(), Math.min(10_000, this.retainMs))
    this.sweeper.unref()
  }

  /** Bytes held by all journals (for metrics). */
  get bytes (): number {
    return this.totalBytes
  }

  /** Number of journals held (for metrics). */
  get size (): number {
    return this.journals.size
  }

  async create (key: string, meta: JournalMeta): Promise<void> {
    this.createSync(key, meta)
  }

  /** {@link create} without the promise, for callers that hold the journal locally. */
  createSync (key: string, meta: JournalMeta): void {
    if (this.journals.has(key)) throw new Error(`journal ${key} exists`)
    this.journals.set(key, newJournal(meta, undefined))
  }

  async discard (key: string): Promise<void> {
    this.delete(key)
  }

  async state (key: string): Promise<JournalState | undefined> {
    return this.stateSync(key)
  }

  /** {@link state} without the promise. */
  stateSync (key: string): JournalState | undefined {
    const journal = this.journals.get(key)
    if (journal === undefined) return undefined
    return { meta: journal.meta, lastId: journal.log.lastId, ended: journal.ended }
  }

  /** Whether this store holds the journal (the Redis store asks, to serve local readers from memory). */
  has (key: string): boolean {
    return this.journals.has(key)
  }

  append (key: string, entries: readonly JournalEntry[]): boolean {
    const journal = this.journals.get(key)
    if (journal === undefined || journal.ended !== undefined) return false
    let bytes = 0
    for (const entry of entries) bytes += entrySize(entry)
    if (isFinal(entries)) {
      // Past the caps: one small entry per journal at most, and without it a reader could not
      // tell a whole answer (`[DONE]`) from a cut one, or learn why it was cut (`error`).
      this.totalBytes += bytes
    } else {
      if (journal.log.bytes + bytes > this.maxJournalBytes) return false
      if (!this.reserve(bytes)) return false
    }
    for (const entry of entries) journal.log.push(entry)
    this.deliver(journal.listeners, entries)
    return true
  }

  async publish (channel: string, events: readonly ChannelEventInput[], retention: ChannelRetention): Promise<number[]> {
    return this.publishSync(channel, events, retention)
  }

  /** {@link publish} without the promise. */
  publishSync (channel: string, events: readonly ChannelEventInput[], retention: ChannelRetention): number[] {
    const journal = this.channel(channel, retention)
    if (journal.ended !== undefined) throw new StoreFullError(`channel ${channel} is closed`)
    const now = Date.now()
    const first = journal.log.lastId + 1
    const entries = events.map((e, i) => makeEntry(first + i, e.data, e.event))
    let bytes = 0
    for (const entry of entries) bytes += entrySize(entry)
    if (!this.reserve(bytes)) throw new StoreFullError('the relay is over its journal memory limit')
    for (const entry of entries) {
      journal.log.push(entry)
      journal.publishedAt?.push(now)
    }
    journal.touchedAt = now
    this.trim(journal, now)
    this.deliver(journal.listeners, entries)
    return entries.map((e) => e.id)
  }

  async openChannel (channel: string, retention: ChannelRetention): Promise<void> {
    this.channel(channel, retention)
  }

  end (key: string, reason: EndReason): void {
    const journal = this.journals.get(key)
    if (journal === undefined || journal.ended !== undefined) return
    journal.ended = reason
    const listeners = [...journal.listeners]
    journal.listeners.clear()
    for (const listener of listeners) {
      try {
        listener.onEnd(reason)
      } catch (err) {
        this.log('error', 'a journal reader failed', { err })
      }
    }
    journal.log.seal()
    this.endedOrder.add(key)
    this.endedBytes += journal.log.bytes
    journal.expiry = setTimeout(() => this.delete(key), this.retainMs)
    journal.expiry.unref()
  }

  /**
   * Hands entries to every reader. One that throws stops neither the others nor the producer: it
   * is logged, dropped and ended with `error` (it missed entries: left open, its stream would hang).
   */
  private deliver (listeners: Set<JournalListener>, entries: readonly JournalEntry[]): void {
    for (const listener of listeners) {
      try {
        listener.onEntries(entries)
      } catch (err) {
        this.log('error', 'a journal reader failed: dropped', { err })
        listeners.delete(listener)
        try {
          listener.onEnd('error')
        } catch {}
      }
    }
  }

  subscribe (key: string, afterId: number, listener: JournalListener): Unsubscribe {
    const journal = this.journals.get(key)
    if (journal === undefined) return noop
    if (journal.retention !== undefined) {
      journal.touchedAt = Date.now()
      this.trim(journal, journal.touchedAt)
    }
    // A reader ahead of the journal (an id from before a channel was forgotten and made again)
    // gets only the entries after its id, live ones too.
    if (afterId > journal.log.lastId) listener = exactlyOnce(afterId, listener)
    // Events a channel's retention already dropped cannot be replayed: the reader gets what is kept.
    else if (afterId < journal.log.lastId && journal.log.length > 0) listener.onEntries(journal.log.entriesAfter(afterId))
    if (journal.ended !== undefined) {
      listener.onEnd(journal.ended)
      return noop
    }
    journal.listeners.add(listener)
    return () => { journal.listeners.delete(listener) }
  }

  /** One process: every reader is local, none to announce. */
  holdRemote (): Unsubscribe {
    return noop
  }

  async hasRemoteReaders (): Promise<boolean> {
    return false
  }

  async swapActive (conversationId: string, streamId: string): Promise<string | undefined> {
    const previous = this.active.get(conversationId)
    this.active.set(conversationId, streamId)
    return previous
  }

  async clearActive (conversationId: string, streamId: string): Promise<void> {
    if (this.active.get(conversationId) === streamId) this.active.delete(conversationId)
  }

  async getActive (conversationId: string): Promise<string | undefined> {
    return this.active.get(conversationId)
  }

  async acquireSlot (client: string, max: number): Promise<boolean> {
    return this.slots.take(client, max)
  }

  async releaseSlot (client: string): Promise<void> {
    this.slots.give(client)
  }

  /** One process: the producer is here, if the generation is still running. */
  async publishControl (message: ControlMessage): Promise<void> {
    const journal = this.journals.get(message.streamId)
    if (journal === undefined || journal.ended !== undefined) return
    for (const listener of this.controlListeners) listener(message)
  }

  onControl (listener: (message: ControlMessage) => void): void {
    this.controlListeners.push(listener)
  }

  async close (): Promise<void> {
    clearInterval(this.sweeper)
    for (const journal of this.journals.values()) {
      clearTimeout(journal.expiry)
      journal.log.release()
    }
    this.journals.clear()
    this.endedOrder.clear()
    this.endedBytes = 0
    this.totalBytes = 0
  }

  private delete (key: string): void {
    const journal = this.journals.get(key)
    if (journal === undefined) return
    clearTimeout(journal.expiry)
    this.journals.delete(key)
    if (this.endedOrder.delete(key)) this.endedBytes -= journal.log.bytes
    this.totalBytes -= journal.log.bytes
    journal.log.release()
  }

  /** Counts `bytes` against the global cap, evicting ended journals if needed. False when full. */
  private reserve (bytes: number): boolean {
    if (this.totalBytes + bytes > this.maxTotalBytes && !this.evict(this.totalBytes + bytes - this.maxTotalBytes)) return false
    this.totalBytes += bytes
    return true
  }

  /** A channel's journal, made on first use. */
  private channel (name: string, retention: ChannelRetention): Journal {
    let journal = this.journals.get(name)
    if (journal === undefined) {
      journal = newJournal({ kind: 'channel', owner: null, createdAt: Date.now() }, retention)
      this.journals.set(name, journal)
    }
    return journal
  }

  /** Drops a channel's events beyond its count limit or older than its age limit. */
  private trim (journal: Journal, now: number): void {
    const { retention, publishedAt, log } = journal
    if (retention === undefined || publishedAt === undefined) return
    let drop = Math.max(0, log.length - retention.maxEvents)
    const oldest = now - retention.maxAgeMs
    while (drop < log.length && (publishedAt[drop] as number) < oldest) drop++
    if (drop === 0) return
    const bytes = log.dropFirst(drop)
    publishedAt.splice(0, drop)
    this.totalBytes -= bytes
    if (journal.ended !== undefined) this.endedBytes -= bytes
  }

  /** Ages channel events out, and forgets channels nobody published to or read for their age limit. */
  private sweepChannels (): void {
    const now = Date.now()
    for (const [key, journal] of this.journals) {
      if (journal.retention === undefined) continue
      this.trim(journal, now)
      if (journal.listeners.size === 0 && journal.log.length === 0 && journal.ended === undefined &&
        now - journal.touchedAt > journal.retention.maxAgeMs) this.delete(key)
    }
  }

  /** Frees at least `bytes` by dropping ended journals, oldest first. False if not enough could be. */
  private evict (bytes: number): boolean {
    // Not enough even with every ended journal gone: refuse, and keep them replayable.
    if (this.endedBytes < bytes) return false
    let freed = 0
    for (const key of this.endedOrder) {
      if (freed >= bytes) break
      freed += this.journals.get(key)?.log.bytes ?? 0
      this.delete(key)
    }
    return freed >= bytes
  }
}

function newJournal (meta: JournalMeta, retention: ChannelRetention | undefined): Journal {
  return {
    meta,
    log: new EntryLog(),
    publishedAt: retention === undefined ? undefined : [],
    retention,
    touchedAt: Date.now(),
    ended: undefined,
    listeners: new Set(),
    expiry: undefined
  }
}

function noop (): void {}

/** The producer's last entry: `[DONE]` after a whole answer, or the `error` of a cut one (channels may not publish `error` events). */
function isFinal (entries: readonly JournalEntry[]): boolean {
  if (entries.length !== 1) return false
  const entry = entries[0] as JournalEntry
  return entry.event === 'error' || (entry.event === undefined && entry.data === DONE)
}
