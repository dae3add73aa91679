import type { Redis } from 'ioredis'
import type { EndReason, JournalEntry, JournalListener, Unsubscribe } from '../../journal.js'
import { compareStreamIds, decodeItems } from './codec.js'
import type { StreamItem } from './codec.js'
import type { RedisKeys } from './keys.js'
import type { ScriptCommands, ScriptPipeline } from './scripts.js'

/** What the follower needs from the store. */
export interface FollowerDeps {
  /** The command connection: catch-up reads, `CLIENT UNBLOCK`, lease checks. */
  cmd: Redis & ScriptCommands
  /** The one blocking connection of this instance, used by the XREAD loop only. */
  blocker: Redis
  keys: RedisKeys
  /** XREAD BLOCK timeout. */
  blockMs: number
  retainMs: number
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void
}

/** One local reader of a remote journal. */
interface Reader {
  listener: JournalListener
  /** Id of the last entry delivered. */
  last: number
  /** Set once the catch-up read has been delivered; live batches wait in `backlog` until then. */
  caught: boolean
  done: boolean
  backlog: Array<readonly JournalEntry[] | EndReason>
}

/** Every local reader of one remote journal, and how far the shared XREAD has read it. */
interface Follow {
  streamId: string
  logKey: string
  /** Stream id the live read continues after; unset until the first catch-up has read a snapshot. */
  cursor: string | undefined
  /** The end marker was read: nothing more to follow. */
  ended: EndReason | undefined
  readers: Set<Reader>
}

/**
 * Reads journals produced on other instances: each reader catches up from its own id with XRANGE,
 * then all readers of all remote journals on this instance are fed by ONE loop of
 * `XREAD BLOCK … STREAMS k1 k2 … c1 c2 …` on one connection, whatever their number. Entries are
 * decoded and framed once per instance and shared by the readers of a journal.
 *
 * The seam between catch-up and live: a reader joins its journal's follow before its XRANGE is
 * sent, and live batches arriving meanwhile wait in its backlog. The XRANGE runs after the join,
 * so it reaches at least the follow's cursor at that moment, and the live read continues from that
 * cursor: together they cover everything; duplicates at the seam are dropped by id.
 *
 * A new journal in the set must be read at once, not after the current BLOCK times out: the loop
 * is woken with `CLIENT UNBLOCK <id> TIMEOUT` from the command connection (the XREAD returns as if
 * timed out and is re-issued with the new set). Removing a journal needs no wake-up: its results
 * are simply dropped. The BLOCK timeout is only the backstop for an unblock that raced the XREAD.
 */
export class RemoteFollower {
  private readonly follows = new Map<string, Follow>()
  private readonly loop: Promise<void>
  private closed = false
  /** Keys of the XREAD in flight, if one is. */
  private reading: Set<string> | undefined
  private blockerId: number | undefined
  private unblocking = false
  private wakeup: (() => void) | undefined

  constructor (private readonly deps: FollowerDeps) {
    // A reconnected blocking connection has a new client id.
    deps.blocker.on('close', () => { this.blockerId = undefined })
    deps.blocker.on('ready', () => this.wake())
    this.loop = this.run()
  }

  /** Journals followed (for metrics and tests). */
  get size (): number {
    return this.follows.size
  }

  /** Whether a journal is followed here. */
  has (streamId: string): boolean {
    return this.follows.has(this.deps.keys.log(streamId))
  }

  /** The highest id read here of a followed journal (0 when none), or `undefined` when it is not followed or has ended. */
  lastReadId (streamId: string): number | undefined {
    const follow = this.follows.get(this.deps.keys.log(streamId))
    if (follow === undefined || follow.ended !== undefined) return undefined
    // Stream entry ids are `<last journal id of the batch>-0`.
    let last = follow.cursor === undefined ? 0 : Number(follow.cursor.split('-', 1)[0])
    for (const reader of follow.readers) last = Math.max(last, reader.last)
    return last
  }

