import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { ChainableCommander, RedisOptions } from 'ioredis'
import { RelayError, StoreFullError } from '../errors.js'
import type { EndReason, JournalEntry, JournalListener, JournalMeta, Unsubscribe } from '../journal.js'
import type { ChannelEventInput, ChannelRetention, ControlMessage, JournalState, RelayStore, StoreLog } from '../store.js'
import { MemoryStore } from './memory.js'
import type { MemoryStoreOptions } from './memory.js'
import { batchFields, endReasonOf, isAlreadyWritten, journalIdOf } from './redis/codec.js'
import type { StreamItem } from './redis/codec.js'
import { RemoteFollower } from './redis/follower.js'
import { RedisKeys } from './redis/keys.js'
import { defineScripts } from './redis/scripts.js'
import type { ScriptCommands, ScriptPipeline } from './redis/scripts.js'

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** `redis://…` or `rediss://…` (`REDIS_URL`). */
  url: string
  /** Prefix of every key and of the control channel. @default 'relay:' */
  prefix?: string
  /** How long an ended journal stays readable, in ms (`RETAIN_MS`). @default 300000 */
  retainMs?: number
  /** Lifetime of a producer's lease; readers elsewhere learn of its death within about this. @default 3000 */
  leaseMs?: number
  /** How often leases and remote-reader holds are renewed and followed leases checked. @default 1000 */
  renewMs?: number
  /** XREAD BLOCK timeout of the shared reader (a backstop: it is woken when its set changes). @default 1000 */
  blockMs?: number
  /** A command not answered within this fails (so a hung Redis fails fast, not a request). @default 1000 */
  commandTimeoutMs?: number
  /**
   * Flushes to Redis start at most once per this many ms (the first after a quiet spell goes out on
   * the next event-loop turn). Tokens of many streams arrive in separate turns, so a flush per turn
   * is a round trip per token; a window gathers them into one pipeline. Only readers on other
   * instances wait for it (local readers are served from memory). @default 10
   */
  flushMs?: number
  /** Approximate cap on stream entries (batches) per journal, `XADD MAXLEN ~`. @default 100000 */
  maxStreamLength?: number
  /**
   * Journal data queued for Redis while it is unreachable, all journals together, counted in
   * characters of the entries' data (a fast measure: the bytes for ASCII, a third of them for
   * CJK). Past it the journal being appended stops being written to Redis (its local readers
   * are unaffected) and later ends there as `error`: a reader elsewhere sees a cut answer, never
   * a gap. @default 67108864
   */
  maxPendingBytes?: number
  /** Safety-net expiry of a client's slot counter (an instance that died never gives its slots back). @default 900000 */
  slotTtlMs?: number
  /** Safety-net expiry of a conversation's active-generation entry. @default 86400000 */
  activeTtlMs?: number
  /** The memory journal of the generations produced here (caps). */
  memory?: Omit<MemoryStoreOptions, 'retainMs'>
  /** This instance's id in Redis (leases, reader holds). @default random */
  instanceId?: string
  /** Extra ioredis options for all three connections. */
  redis?: RedisOptions
  log?: StoreLog
}

/** The store could not reach Redis: the relay answers 503 and the client may retry (elsewhere). */
export class StoreUnavailable extends RelayError {
  constructor (cause: unknown) {
    super('store_unavailable', 503, 'the relay\'s store (Redis) is unavailable; retry shortly', 1)
    this.cause = cause
  }
}

/** A journal produced on this instance, as far as Redis knows it. */
interface Produced {
  streamId: string
  /** Entries appended but not yet written to Redis. */
  pending: JournalEntry[]
  pendingBytes: number
  /** Id of the last entry Redis acknowledged. */
  writtenId: number
  /** The end to write after the pending entries. */
  end: EndReason | undefined
  /** The stream key has its expiry (set with the first batch, renewed with the lease). */
  expiring: boolean
  /** Over the pending bound while Redis was away: no more entries go to Redis; it ends there as `error`. */
  cut: boolean
}

