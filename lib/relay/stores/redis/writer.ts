import type { EndReason, JournalEntry, JournalMeta } from '../../journal.js'
import type { MemoryStore } from '../memory.js'
import { batchFields, isAlreadyWritten, isClosedStream, journalIdOf } from './codec.js'
import type { StreamItem } from './codec.js'
import { backoffMs, groupOf, run } from './context.js'
import type { RedisContext, Replies } from './context.js'
import { pipelineOf } from './scripts.js'

/** Options of {@link JournalWriter}. */
export interface WriterOptions {
  /** The memory journals of the generations produced here (the source of every rewrite). */
  memory: MemoryStore
  /** Flushes start at most once per this many ms. */
  flushMs: number
  /** Approximate cap on stream entries (batches) per journal, `XADD MAXLEN ~`. */
  maxStreamLength: number
  /** Characters of entry data queued for Redis, all journals together, before a journal is cut. */
  maxPendingBytes: number
  /** A cancel or supersede found in a journal's meta (sent while this instance could not hear it). */
  onStop: (streamId: string, action: 'cancelled' | 'superseded') => void
  /**
   * How long a journal whose end Redis took is still checked after a failover (and written again
   * where the new master lacks it): a master's last writes may not have reached the replica that
   * replaces it, and the failover is noticed only once it is detected and done.
   */
  settleMs: number
}

/** A journal produced on this instance, as far as Redis knows it. */
interface Produced {
  streamId: string
  meta: JournalMeta
  group: Group
  /** Entries appended but not yet written to Redis. */
  pending: JournalEntry[]
  pendingBytes: number
  /** Id of the last entry Redis acknowledged. */
  writtenId: number
  /** The end to write after the pending entries. */
  end: EndReason | undefined
  /** When its keys' expiry must be renewed (performance.now()); 0: at the next flush. */
  renewAt: number
  /** Over the pending bound while Redis was away: no more entries go to Redis; it ends there as `error`. */
  cut: boolean
  /** Once Redis took its end: until when it is still checked after a failover (performance.now()); 0 before. */
  keepUntil: number
}

/** The journals of one flush group, flushed by one pipeline at a time. */
interface Group {
  id: number
  journals: Set<Produced>
  dirty: Set<Produced>
  inFlight: boolean
  /** A write may have been lost (connection lost, failover): check what Redis holds before the next. */
  verify: boolean
  failures: number
  /** No attempt before (performance.now()). */
  retryAt: number
}

/**
 * Writes the journals produced here to Redis. `append` queues entries (local readers were served
 * from memory already); on the next turn, or `flushMs` after the previous flush started if that
 * is later, each group with something queued goes out as one pipeline: one XADD per journal (a
 * batch per stream entry, see codec.ts), the end of those that ended, and one notification for
 * the group's followers. One pipeline per group in flight at a time, so a slow round trip makes
 * the next batch bigger instead of reordering writes; a group that failed is retried with backoff
 * while the others go on.
 *
 * What Redis holds is checked again after anything that may have lost writes — a lost
 * connection, a failover, a Redis restarted empty, this instance's lease lapsing — and the
 * journals are written again from memory where Redis lacks them: a lost journal whole, a lost
 * tail from the last entry Redis has, under the same ids, so readers elsewhere, who follow by id,
 * miss nothing. A journal another instance ended meanwhile (it took this one for dead) is left as
 * it is.
 */
export class JournalWriter {
  readonly #ctx: RedisContext
  readonly #options: WriterOptions
  readonly #produced = new Map<string, Produced>()
  readonly #groups = new Map<number, Group>()
  #pendingBytes = 0
  #timer: NodeJS.Timeout | undefined
  /** When the last flush started (performance.now()). */
  #lastFlushAt = -Infinity
  #closed = false

  constructor (ctx: RedisContext, options: WriterOptions) {
    this.#ctx = ctx
    this.#options = options
  }

