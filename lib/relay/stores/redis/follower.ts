import type { EndReason, JournalEntry, JournalListener, Unsubscribe } from '../../journal.js'
import { compareStreamIds, decodeItems } from './codec.js'
import type { StreamItem } from './codec.js'
import { backoffMs, groupOf, run, sleep } from './context.js'
import type { RedisContext, Replies } from './context.js'
import type { Instances } from './instances.js'
import { pipelineOf } from './scripts.js'
import type { Subscriptions } from './subscriptions.js'

/** Options of {@link Follower}. */
export interface FollowerOptions {
  subscriptions: Subscriptions
  instances: Instances
  /** A journal that got no notification for this long is read all the same (a notification lost in a failover). */
  pollMs: number
}

/** One local reader of a journal followed from Redis. */
interface Reader {
  listener: JournalListener
  /** Id of the last entry delivered. */
  last: number
  /** Set once the catch-up read has been delivered; live batches wait in `backlog` until then. */
  caught: boolean
  done: boolean
  backlog: Array<readonly JournalEntry[] | EndReason>
}

/** Every local reader of one journal, and how far the shared reads have read it. */
interface Follow {
  streamId: string
  logKey: string
  group: Group
  /** The producing instance (from the meta), for generations. */
  producer: string | undefined
  /** Stream id the live reads continue after; unset until the first catch-up has read a snapshot. */
  cursor: string | undefined
  /** The end marker was read: nothing more to follow. */
  ended: EndReason | undefined
  readers: Set<Reader>
  /** When it was last read (performance.now()). */
  readAt: number
}

/** The follows of one notification group, read together. */
interface Group {
  id: number
  channel: string
  follows: Set<Follow>
  /** Follows to read: notified, new, or quiet for too long. */
  dirty: Set<Follow>
  /** Resolves once the group's notification channel is subscribed. */
  subscribed: Promise<void>
  inFlight: boolean
  failures: number
  retryAt: number
  timer: NodeJS.Timeout | undefined
}

/** Most keys of one XREAD: its cost grows with its keys, and a partition may hold thousands. */
const KEYS_PER_READ = 256
/** Most stream entries (batches) read per journal per read. */
const ENTRIES_PER_READ = 1000
/** A read or catch-up failing with an error (not an outage) this many times in a row ends its readers with `store_error`. */
const MAX_ERRORS = 3

/**
 * Reads journals from Redis for local readers: every journal produced on another instance, and
 * every channel. What a follower costs Redis is per delivered event, not per followed stream: a
 * producer's flush notifies each group it wrote to (a sharded channel per partition on a Cluster,
 * one in all on a single master) with the ids of the journals it wrote, and the follower then
 * reads just those journals, all of a group's in one XREAD from their cursors (a range read,
 * never blocking). A notification that arrives while its group's read is in flight is served by
 * the next read, so under load each read carries more. A journal heard of by no notification for
 * `pollMs` is read anyway, and a (re)subscription reads its whole group: a notification missed
 * (pub/sub keeps nothing for an absent subscriber) delays a reader, it never loses it anything.
 *
 * Each reader catches up from its own id with XRANGE, then gets the batches the shared reads
 * deliver, decoded and framed once per instance. The seam: a reader joins its journal's follow
 * before its XRANGE is sent, and live batches arriving meanwhile wait in its backlog; the XRANGE
 * reaches at least the follow's cursor at that moment and the reads continue from that cursor:
 * together they cover everything, and duplicates at the seam are dropped by id.
 *
 * A generation whose producer instance died (its lease lapsed) is ended as `producer_lost` in
 * Redis, so every reader everywhere gets the same end through the journal itself.
 */
export class Follower {
  readonly #ctx: RedisContext
  readonly #options: FollowerOptions
  readonly #follows = new Map<string, Follow>()
  readonly #groups = new Map<number, Group>()
  readonly #byChannel = new Map<string, Group>()
  #closed = false

  constructor (ctx: RedisContext, options: FollowerOptions) {
    this.#ctx = ctx
    this.#options = options
  }

  /** Journals followed (for metrics and tests). */
  get size (): number {
    return this.#follows.size
  }

  /** Whether a journal is followed here. */
  has (streamId: string): boolean {
    return this.#follows.has(streamId)
  }

  /** The producer instance of a followed journal, once its catch-up has read it. */
  producerOf (streamId: string): string | undefined {
    return this.#follows.get(streamId)?.producer
  }