  /** Follows a remote journal from `afterId` (see RelayStore.subscribe): catch-up, then live, then end. */
  subscribe (streamId: string, afterId: number, listener: JournalListener): Unsubscribe {
    const logKey = this.deps.keys.log(streamId)
    let follow = this.follows.get(logKey)
    if (follow === undefined) {
      follow = { streamId, logKey, cursor: undefined, ended: undefined, readers: new Set() }
      this.follows.set(logKey, follow)
    }
    const reader: Reader = { listener, last: Math.max(0, afterId), caught: false, done: false, backlog: [] }
    follow.readers.add(reader)
    void this.catchUp(follow, reader)
    const joined = follow
    return () => {
      if (reader.done) return
      reader.done = true
      this.leave(joined, reader)
    }
  }

  /**
   * Checks the producers' leases of every followed journal (one pipeline). A journal whose lease
   * is gone without an end marker is ended as `producer_lost` in Redis, atomically (a script), so
   * every reader on every instance gets the same end through the stream itself.
   */
  async checkLeases (): Promise<void> {
    const { cmd, keys, retainMs } = this.deps
    const follows = [...this.follows.values()].filter((f) => f.ended === undefined && f.readers.size > 0)
    if (follows.length === 0 || cmd.status !== 'ready') return
    const pipeline = cmd.pipeline() as ReturnType<Redis['pipeline']> & ScriptPipeline
    for (const f of follows) pipeline.relayEnd(keys.meta(f.streamId), f.logKey, keys.lease(f.streamId), retainMs, 'producer_lost', 1)
    const results = await pipeline.exec()
    results?.forEach(([err, result], i) => {
      const follow = follows[i]
      if (err !== null || follow === undefined) return
      if (result === 'producer_lost') this.deps.log('warn', 'producer lost: its lease expired without an end', { streamId: follow.streamId })
      // Expired while followed (the producer died longer ago than the retention): end rather than wait forever.
      if (result === 'gone') this.deliver(follow, [], 'producer_lost')
      // Any other reason: the end marker is in the stream and the live read brings it, after the entries before it.
    })
  }

  /** Stops the loop. Readers are left as they are (the instance is going away). */
  async close (): Promise<void> {
    this.closed = true
    this.wake()
    await this.loop
  }

  /** Wakes the loop: the set of journals to read changed, or the connection is back. */
  private wake (): void {
    const wakeup = this.wakeup
    this.wakeup = undefined
    wakeup?.()
    if (this.reading !== undefined && !this.unblocking) void this.unblock(this.reading)
  }

  private async unblock (read: Set<string>): Promise<void> {
    const needed = [...this.follows.values()].some((f) => f.cursor !== undefined && f.ended === undefined && !read.has(f.logKey))
    if (!needed && !this.closed) return
    this.unblocking = true
    try {
      // The UNBLOCK may reach Redis before the XREAD it targets: then it unblocks nothing, and
      // is retried briefly while that same XREAD is still in flight.
      for (let attempt = 1; attempt <= 5 && this.reading === read; attempt++) {
        const id = this.blockerId
        if (id !== undefined && this.deps.cmd.status === 'ready') {
          const unblocked = await this.deps.cmd.client('UNBLOCK', id, 'TIMEOUT')
          if (unblocked === 1) return
        }
        await sleep(attempt * 2)
      }
    } catch {
      // Redis unreachable: the loop finds out by itself.
    } finally {
      this.unblocking = false
    }
  }