  /** Expiry of an unfinished journal's keys, renewed while it runs: a dead producer's journal still expires. */
  get openTtlMs (): number {
    return this.#ctx.retainMs + this.#ctx.leaseMs
  }

  /** Entries waiting to be written to Redis, all journals (for metrics and tests). */
  get pendingEntries (): number {
    let n = 0
    for (const journal of this.#produced.values()) n += journal.pending.length
    return n
  }

  /** Characters of entry data waiting to be written (for tests). */
  get pendingBytes (): number {
    return this.#pendingBytes
  }

  has (streamId: string): boolean {
    return this.#produced.has(streamId)
  }

  /** The meta fields of a journal produced here. */
  metaFields (meta: JournalMeta): Record<string, string> {
    const fields: Record<string, string> = { kind: meta.kind, createdAt: String(meta.createdAt), producer: this.#ctx.instanceId }
    if (meta.owner !== null) fields.owner = meta.owner
    if (meta.conversationId !== undefined) fields.conv = meta.conversationId
    return fields
  }

  async create (streamId: string, meta: JournalMeta): Promise<void> {
    const { keys } = this.#ctx
    const key = keys.meta(streamId)
    const replies = await run(pipelineOf(this.#ctx.cmd).hset(key, this.metaFields(meta)).pexpire(key, this.openTtlMs))
    const failed = replies.find(([err]) => err !== null)?.[0]
    if (failed != null) throw failed
    this.#options.memory.createSync(streamId, meta)
    const group = this.#group(groupOf(this.#ctx, streamId))
    const journal: Produced = { streamId, meta, group, pending: [], pendingBytes: 0, writtenId: 0, end: undefined, renewAt: performance.now() + this.openTtlMs / 2, cut: false, keepUntil: 0 }
    this.#produced.set(streamId, journal)
    group.journals.add(journal)
  }

  async discard (streamId: string): Promise<void> {
    this.#forget(streamId)
    await this.#options.memory.discard(streamId)
    const { keys } = this.#ctx
    await this.#ctx.cmd.del(keys.meta(streamId), keys.log(streamId))
  }

  append (streamId: string, entries: readonly JournalEntry[]): boolean {
    if (!this.#options.memory.append(streamId, entries)) return false
    const journal = this.#produced.get(streamId)
    if (journal === undefined || journal.cut) return true
    let bytes = 0
    for (const entry of entries) {
      journal.pending.push(entry)
      bytes += entry.data.length
    }
    journal.pendingBytes += bytes
    this.#pendingBytes += bytes
    if (this.#pendingBytes > this.#options.maxPendingBytes) this.#cut(journal)
    this.#markDirty(journal)
    return true
  }

  /** Ends a journal produced here (false: not produced here). */
  end (streamId: string, reason: EndReason): boolean {
    const journal = this.#produced.get(streamId)
    if (journal === undefined && !this.#options.memory.has(streamId)) return false
    this.#options.memory.end(streamId, reason)
    if (journal === undefined || journal.end !== undefined) return true
    journal.end = reason
    this.#markDirty(journal)
    return true
  }

  /** Checks every group against Redis before its next write (a reconnect, a failover, this instance's lease lapsed). */
  verifyAll (): void {
    for (const group of this.#groups.values()) {
      group.verify = true
      group.retryAt = 0
    }
    this.#schedule()
  }

  /** Renews the expiry of the journals whose keys would otherwise expire while they run (once per half expiry). */
  renewExpiries (): void {
    const now = performance.now()
    for (const journal of this.#produced.values()) {
      if (journal.end === undefined && journal.renewAt !== 0 && now >= journal.renewAt) {
        journal.renewAt = 0
        this.#markDirty(journal)
      }
    }
  }

  /** Forgets the ended journals kept for a failover once their window has passed. */
  forgetSettled (): void {
    const now = performance.now()
    for (const journal of this.#produced.values()) {
      if (journal.keepUntil !== 0 && now >= journal.keepUntil) this.#forget(journal.streamId)
    }
  }

  /** Writes what is queued (best effort: one attempt per group, bounded by the command timeout), then stops. */
  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#idle()
    if (this.#ctx.cmd.status !== 'ready') return
    await Promise.all([...this.#groups.values()].map(async (group) => {
      if (group.dirty.size > 0 || group.verify) await this.#runGroup(group)
    }))
  }

  #group (id: number): Group {
    let group = this.#groups.get(id)
    if (group === undefined) {
      group = { id, journals: new Set(), dirty: new Set(), inFlight: false, verify: false, failures: 0, retryAt: 0 }
      this.#groups.set(id, group)
    }
    return group
  }

  #forget (streamId: string): void {
    const journal = this.#produced.get(streamId)
    if (journal === undefined) return
    this.#produced.delete(streamId)
    journal.group.journals.delete(journal)
    journal.group.dirty.delete(journal)
    this.#pendingBytes -= journal.pendingBytes
  }

  #markDirty (journal: Produced): void {
    journal.group.dirty.add(journal)
    this.#schedule()
  }

  /** Stops writing a journal to Redis: it outgrew the queue while Redis was away. */
  #cut (journal: Produced): void {
    this.#ctx.log('warn', 'Redis unavailable too long: the journal is no longer written to Redis; its readers elsewhere will get an error', { streamId: journal.streamId })
    journal.cut = true
    this.#pendingBytes -= journal.pendingBytes
    journal.pending = []
    journal.pendingBytes = 0
  }

  #schedule (): void {
    if (this.#timer !== undefined || this.#closed) return
    const now = performance.now()
    let at = Infinity
    for (const group of this.#groups.values()) {
      if (group.inFlight || (group.dirty.size === 0 && !group.verify)) continue
      at = Math.min(at, Math.max(group.retryAt, this.#lastFlushAt + this.#options.flushMs))
    }
    if (at === Infinity) return
    const wait = at - now
    // The first flush after a quiet spell goes out on the next turn; later ones gather for flushMs.
    this.#timer = wait > 0 ? setTimeout(this.#flushDue, wait) : setImmediate(this.#flushDue) as unknown as NodeJS.Timeout
  }

  readonly #flushDue = (): void => {
    this.#timer = undefined
    // Written when the connection is back (its 'ready' verifies and schedules again).
    if (this.#closed || this.#ctx.cmd.status !== 'ready') return
    const now = performance.now()
    this.#lastFlushAt = now
    for (const group of this.#groups.values()) {
      if (group.inFlight || now < group.retryAt || (group.dirty.size === 0 && !group.verify)) continue
      group.inFlight = true
      void this.#runGroup(group).finally(() => {
        group.inFlight = false
        this.#schedule()
      })
    }
    this.#schedule()
  }

  async #runGroup (group: Group): Promise<void> {
    try {
      if (group.verify) await this.#verify(group)
      if (group.dirty.size > 0) await this.#flushGroup(group)
      group.failures = 0
    } catch (err) {
      // The whole round trip failed: Redis may or may not have what was sent; check before the next.
      group.verify = true
      group.failures++
      group.retryAt = performance.now() + backoffMs(group.failures)
      this.#ctx.health.failed(err, 'journal write')
    }
  }

  /** Resolves once no group is in flight. */
  async #idle (): Promise<void> {
    while ([...this.#groups.values()].some((g) => g.inFlight)) await new Promise((resolve) => setTimeout(resolve, 5))
  }

  /** One pipeline for a group: each dirty journal's batch, expiry, end; then one notification. Rejects when the round trip failed. */
  async #flushGroup (group: Group): Promise<void> {
    const { keys, retainMs } = this.#ctx
    const journals = [...group.dirty]
    group.dirty.clear()
    const pipeline = pipelineOf(this.#ctx.cmd)
    const sent: Array<{ journal: Produced, entries: JournalEntry[], ending: boolean, renewed: boolean, first: number, count: number }> = []
    const notified: string[] = []
    let index = 0
    for (const journal of journals) {
      const { streamId } = journal
      const log = keys.log(streamId)
      const meta = keys.meta(streamId)
      const entries = journal.pending
      journal.pending = []
      this.#pendingBytes -= journal.pendingBytes
      journal.pendingBytes = 0
      const first = index
      const last = entries[entries.length - 1]
      if (last !== undefined) {
        pipeline.xadd(log, 'MAXLEN', '~', this.#options.maxStreamLength, `${last.id}-0`, ...batchFields(entries))
        index++
      }
      const ending = journal.end !== undefined
      const renewed = !ending && (journal.renewAt === 0 || (journal.writtenId === 0 && last !== undefined))
      if (ending) {
        // A journal cut from Redis ends there as an error: its remote readers must not take a
        // cut answer for a finished one.
        const reason = journal.cut ? 'error' : journal.end as EndReason
        pipeline.xadd(log, `${last?.id ?? journal.writtenId}-1`, 'end', reason)
          // Not over an end another instance wrote (it took this one for dead, see relayEnd).
          .hsetnx(meta, 'ended', reason)
          .pexpire(log, retainMs)
          .pexpire(meta, retainMs)
        index += 4
      } else if (renewed) {
        // The log's first batch gives it its expiry; then it is renewed once per half expiry.
        pipeline.pexpire(log, this.openTtlMs).pexpire(meta, this.openTtlMs)
        index += 2
      }
      if (last !== undefined || ending) notified.push(streamId)
      sent.push({ journal, entries, ending, renewed, first, count: index - first })
    }
    if (notified.length > 0) pipeline.spublish(keys.notify(group.id), notified.join(' '))
    let replies: Replies
    try {
      replies = await run(pipeline)
    } catch (err) {
      for (const { journal, entries } of sent) this.#requeue(journal, entries)
      throw err
    }
    let failedErr: Error | undefined
    for (const { journal, entries, ending, renewed, first, count } of sent) {
      let err: Error | undefined
      for (let i = first; i < first + count && err === undefined; i++) {
        const reply = replies[i]?.[0]
        // Another instance ended it (it took this one for dead) and closed its stream: nothing
        // was added; the check before the next write finds that end and stops writing it.
        if (reply != null && isClosedStream(reply)) group.verify = true
        // A batch (or end marker) Redis already has: a reply lost to a reconnect, written before.
        else if (reply != null && !isAlreadyWritten(reply)) err = reply
      }
      if (err !== undefined) {
        failedErr ??= err
        this.#requeue(journal, entries)
        continue
      }
      const last = entries[entries.length - 1]
      if (last !== undefined) journal.writtenId = last.id
      if (renewed) journal.renewAt = performance.now() + this.openTtlMs / 2
      if (ending) this.#settle(journal)
    }
    // A command Redis refused (not the round trip): the others are written; those go again after a backoff.
    if (failedErr !== undefined) throw failedErr
  }

  /**
   * Redis took a journal's end. It is kept a while (`settleMs`), so that a failover to a replica
   * that missed the end (or the tail before it) writes them again, as for a running journal.
   */
  #settle (journal: Produced): void {
    journal.keepUntil = performance.now() + this.#options.settleMs
    journal.group.dirty.delete(journal)
    this.#pendingBytes -= journal.pendingBytes
    journal.pending = []
    journal.pendingBytes = 0
  }

  /** Puts entries back in front of whatever came meanwhile, for the next flush. */
  #requeue (journal: Produced, entries: JournalEntry[]): void {
    if (!this.#produced.has(journal.streamId)) return
    if (entries.length > 0) journal.pending = entries.concat(journal.pending)
    let bytes = 0
    for (const entry of entries) bytes += entry.data.length
    journal.pendingBytes += bytes
    this.#pendingBytes += bytes
    journal.group.dirty.add(journal)
  }

  /**
   * Compares what Redis holds of a group's journals with what was written, and queues what it
   * lacks: the whole journal (meta and every entry) when it lost the journal, the entries after
   * its last one when it lost a tail. Applies a cancel or supersede found in a meta.
   */
  async #verify (group: Group): Promise<void> {
    const { keys } = this.#ctx
    const journals = [...group.journals]
    if (journals.length > 0) {
      const check = pipelineOf(this.#ctx.cmd)
      for (const { streamId } of journals) {
        check.exists(keys.meta(streamId)).hmget(keys.meta(streamId), 'ended', 'stop').xrevrange(keys.log(streamId), '+', '-', 'COUNT', 1)
      }
      const replies = await run(check)
      const failed = replies.find(([err]) => err !== null)?.[0]
      if (failed != null) throw failed
      const rewrite = pipelineOf(this.#ctx.cmd)
      let lost = 0
      for (const [i, journal] of journals.entries()) {
        const exists = replies[3 * i]?.[1] === 1
        const [ended, stop] = replies[3 * i + 1]?.[1] as [string | null, string | null]
        const top = (replies[3 * i + 2]?.[1] as StreamItem[])[0]
        if (!this.#produced.has(journal.streamId)) continue
        if (!exists) {
          lost++
          this.#rewrite(journal, 0)
          rewrite.hset(keys.meta(journal.streamId), this.metaFields(journal.meta)).pexpire(keys.meta(journal.streamId), this.openTtlMs).del(keys.log(journal.streamId))
          continue
        }
        if (ended !== null) {
          // Ended in Redis, by this instance (written, or a reply lost) or by another that took it for dead.
          const mine = journal.end !== undefined && ended === (journal.cut ? 'error' : journal.end)
          if (!mine) {
            this.#ctx.log('warn', 'a journal produced here was ended in Redis by another instance (this one was taken for dead): its readers elsewhere got that end', { streamId: journal.streamId, ended })
            this.#forget(journal.streamId)
          } else if (journal.keepUntil === 0) {
            // The end went through (its reply was lost): so did every entry before it.
            journal.writtenId = Math.max(journal.writtenId, journal.pending.at(-1)?.id ?? 0)
            this.#settle(journal)
          }
          continue
        }
        // An end Redis had taken and the new master lacks (a failover): written again, after any lost tail.
        const endLost = journal.keepUntil !== 0
        if (endLost) {
          journal.keepUntil = 0
          lost++
          journal.group.dirty.add(journal)
        }
        if (journal.end === undefined && (stop === 'cancelled' || stop === 'superseded')) this.#options.onStop(journal.streamId, stop)
        const topId = top === undefined ? 0 : journalIdOf(top[0])
        if (topId === journal.writtenId) continue
        if (journal.cut) {
          // Nothing more of it goes to Redis; its end marker goes after whatever Redis has.
          journal.writtenId = topId
        } else {
          if (topId < journal.writtenId && !endLost) lost++
          this.#rewrite(journal, topId)
        }
      }
      if (lost > 0) {
        if (rewrite.length > 0) {
          const replies = await run(rewrite)
          const failed = replies.find(([err]) => err !== null)?.[0]
          if (failed != null) throw failed
        }
        this.#ctx.log('warn', 'Redis lacked journals (or their last entries) written from here (restarted empty, or a failover): written again from memory', { journals: lost })
      }
    }
    group.verify = false
  }

  /** Queues every entry after `fromId` again, from memory: Redis holds the journal up to `fromId`. */
  #rewrite (journal: Produced, fromId: number): void {
    const entries: JournalEntry[] = []
    this.#options.memory.subscribe(journal.streamId, fromId, { onEntries: (batch) => { for (const e of batch) entries.push(e) }, onEnd () {} })()
    this.#pendingBytes -= journal.pendingBytes
    journal.pending = entries
    journal.pendingBytes = entries.reduce((n, e) => n + e.data.length, 0)
    this.#pendingBytes += journal.pendingBytes
    journal.writtenId = fromId
    journal.cut = false
    // An ended journal goes out again with its end.
    journal.keepUntil = 0
    if (fromId === 0) journal.renewAt = 0
    journal.group.dirty.add(journal)
  }
}