  /** The highest id read here of a followed journal (0 when none), or `undefined` when it is not followed or has ended. */
  lastReadId (streamId: string): number | undefined {
    const follow = this.#follows.get(streamId)
    if (follow === undefined || follow.ended !== undefined) return undefined
    // Stream entry ids are `<last journal id of the batch>-0`.
    let last = follow.cursor === undefined ? 0 : Number(follow.cursor.split('-', 1)[0])
    for (const reader of follow.readers) last = Math.max(last, reader.last)
    return last
  }

  /** Follows a journal from `afterId` (see RelayStore.subscribe): catch-up, then live, then end. */
  subscribe (streamId: string, afterId: number, listener: JournalListener): Unsubscribe {
    let follow = this.#follows.get(streamId)
    if (follow === undefined) {
      follow = { streamId, logKey: this.#ctx.keys.log(streamId), group: this.#group(groupOf(this.#ctx, streamId)), producer: undefined, cursor: undefined, ended: undefined, readers: new Set(), readAt: performance.now() }
      this.#follows.set(streamId, follow)
      follow.group.follows.add(follow)
    }
    const reader: Reader = { listener, last: Math.max(0, afterId), caught: false, done: false, backlog: [] }
    follow.readers.add(reader)
    void this.#catchUp(follow, reader)
    const joined = follow
    return () => {
      if (reader.done) return
      reader.done = true
      this.#leave(joined, reader)
    }
  }

  /** A notification: the journals named got entries or ended. */
  notified (channel: string, message: string): void {
    const group = this.#byChannel.get(channel)
    if (group === undefined) return
    for (const streamId of message.split(' ')) {
      const follow = this.#follows.get(streamId)
      if (follow !== undefined && follow.group === group && follow.cursor !== undefined && follow.ended === undefined) group.dirty.add(follow)
    }
    this.#read(group)
  }

  /**
   * Once a tick: ends the generations whose producer died, reads the journals no notification
   * named for `pollMs`, and ends the readers of a generation Redis no longer has.
   */
  async tick (): Promise<void> {
    const now = performance.now()
    const dead = this.#options.instances.dead
    const lost = new Map<Group, Follow[]>()
    const quiet = new Map<Group, Follow[]>()
    for (const follow of this.#follows.values()) {
      if (follow.cursor === undefined || follow.ended !== undefined || follow.readers.size === 0) continue
      if (follow.producer !== undefined && dead.has(follow.producer)) add(lost, follow.group, follow)
      else if (now - follow.readAt > this.#options.pollMs) add(quiet, follow.group, follow)
    }
    const { keys, retainMs } = this.#ctx
    await Promise.all([...lost].map(async ([group, follows]) => {
      const pipeline = pipelineOf(this.#ctx.cmd)
      for (const f of follows) pipeline.relayEnd(keys.meta(f.streamId), f.logKey, retainMs, 'producer_lost', 1)
      pipeline.spublish(group.channel, follows.map((f) => f.streamId).join(' '))
      const replies = await run(pipeline)
      replies.slice(0, follows.length).forEach(([err, reply], i) => {
        const follow = follows[i] as Follow
        if (err !== null) {
          this.#ctx.health.failed(err, 'producer lost')
          return
        }
        if (reply === 'producer_lost') this.#ctx.log('warn', 'producer lost: its instance\'s lease lapsed before it ended the journal', { streamId: follow.streamId, producer: follow.producer })
        // Expired while followed (the producer died longer ago than the retention): end rather than wait forever.
        if (reply === 'gone') this.#deliver(follow, [], 'producer_lost')
        // Otherwise the end marker is in the stream: the read brings it, after the entries before it.
        group.dirty.add(follow)
      })
      this.#read(group)
    }))
    await Promise.all([...quiet].map(async ([group, follows]) => {
      // A generation's journal gone from Redis (expired) would never be notified again.
      const generations = follows.filter((f) => f.producer !== undefined)
      if (generations.length > 0) {
        const check = pipelineOf(this.#ctx.cmd)
        for (const f of generations) check.exists(keys.meta(f.streamId))
        const replies = await run(check)
        replies.forEach(([err, exists], i) => { if (err === null && exists === 0) this.#deliver(generations[i] as Follow, [], 'producer_lost') })
      }
      for (const follow of follows) if (follow.ended === undefined) group.dirty.add(follow)
      this.#read(group)
    }))
  }

  /** Stops reading. Readers are left as they are (the instance is going away). */
  close (): void {
    this.#closed = true
    for (const group of this.#groups.values()) clearTimeout(group.timer)
  }

  #group (id: number): Group {
    let group = this.#groups.get(id)
    if (group === undefined) {
      const channel = this.#ctx.keys.notify(id)
      const created: Group = { id, channel, follows: new Set(), dirty: new Set(), subscribed: Promise.resolve(), inFlight: false, failures: 0, retryAt: 0, timer: undefined }
      // At every (re)subscription, read the whole group: notifications sent meanwhile were missed.
      created.subscribed = this.#options.subscriptions.add(channel, () => {
        for (const follow of created.follows) if (follow.cursor !== undefined && follow.ended === undefined) created.dirty.add(follow)
        this.#read(created)
      })
      group = created
      this.#groups.set(id, group)
      this.#byChannel.set(channel, group)
    }
    return group
  }

  /** Reads the group's dirty follows (one XREAD per up to KEYS_PER_READ of them), unless a read is in flight (it reads again after). */
  #read (group: Group): void {
    if (group.inFlight || group.timer !== undefined || group.dirty.size === 0 || this.#closed) return
    const wait = group.retryAt - performance.now()
    if (wait > 0) {
      group.timer = setTimeout(() => {
        group.timer = undefined
        this.#read(group)
      }, wait)
      return
    }
    const follows = [...group.dirty].filter((f) => f.cursor !== undefined && f.ended === undefined && this.#follows.get(f.streamId) === f)
    group.dirty.clear()
    if (follows.length === 0) return
    group.inFlight = true
    const pipeline = pipelineOf(this.#ctx.cmd)
    for (let start = 0; start < follows.length; start += KEYS_PER_READ) {
      const chunk = follows.slice(start, start + KEYS_PER_READ)
      pipeline.xread('COUNT', ENTRIES_PER_READ, 'STREAMS', ...chunk.map((f) => f.logKey), ...chunk.map((f) => f.cursor as string))
    }
    const readAt = performance.now()
    run(pipeline).then((replies) => {
      // A reply of a shape no XREAD answers must not throw out of here (an unhandled rejection
      // ends the process): what was not delivered is read again, as after a failed read.
      try {
        this.#dispatch(group, follows, replies, readAt)
      } catch (err) {
        this.#readFailed(group, follows, err)
      }
    }, (err: unknown) => this.#readFailed(group, follows, err)).finally(() => {
      group.inFlight = false
      this.#read(group)
    })
  }

  #dispatch (group: Group, follows: Follow[], replies: Replies, readAt: number): void {
    const byKey = new Map(follows.map((f) => [f.logKey, f]))
    let failed: Error | undefined
    for (const [index, [err, reply]] of replies.entries()) {
      // (An XREAD answers an array, or null when nothing is new. Anything else was seen once in a
      // Cluster failover: a reply meant for another command. Read again, like a failed read.)
      if (err !== null || (reply !== null && !Array.isArray(reply))) {
        failed = err ?? new Error(`Unexpected reply to XREAD: ${String(JSON.stringify(reply)).slice(0, 80)}`)
        // This chunk's follows are read again after a backoff.
        for (const f of follows.slice(index * KEYS_PER_READ, (index + 1) * KEYS_PER_READ)) group.dirty.add(f)
        continue
      }
      for (const f of follows.slice(index * KEYS_PER_READ, (index + 1) * KEYS_PER_READ)) f.readAt = readAt
      for (const [logKey, items] of (reply ?? []) as Array<[string, StreamItem[]]>) {
        const follow = byKey.get(logKey)
        if (follow === undefined || follow.ended !== undefined) continue
        // The follow may have been dropped and made anew while this read was in flight.
        const cursor = follow.cursor as string
        const fresh = items.filter((item) => compareStreamIds(item[0], cursor) > 0)
        const newest = fresh[fresh.length - 1]
        if (newest === undefined) continue
        follow.cursor = newest[0]
        // A full read may have left more behind.
        if (items.length >= ENTRIES_PER_READ) group.dirty.add(follow)
        const { entries, end } = decodeItems(fresh, 0)
        this.#deliver(follow, entries, end)
      }
    }
    if (failed === undefined) {
      group.failures = 0
      return
    }
    this.#readFailed(group, [], failed)
  }

  /** A read failed: its follows are read again after a backoff; after MAX_ERRORS errors (not outages) in a row, their readers are ended. */
  #readFailed (group: Group, follows: Follow[], err: unknown): void {
    for (const follow of follows) group.dirty.add(follow)
    group.failures++
    group.retryAt = performance.now() + backoffMs(group.failures)
    const code = this.#ctx.health.failed(err, 'journal read')
    if (code === undefined || group.failures < MAX_ERRORS) return
    for (const follow of [...group.dirty]) this.#deliver(follow, [], 'store_error')
    group.dirty.clear()
  }

  /** Hands a live batch (framed once) to every reader of a journal, and the end if it came. */
  #deliver (follow: Follow, entries: readonly JournalEntry[], end: EndReason | undefined): void {
    if (end !== undefined) follow.ended = end
    for (const reader of [...follow.readers]) {
      if (reader.done) continue
      if (!reader.caught) {
        if (entries.length > 0) reader.backlog.push(entries)
        if (end !== undefined) reader.backlog.push(end)
        continue
      }
      this.#give(follow, reader, entries)
      if (end !== undefined && !reader.done) this.#finish(follow, reader, end)
    }
  }

  async #catchUp (follow: Follow, reader: Reader): Promise<void> {
    const { keys } = this.#ctx
    const afterId = reader.last
    let items: StreamItem[]
    let top: string | undefined
    let errors = 0
    await follow.group.subscribed
    for (let attempt = 1; ; attempt++) {
      if (reader.done || this.#closed) return
      try {
        // One snapshot: the entries after `afterId`, the stream's top (a new follow's cursor), the producer.
        const results = await this.#ctx.cmd.multi()
          .xrange(follow.logKey, `(${afterId}-0`, '+')
          .xrevrange(follow.logKey, '+', '-', 'COUNT', 1)
          .hget(keys.meta(follow.streamId), 'producer')
          .exec()
        if (results === null) throw new Error('catch-up transaction aborted')
        for (const [err] of results) if (err !== null) throw err
        items = results[0]?.[1] as StreamItem[]
        top = (results[1]?.[1] as StreamItem[])[0]?.[0]
        follow.producer ??= (results[2]?.[1] as string | null) ?? undefined
        break
      } catch (err) {
        // Redis unreachable: a reader just waits, and catches up once Redis is back.
        if (this.#ctx.health.failed(err, 'journal catch-up') !== undefined && ++errors >= MAX_ERRORS) {
          this.#finish(follow, reader, 'store_error')
          return
        }
        await sleep(backoffMs(attempt))
      }
    }
    if (reader.done) return
    if (follow.cursor === undefined && follow.ended === undefined) {
      follow.cursor = top ?? '0-0'
      // Anything notified between the snapshot and now was not read: read from the cursor once.
      follow.group.dirty.add(follow)
      this.#read(follow.group)
    }
    const { entries, end } = decodeItems(items, afterId)
    reader.caught = true
    this.#give(follow, reader, entries)
    if (end !== undefined) {
      if (!reader.done) this.#finish(follow, reader, end)
      return
    }
    const backlog = reader.backlog
    reader.backlog = []
    for (const item of backlog) {
      if (reader.done) return
      if (typeof item === 'string') this.#finish(follow, reader, item)
      else this.#give(follow, reader, item)
    }
  }

  /** Delivers the entries the reader does not have yet. */
  #give (follow: Follow, reader: Reader, entries: readonly JournalEntry[]): void {
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
      this.#ctx.log('error', 'a journal reader failed: dropped', { err })
      this.#finish(follow, reader, 'error')
    }
  }

  #finish (follow: Follow, reader: Reader, reason: EndReason): void {
    reader.done = true
    this.#leave(follow, reader)
    try {
      reader.listener.onEnd(reason)
    } catch (err) {
      this.#ctx.log('error', 'a journal reader failed', { err })
    }
  }

  #leave (follow: Follow, reader: Reader): void {
    follow.readers.delete(reader)
    if (follow.readers.size > 0 || this.#follows.get(follow.streamId) !== follow) return
    this.#follows.delete(follow.streamId)
    const { group } = follow
    group.follows.delete(follow)
    group.dirty.delete(follow)
    if (group.follows.size > 0) return
    clearTimeout(group.timer)
    this.#groups.delete(group.id)
    this.#byChannel.delete(group.channel)
    this.#options.subscriptions.remove(group.channel)
  }
}

function add<K, V> (map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list === undefined) map.set(key, [value])
  else list.push(value)
}