  private async idle (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms)
      function done (): void {
        clearTimeout(timer)
        resolve()
      }
      this.wakeup = done
    })
  }

  private async run (): Promise<void> {
    const { blocker, blockMs } = this.deps
    while (!this.closed) {
      const keys: string[] = []
      const ids: string[] = []
      for (const follow of this.follows.values()) {
        if (follow.cursor === undefined || follow.ended !== undefined) continue
        keys.push(follow.logKey)
        ids.push(follow.cursor)
      }
      if (keys.length === 0 || blocker.status !== 'ready') {
        await this.idle(blockMs)
        continue
      }
      const read = new Set(keys)
      this.reading = read
      let reply: Array<[string, StreamItem[]]> | null
      try {
        this.blockerId ??= await blocker.client('ID')
        reply = await blocker.xread('COUNT', 1000, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids) as Array<[string, StreamItem[]]> | null
      } catch {
        // Connection lost or closing: wait for it to come back ('ready' wakes us), then read on
        // from the same cursors: nothing is missed.
        this.reading = undefined
        if (!this.closed) await this.idle(250)
        continue
      }
      this.reading = undefined
      if (reply !== null) this.dispatch(reply)
    }
  }

  private dispatch (reply: Array<[string, StreamItem[]]>): void {
    for (const [logKey, items] of reply) {
      const follow = this.follows.get(logKey)
      if (follow === undefined || follow.ended !== undefined) continue
      // The follow may have been dropped and made anew while this read was in flight.
      const cursor = follow.cursor
      const fresh = cursor === undefined ? items : items.filter((item) => compareStreamIds(item[0], cursor) > 0)
      const newest = fresh[fresh.length - 1]
      if (newest === undefined) continue
      if (cursor !== undefined) follow.cursor = newest[0]
      const { entries, end } = decodeItems(fresh, 0)
      this.deliver(follow, entries, end)
    }
  }

  /** Hands a live batch (framed once) to every reader of a journal, and the end if it came. */
  private deliver (follow: Follow, entries: readonly JournalEntry[], end: EndReason | undefined): void {
    if (end !== undefined) follow.ended = end
    for (const reader of [...follow.readers]) {
      if (reader.done) continue
      if (!reader.caught) {
        if (entries.length > 0) reader.backlog.push(entries)
        if (end !== undefined) reader.backlog.push(end)
        continue
      }
      this.give(follow, reader, entries)
      if (end !== undefined && !reader.done) this.finish(follow, reader, end)
    }
  }

  private async catchUp (follow: Follow, reader: Reader): Promise<void> {
    const { cmd } = this.deps
    const afterId = reader.last
    let items: StreamItem[]
    let top: string | undefined
    for (;;) {
      if (reader.done || this.closed) return
      try {
        // One snapshot: the entries after `afterId` and the stream's top, for a new follow's cursor.
        const results = await cmd.multi()
          .xrange(follow.logKey, `(${afterId}-0`, '+')
          .xrevrange(follow.logKey, '+', '-', 'COUNT', 1)
          .exec()
        if (results === null) throw new Error('catch-up transaction aborted')
        const [range, last] = results
        if (range?.[0] != null) throw range[0]
        if (last?.[0] != null) throw last[0]
        items = range?.[1] as StreamItem[]
        top = (last?.[1] as StreamItem[])[0]?.[0]
        break
      } catch {
        // Redis unreachable: a remote reader just waits; it catches up once Redis is back.
        await sleep(250)
      }
    }
    if (reader.done) return
    if (follow.cursor === undefined && follow.ended === undefined) {
      follow.cursor = top ?? '0-0'
      this.wake()
    }
    const { entries, end } = decodeItems(items, afterId)
    reader.caught = true
    this.give(follow, reader, entries)
    if (end !== undefined) {
      if (!reader.done) this.finish(follow, reader, end)
      return
    }
    const backlog = reader.backlog
    reader.backlog = []
    for (const item of backlog) {
      if (reader.done) return
      if (typeof item === 'string') this.finish(follow, reader, item)
      else this.give(follow, reader, item)
    }
  }

  /** Delivers the entries the reader does not have yet. */
  private give (follow: Follow, reader: Reader, entries: readonly JournalEntry[]): void {
    const first = entries[0]
    if (first === undefined || reader.done) return
    const fresh = first.id > reader.last ? entries : entries.filter((e) => e.id > reader.last)
    const newest = fresh[fresh.length - 1]
    if (newest === undefined) return
    reader.last = newest.id
    try {
      reader.listener.onEntries(fresh)
    } catch (err) {
      // As in the memory store: it missed entries, so it is dropped and ended, not left open with a gap.
      this.deps.log('error', 'a journal reader failed: dropped', { err })
      this.finish(follow, reader, 'error')
    }
  }

  private finish (follow: Follow, reader: Reader, reason: EndReason): void {
    reader.done = true
    this.leave(follow, reader)
    try {
      reader.listener.onEnd(reason)
    } catch (err) {
      this.deps.log('error', 'a journal reader failed', { err })
    }
  }

  private leave (follow: Follow, reader: Reader): void {
    follow.readers.delete(reader)
    if (follow.readers.size === 0 && this.follows.get(follow.logKey) === follow) this.follows.delete(follow.logKey)
  }
}

async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