/**
 * The Redis store: the same guarantees as {@link MemoryStore}, across instances.
 *
 * Journals produced here live in a wrapped MemoryStore, so their local readers are served from
 * memory synchronously — no Redis round trip on the hot path, and they keep streaming while Redis
 * is down. `append` also queues the entries; on the next event-loop turn, or `flushMs` after the
 * previous flush started if that is later, everything queued, for every journal, goes out as one
 * pipeline with one XADD per journal (a batch per stream entry, see redis/codec.ts). Only one
 * flush is in flight at a time, so a slow round trip makes the next batch bigger instead of
 * reordering writes.
 *
 * Journals produced elsewhere are read by {@link RemoteFollower}: XRANGE catch-up, then one shared
 * XREAD BLOCK loop for all of them.
 *
 * Three connections: commands (offline queue off and a command timeout, so a request fails fast
 * with {@link StoreUnavailable} while Redis is away), the blocking reader, and the control-bus
 * subscriber.
 */
export class RedisStore implements RelayStore {
  readonly instanceId: string
  private readonly memory: MemoryStore
  private readonly keys: RedisKeys
  private readonly cmd: Redis & ScriptCommands
  private readonly blocker: Redis
  private readonly sub: Redis
  private readonly follower: RemoteFollower
  private readonly produced = new Map<string, Produced>()
  private readonly dirty = new Set<Produced>()
  /** Channels opened here, with their expiry, renewed while read here. */
  private readonly channels = new Map<string, number>()
  /** Remote journals read here, with their local reader counts. */
  private readonly holds = new Map<string, number>()
  private readonly controlListeners: Array<(message: ControlMessage) => void> = []
  private readonly retainMs: number
  private readonly leaseMs: number
  private readonly maxStreamLength: number
  private readonly maxPendingBytes: number
  private readonly slotTtlMs: number
  private readonly activeTtlMs: number
  private readonly log: NonNullable<RedisStoreOptions['log']>
  private readonly ticker: NodeJS.Timeout
  private pendingBytes = 0
  private flushScheduled = false
  private readonly flushMs: number
  /** When the last flush started (performance.now()). */
  private lastFlushAt = -Infinity
  private flushing: Promise<void> | undefined
  /** When the command connection last became ready: lost leases are only declared a lease time after. */
  private readySince = 0
  private closed = false
  private recovering = false
  private outageLogged = false

  constructor (options: RedisStoreOptions) {
    this.instanceId = options.instanceId ?? randomBytes(8).toString('hex')
    this.retainMs = options.retainMs ?? 300_000
    this.leaseMs = options.leaseMs ?? 3000
    this.maxStreamLength = options.maxStreamLength ?? 100_000
    this.flushMs = options.flushMs ?? 10
    this.maxPendingBytes = options.maxPendingBytes ?? 64 * 1024 * 1024
    this.slotTtlMs = options.slotTtlMs ?? 900_000
    this.activeTtlMs = options.activeTtlMs ?? 86_400_000
    this.log = options.log ?? noop
    this.keys = new RedisKeys(options.prefix ?? 'relay:')
    this.memory = new MemoryStore({ ...options.memory, retainMs: this.retainMs, log: this.log })

    const base: RedisOptions = {
      // Reconnect quickly and forever: an outage ends when Redis is back, not when we gave up.
      retryStrategy: (times) => Math.min(100 * times, 1000),
      maxRetriesPerRequest: null,
      ...options.redis
    }
    this.cmd = defineScripts(new Redis(options.url, {
      ...base,
      enableOfflineQueue: false,
      commandTimeout: options.commandTimeoutMs ?? 1000,
      connectionName: `relay-${this.instanceId}-cmd`
    }))
    this.blocker = new Redis(options.url, { ...base, connectionName: `relay-${this.instanceId}-read` })
    this.sub = new Redis(options.url, { ...base, connectionName: `relay-${this.instanceId}-sub` })
    for (const connection of [this.cmd, this.blocker, this.sub]) {
      // Without a listener ioredis would print every reconnect error; one line per outage is enough.
      connection.on('error', (err: Error) => this.onConnectionError(err))
      connection.on('ready', () => this.onConnectionReady())
    }
    this.cmd.on('ready', () => { void this.recover() })

    this.sub.on('message', (channel: string, text: string) => this.onControlMessage(channel, text))
    this.sub.subscribe(this.keys.control).catch(noop)

    this.follower = new RemoteFollower({
      cmd: this.cmd,
      blocker: this.blocker,
      keys: this.keys,
      blockMs: options.blockMs ?? 1000,
      retainMs: this.retainMs,
      log: this.log
    })
    this.ticker = setInterval(() => { void this.tick() }, options.renewMs ?? 1000)
    this.ticker.unref()
  }

  /** True while all three connections are up. */
  get ready (): boolean {
    return !this.closed && this.cmd.status === 'ready' && this.blocker.status === 'ready' && this.sub.status === 'ready'
  }

  /** Resolves once {@link ready} (or rejects after `timeoutMs`). */
  async waitUntilReady (timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.ready) {
      if (Date.now() > deadline) throw new StoreUnavailable(new Error(`Redis not ready within ${timeoutMs} ms`))
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** Bytes held by the local journals (for metrics). */
  get bytes (): number {
    return this.memory.bytes
  }

  /** Journals held in this instance's memory: the ones produced here (for metrics). */
  get size (): number {
    return this.memory.size
  }

  /** Entries waiting to be written to Redis, all journals (for metrics and tests). */
  get pendingEntries (): number {
    let n = 0
    for (const journal of this.produced.values()) n += journal.pending.length
    return n
  }

  /** Remote journals being followed here (for metrics and tests). */
  get followed (): number {
    return this.follower.size
  }

  async create (key: string, meta: JournalMeta): Promise<void> {
    if (this.memory.has(key)) throw new Error(`journal ${key} exists`)
    const fields = this.metaFields(meta)
    await this.command(async () => {
      // Meta and lease together: a journal never exists in Redis without its producer's lease.
      await execAll(this.cmd.multi()
        .hset(this.keys.meta(key), fields)
        .pexpire(this.keys.meta(key), this.openTtlMs)
        .set(this.keys.lease(key), this.instanceId, 'PX', this.leaseMs))
    })
    this.memory.createSync(key, meta)
    this.produced.set(key, { streamId: key, pending: [], pendingBytes: 0, writtenId: 0, end: undefined, expiring: false, cut: false })
  }

  async discard (key: string): Promise<void> {
    this.produced.delete(key)
    await this.memory.discard(key)
    await this.command(async () => await this.cmd.del(this.keys.meta(key), this.keys.lease(key)))
  }

  async state (key: string): Promise<JournalState | undefined> {
    const local = this.memory.stateSync(key)
    if (local !== undefined) return local
    const results = await this.command(async () => await this.cmd.pipeline()
      .hgetall(this.keys.meta(key))
      .xrevrange(this.keys.log(key), '+', '-', 'COUNT', 1)
      .exists(this.keys.lease(key))
      .exec())
    const [metaResult, topResult, leaseResult] = results ?? []
    for (const result of [metaResult, topResult, leaseResult]) if (result?.[0] != null) throw new StoreUnavailable(result[0])
    const hash = metaResult?.[1] as Record<string, string> | undefined
    if (hash?.kind === undefined) return undefined
    const top = (topResult?.[1] as StreamItem[] | undefined)?.[0]
    let ended = endReasonOf(hash.ended)
    // No end and no lease: the producer died and no reader has noticed yet (the end is written
    // by the first reader that follows it). Said here so nobody waits on it or cancels it.
    if (ended === undefined && leaseResult?.[1] === 0 && hash.kind !== 'channel') ended = 'producer_lost'
    return {
      meta: {
        kind: hash.kind === 'channel' ? 'channel' : 'generation',
        owner: hash.owner ?? null,
        conversationId: hash.conv,
        createdAt: Number(hash.createdAt)
      },
      lastId: top === undefined ? 0 : journalIdOf(top[0]),
      ended
    }
  }

  append (key: string, entries: readonly JournalEntry[]): boolean {
    if (!this.memory.append(key, entries)) return false
    const journal = this.produced.get(key)
    if (journal === undefined || journal.cut) return true
    let bytes = 0
    for (const entry of entries) {
      journal.pending.push(entry)
      bytes += entry.data.length
    }
    journal.pendingBytes += bytes
    this.pendingBytes += bytes
    if (this.pendingBytes > this.maxPendingBytes) this.cut(journal)
    this.dirty.add(journal)
    this.scheduleFlush()
    return true
  }

  end (key: string, reason: EndReason): void {
    const journal = this.produced.get(key)
    if (journal === undefined && !this.memory.has(key)) {
      // A channel (or any journal not produced here): ended in Redis, readers get it from the stream.
      this.command(async () => await this.cmd.relayEnd(this.keys.meta(key), this.keys.log(key), this.keys.lease(key), this.retainMs, reason, 0))
        .catch((err: unknown) => this.log('warn', 'could not end a journal in Redis', { streamId: key, err }))
      return
    }
    this.memory.end(key, reason)
    if (journal === undefined || journal.end !== undefined) return
    journal.end = reason
    this.dirty.add(journal)
    this.scheduleFlush()
  }

  /**
   * Channels live in Redis only (any instance may publish; ids come from Redis, atomically), and
   * every reader, local or not, follows them through the shared reader.
   */
  async publish (channel: string, events: readonly ChannelEventInput[], retention: ChannelRetention): Promise<number[]> {
    const ids: number[] = []
    // Lua's unpack has a stack limit: large arrays go in slices (ids stay consecutive per slice).
    for (let start = 0; start < events.length; start += 1000) {
      const args: Array<string | number> = [retention.maxEvents, retention.maxAgeMs, this.channelTtlMs(retention)]
      for (const event of events.slice(start, start + 1000)) args.push(event.event ?? '', event.data)
      const [first, last] = await this.command(async () => await this.cmd.relayPublish(this.keys.meta(channel), this.keys.log(channel), ...args))
        .catch((err: unknown) => {
          const cause = (err as StoreUnavailable).cause
          if (cause instanceof Error && cause.message.startsWith('CLOSED')) throw new StoreFullError(`channel ${channel} is closed`)
          throw err
        })
      for (let id = first; id <= last; id++) ids.push(id)
    }
    return ids
  }

  async openChannel (channel: string, retention: ChannelRetention): Promise<void> {
    const meta = this.keys.meta(channel)
    const ttl = this.channelTtlMs(retention)
    // A failed command rejects (Redis away: store_unavailable), so a reader is refused with a
    // real status before its stream opens, instead of a stream waiting on a store that is not there.
    await this.command(async () => await execAll(this.cmd.pipeline()
      .hsetnx(meta, 'kind', 'channel')
      .hsetnx(meta, 'createdAt', Date.now())
      .pexpire(meta, ttl)
      .pexpire(this.keys.log(channel), ttl)))
    // Kept alive while read here, so its id counter never restarts under a waiting reader.
    this.channels.set(channel, ttl)
  }

  subscribe (key: string, afterId: number, listener: JournalListener): Unsubscribe {
    if (this.memory.has(key)) return this.memory.subscribe(key, afterId, listener)
    return this.follower.subscribe(key, afterId, listener)
  }

  holdRemote (key: string): Unsubscribe {
    // A journal produced here has no remote readers to announce (its producer counts local readers).
    if (this.memory.has(key)) return noop
    const count = this.holds.get(key) ?? 0
    this.holds.set(key, count + 1)
    if (count === 0) this.announce(key)
    let held = true
    return () => {
      if (!held) return
      held = false
      const left = (this.holds.get(key) ?? 1) - 1
      if (left > 0) {
        this.holds.set(key, left)
        return
      }
      this.holds.delete(key)
      if (this.cmd.status === 'ready') this.cmd.zrem(this.keys.readers(key), this.instanceId).catch(noop)
    }
  }

  async hasRemoteReaders (key: string): Promise<boolean> {
    return await this.command(async () => await this.cmd.relayCountReaders(this.keys.readers(key))) > 0
  }

  async swapActive (conversationId: string, streamId: string): Promise<string | undefined> {
    const previous = await this.command(async () => await this.cmd.set(this.keys.active(conversationId), streamId, 'PX', this.activeTtlMs, 'GET'))
    return previous ?? undefined
  }

  async clearActive (conversationId: string, streamId: string): Promise<void> {
    await this.command(async () => await this.cmd.relayClearActive(this.keys.active(conversationId), streamId))
  }

  async getActive (conversationId: string): Promise<string | undefined> {
    return await this.command(async () => await this.cmd.get(this.keys.active(conversationId))) ?? undefined
  }

  async acquireSlot (client: string, max: number): Promise<boolean> {
    return await this.command(async () => await this.cmd.relayAcquireSlot(this.keys.slots(client), max, this.slotTtlMs)) === 1
  }

  async releaseSlot (client: string): Promise<void> {
    await this.command(async () => await this.cmd.relayReleaseSlot(this.keys.slots(client)))
  }

  async publishControl (message: ControlMessage): Promise<void> {
    await this.command(async () => await this.cmd.publish(this.keys.control, JSON.stringify(message)))
  }

  onControl (listener: (message: ControlMessage) => void): void {
    this.controlListeners.push(listener)
  }

  /** Writes what is queued (best effort, bounded by the command timeout), then closes everything. */
  async close (): Promise<void> {
    if (this.closed) return
    clearInterval(this.ticker)
    try {
      await this.flushing
      if (this.dirty.size > 0 && this.cmd.status === 'ready') await this.flush()
    } catch {
      // Redis unreachable at shutdown: what was not written is lost to other instances only.
    }
    this.closed = true
    await this.follower.close()
    await Promise.all([this.cmd, this.blocker, this.sub].map(async (connection) => {
      if (connection.status === 'ready') await connection.quit().catch(() => connection.disconnect())
      else connection.disconnect()
    }))
    await this.memory.close()
  }

  /** A channel nobody publishes to or reads is forgotten after its age limit (as in memory). */
  private channelTtlMs (retention: ChannelRetention): number {
    return Math.max(retention.maxAgeMs, 1000)
  }

  /** Expiry of an unfinished journal's keys, renewed with the lease: a dead producer's journal still expires. */
  private get openTtlMs (): number {
    return this.retainMs + this.leaseMs
  }

  /** Runs a command for a request; any failure of Redis becomes {@link StoreUnavailable} (503). */
  private async command<T> (run: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailable(new Error('store closed'))
    try {
      return await run()
    } catch (err) {
      throw err instanceof StoreUnavailable ? err : new StoreUnavailable(err)
    }
  }

  private metaFields (meta: JournalMeta): Record<string, string> {
    const fields: Record<string, string> = { kind: meta.kind, createdAt: String(meta.createdAt), producer: this.instanceId }
    if (meta.owner !== null) fields.owner = meta.owner
    if (meta.conversationId !== undefined) fields.conv = meta.conversationId
    return fields
  }

  /**
   * The command connection is (again) ready. A Redis that restarted empty (no persistence) lost
   * the journals being produced here: they are written again from memory, under the same ids,
   * so remote readers following them by stream id continue exactly where they were. Flushes
   * wait meanwhile, or a batch written first would make the rewrite look already done.
   */
  private async recover (): Promise<void> {
    this.readySince = Date.now()
    this.recovering = true
    try {
      const journals = [...this.produced.values()]
      if (journals.length > 0) {
        const check = this.cmd.pipeline()
        for (const journal of journals) check.exists(this.keys.meta(journal.streamId))
        const exists = await check.exec()
        const lost = journals.filter((_, i) => exists?.[i]?.[1] === 0)
        const rewrite = this.cmd.pipeline()
        for (const journal of lost) {
          const { streamId } = journal
          const state = this.memory.stateSync(streamId)
          if (state === undefined) continue
          rewrite.del(this.keys.log(streamId))
            .hset(this.keys.meta(streamId), this.metaFields(state.meta))
            .pexpire(this.keys.meta(streamId), this.openTtlMs)
            .set(this.keys.lease(streamId), this.instanceId, 'PX', this.leaseMs)
          const all: JournalEntry[] = []
          this.memory.subscribe(streamId, 0, { onEntries: (entries) => { for (const e of entries) all.push(e) }, onEnd: noop })()
          this.pendingBytes -= journal.pendingBytes
          journal.pending = all
          journal.pendingBytes = all.reduce((n, e) => n + e.data.length, 0)
          this.pendingBytes += journal.pendingBytes
          journal.writtenId = 0
          journal.expiring = false
          journal.cut = false
          this.dirty.add(journal)
        }
        if (lost.length > 0) {
          await rewrite.exec()
          this.log('warn', 'Redis lost journals produced here (restarted empty?): written again from memory', { journals: lost.length })
        }
      }
      await this.reseedChannels()
    } catch {
      // Gone again: the next 'ready' recovers.
    } finally {
      this.recovering = false
    }
    // Renew the leases at once (they may have lapsed during the outage) and write what waited.
    void this.tick()
    this.scheduleFlush()
  }

  /**
   * Channels live in Redis only: one that Redis lost (restarted empty) would count its ids from 1
   * again, under readers here whose live read continues after the id they last got — they would
   * skip that many events. Its counter is seeded again with the highest id read here (every
   * instance reading it does the same; the highest wins), so its ids continue. (An event
   * published in the moment between Redis's return and this seeding still takes a low id, which
   * those readers skip; the events of that moment are gone with Redis's data in any case.)
   */
  private async reseedChannels (): Promise<void> {
    const reseed = this.cmd.pipeline() as ReturnType<Redis['pipeline']> & ScriptPipeline
    let channels = 0
    for (const [channel, ttl] of this.channels) {
      const lastId = this.follower.lastReadId(channel)
      if (lastId === undefined || lastId === 0) continue
      reseed.relayReseedChannel(this.keys.meta(channel), this.keys.log(channel), lastId, ttl)
      channels++
    }
    if (channels === 0) return
    const results = await reseed.exec()
    const raised = results?.filter(([err, value]) => err === null && value === 1).length ?? 0
    if (raised > 0) this.log('warn', 'Redis lost channels read here (restarted empty?): their ids continue after the last one read', { channels: raised })
  }

  private scheduleFlush (): void {
    if (this.flushScheduled || this.flushing !== undefined || this.dirty.size === 0) return
    this.flushScheduled = true
    const wait = this.lastFlushAt + this.flushMs - performance.now()
    if (wait > 0) setTimeout(this.startFlush, wait)
    else setImmediate(this.startFlush)
  }

  private readonly startFlush = (): void => {
    this.flushScheduled = false
    // Written when the connection is ready again (and recovered).
    if (this.closed || this.cmd.status !== 'ready' || this.recovering) return
    this.lastFlushAt = performance.now()
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined
      this.scheduleFlush()
    })
  }

  /** One pipeline for everything queued: one XADD per journal, and the end of those that ended. */
  private async flush (): Promise<void> {
    const journals = [...this.dirty]
    this.dirty.clear()
    const pipeline = this.cmd.pipeline()
    /** Per journal: the entries sent, and the index range of its commands in the pipeline. */
    const sent: Array<{ journal: Produced, entries: JournalEntry[], ending: boolean, first: number, count: number }> = []
    let index = 0
    for (const journal of journals) {
      const { streamId } = journal
      const log = this.keys.log(streamId)
      const entries = journal.pending
      journal.pending = []
      this.pendingBytes -= journal.pendingBytes
      journal.pendingBytes = 0
      const first = index
      const last = entries[entries.length - 1]
      if (last !== undefined) {
        pipeline.xadd(log, 'MAXLEN', '~', this.maxStreamLength, `${last.id}-0`, ...batchFields(entries))
        index++
      }
      const ending = journal.end !== undefined
      if (ending) {
        const lastId = last?.id ?? journal.writtenId
        // A journal cut from Redis ends there as an error: its remote readers must not take a
        // cut answer for a finished one.
        const reason = journal.cut ? 'error' : journal.end as EndReason
        pipeline.xadd(log, `${lastId}-1`, 'end', reason)
          .hset(this.keys.meta(streamId), 'ended', reason)
          .pexpire(log, this.retainMs)
          .pexpire(this.keys.meta(streamId), this.retainMs)
          .del(this.keys.lease(streamId))
        index += 5
      } else if (!journal.expiring && last !== undefined) {
        pipeline.pexpire(log, this.openTtlMs)
        index++
      }
      sent.push({ journal, entries, ending, first, count: index - first })
    }
    let results: Array<[Error | null, unknown]> | null
    try {
      results = await pipeline.exec()
    } catch (err) {
      results = null
      this.onConnectionError(err as Error)
    }
    for (const { journal, entries, ending, first, count } of sent) {
      let failed = results === null
      for (let i = first; i < first + count && !failed; i++) {
        const err = results?.[i]?.[0]
        // A batch (or end marker) Redis already has: a reply lost to a reconnect, written before.
        if (err != null && !isAlreadyWritten(err)) failed = true
      }
      if (failed) {
        // Back in front of whatever came meanwhile, for the next flush once Redis answers again.
        if (entries.length > 0) journal.pending = entries.concat(journal.pending)
        for (const entry of entries) journal.pendingBytes += entry.data.length
        this.pendingBytes += entries.reduce((n, e) => n + e.data.length, 0)
        this.dirty.add(journal)
        continue
      }
      const last = entries[entries.length - 1]
      if (last !== undefined) {
        journal.writtenId = last.id
        journal.expiring = true
      }
      if (ending) this.produced.delete(journal.streamId)
    }
  }

  /** Stops writing a journal to Redis: it outgrew the queue while Redis was away. */
  private cut (journal: Produced): void {
    this.log('warn', 'Redis unavailable too long: the journal is no longer written to Redis; its readers elsewhere will get an error', { streamId: journal.streamId })
    journal.cut = true
    this.pendingBytes -= journal.pendingBytes
    journal.pending = []
    journal.pendingBytes = 0
  }

  /**
   * Every `renewMs`, one pipeline: the leases (and expiries) of the journals produced here, the
   * holds of the remote journals read here; then the leases of the remote journals followed here.
   */
  private async tick (): Promise<void> {
    if (this.closed || this.cmd.status !== 'ready') return
    const pipeline = this.cmd.pipeline() as ReturnType<Redis['pipeline']> & ScriptPipeline
    let commands = 0
    for (const journal of this.produced.values()) {
      if (journal.end !== undefined) continue
      const { streamId } = journal
      pipeline.set(this.keys.lease(streamId), this.instanceId, 'PX', this.leaseMs)
        .pexpire(this.keys.meta(streamId), this.openTtlMs)
      if (journal.expiring) pipeline.pexpire(this.keys.log(streamId), this.openTtlMs)
      commands++
    }
    for (const streamId of this.holds.keys()) {
      pipeline.relayHoldReaders(this.keys.readers(streamId), this.instanceId, this.leaseMs)
      commands++
    }
    for (const [channel, ttl] of this.channels) {
      if (!this.follower.has(channel)) {
        this.channels.delete(channel)
        continue
      }
      pipeline.pexpire(this.keys.meta(channel), ttl).pexpire(this.keys.log(channel), ttl)
      commands++
    }
    try {
      if (commands > 0) await pipeline.exec()
      // Right after a reconnect the producers may not have renewed their leases yet: wait a lease time.
      if (Date.now() - this.readySince >= this.leaseMs) await this.follower.checkLeases()
    } catch {
      // Redis unreachable: the next tick after it returns renews everything.
    }
  }

  private announce (streamId: string): void {
    if (this.cmd.status !== 'ready') return // the next tick announces it
    this.cmd.relayHoldReaders(this.keys.readers(streamId), this.instanceId, this.leaseMs).catch(noop)
  }

  private onControlMessage (channel: string, text: string): void {
    if (channel !== this.keys.control) return
    let message: ControlMessage
    try {
      const parsed = JSON.parse(text) as Partial<ControlMessage>
      if (typeof parsed.streamId !== 'string' || (parsed.action !== 'cancelled' && parsed.action !== 'superseded')) return
      message = { streamId: parsed.streamId, action: parsed.action }
    } catch {
      return
    }
    for (const listener of this.controlListeners) listener(message)
  }

  private onConnectionError (err: Error): void {
    if (this.outageLogged || this.closed) return
    this.outageLogged = true
    this.log('warn', 'Redis unavailable: new generations are refused until it is back; running ones stream locally', { err: err.message })
  }

  private onConnectionReady (): void {
    if (!this.outageLogged) return
    this.outageLogged = false
    this.log('info', 'Redis available again')
  }
}

function noop (): void {}

/**
 * Runs a pipeline or transaction and rejects with the first command's error: ioredis resolves
 * `exec()` with each command's error in its result (e.g. every one of them when the connection
 * is down), and with `null` for an aborted transaction.
 */
async function execAll (pipeline: ChainableCommander): Promise<void> {
  const results = await pipeline.exec()
  const failed = results?.find(([err]) => err !== null)
  if (results === null || failed !== undefined) throw failed?.[0] ?? new Error('transaction aborted')
}
