import { randomBytes } from 'node:crypto'
import type { Redis, RedisOptions } from 'ioredis'
import { RelayError, StoreFullError } from '../errors.js'
import type { EndReason, JournalEntry, JournalListener, JournalMeta, Unsubscribe } from '../journal.js'
import type { ChannelEventInput, ChannelRetention, ControlMessage, JournalState, RelayStore, StoreLog } from '../store.js'
import { MemoryStore } from './memory.js'
import type { MemoryStoreOptions } from './memory.js'
import { RedisChannels } from './redis/channels.js'
import { endReasonOf, journalIdOf } from './redis/codec.js'
import type { StreamItem } from './redis/codec.js'
import { openTopology } from './redis/connection.js'
import type { RedisConnection } from './redis/connection.js'
import { noop, run } from './redis/context.js'
import type { RedisContext } from './redis/context.js'
import { Control } from './redis/control.js'
import { Conversations } from './redis/conversations.js'
import { Follower } from './redis/follower.js'
import { Health } from './redis/health.js'
import { Instances } from './redis/instances.js'
import { RedisKeys } from './redis/keys.js'
import { defineScripts, pipelineOf } from './redis/scripts.js'
import { SlotCounts } from './redis/slots.js'
import { NO_SHARDED_PUBSUB, Subscriptions } from './redis/subscriptions.js'
import { JournalWriter } from './redis/writer.js'

export type { RedisConnection, RedisNodeAddress } from './redis/connection.js'

/** How the Redis store behaves, whatever its topology. */
export interface RedisStoreTuning {
  /** Prefix of every key and channel (no `{` or `}`). @default 'relay:' */
  prefix?: string
  /**
   * How many partitions keys are spread over (see `redis/keys.ts`): the most Cluster shards that
   * share the load. Every instance of a deployment must use the same number. @default 64
   */
  partitions?: number
  /** How long an ended journal stays readable, in ms (`RETAIN_MS`). @default 300000 */
  retainMs?: number
  /** An instance's lease: readers elsewhere learn of its death, and its slots are freed, within about this. @default 3000 */
  leaseMs?: number
  /** How often the lease, the holds of remote readers and the instances' view are renewed. @default 1000 */
  renewMs?: number
  /** A followed journal no notification named for this long is read anyway (a notification lost in a failover). @default 5000 */
  pollMs?: number
  /** A command not answered within this fails (so a hung Redis fails fast, not a request). @default 1000 */
  commandTimeoutMs?: number
  /**
   * Flushes to Redis start at most once per this many ms (the first after a quiet spell goes out on
   * the next event-loop turn). Tokens of many streams arrive in separate turns, so a flush per turn
   * is a round trip per token; a window gathers them into one pipeline. Only readers on other
   * instances wait for it (local readers are served from memory). @default 10
   */
  flushMs?: number
  /**
   * How long after Redis took a journal's end the journal is still checked after a failover, and
   * written again (tail and end) where the new master lacks it: the master's last writes may not
   * have reached the replica promoted in its place, and a failover is noticed only once it is
   * detected and done (Sentinel's `down-after-milliseconds`, a Cluster's node timeout, then the
   * election). Costs no memory (the entries are kept for `retainMs` anyway), only checks after a
   * reconnect. At most `retainMs`. @default 60000
   */
  settleMs?: number
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
  /** Safety-net expiry of a client's slot counts (renewed by every write). @default 900000 */
  slotTtlMs?: number
  /** Safety-net expiry of a conversation's active-generation entry. @default 86400000 */
  activeTtlMs?: number
  /** The memory journal of the generations produced here (caps). */
  memory?: Omit<MemoryStoreOptions, 'retainMs'>
  /** This instance's id in Redis (its lease, the producer its journals name). @default random */
  instanceId?: string
  /** Extra ioredis options (TLS, …) for every connection to a data node. */
  redis?: RedisOptions
  log?: StoreLog
  /**
   * Called on every Redis error that is not an outage, with its code (`NOPERM`, `OOM`,
   * `WRONGTYPE`, `MOVED`…): the relay counts them (`relay_store_errors_total{code}`). Each code
   * is also logged once while it lasts, and the store is not ready meanwhile.
   */
  onError?: (code: string) => void
}

/** Options of {@link RedisStore}: where Redis is (a URL, Cluster seed nodes, or Sentinels and a master's name), and how the store behaves. */
export type RedisStoreOptions = RedisConnection & RedisStoreTuning

/** The store could not reach Redis: the relay answers 503 and the client may retry (elsewhere). */
export class StoreUnavailable extends RelayError {
  constructor (cause: unknown) {
    super('store_unavailable', 503, 'the relay\'s store (Redis) is unavailable; retry shortly', 1)
    this.cause = cause
  }
}

/**
 * The Redis store: the same guarantees as {@link MemoryStore}, across instances, on a single
 * Redis, a Redis Cluster or a Sentinel-managed master (or Valkey). Its parts, each in `redis/`:
 *
 * - {@link JournalWriter}: journals produced here live in a wrapped MemoryStore (local readers are
 *   served from memory, synchronously, and keep streaming while Redis is down) and are written to
 *   Redis in batches, per group, and written again from memory where Redis lost them;
 * - {@link Follower}: journals produced elsewhere, and channels, read for local readers on
 *   notifications, at a cost per event rather than per followed stream;
 * - {@link Instances}: one lease per instance; {@link SlotCounts}: per-client limits counted per
 *   instance; {@link Control}: cancel, supersede and holds sent to the producing instance only;
 *   {@link Conversations}; {@link RedisChannels};
 * - {@link Subscriptions}: sharded pub/sub on the nodes that serve it; {@link Health}: readiness
 *   told truly, errors logged once and counted.
 *
 * Keys are spread over partitions whose hash tags spread evenly over a Cluster's slots; every
 * multi-key command, script, transaction and pipeline stays within one partition (or one node).
 */
export class RedisStore implements RelayStore {
  readonly instanceId: string
  readonly #ctx: RedisContext
  readonly #memory: MemoryStore
  readonly #writer: JournalWriter
  readonly #follower: Follower
  readonly #subscriptions: Subscriptions
  readonly #instances: Instances
  readonly #slots: SlotCounts
  readonly #control: Control
  readonly #conversations: Conversations
  readonly #channels: RedisChannels
  readonly #ticker: NodeJS.Timeout
  #ticking = false
  #closed = false
  /** The server was found fit for this configuration (see {@link #checkServer}). */
  #serverChecked = false

  constructor (options: RedisStoreOptions) {
    this.instanceId = options.instanceId ?? randomBytes(8).toString('hex')
    const log = options.log ?? noop
    const retainMs = options.retainMs ?? 300_000
    const leaseMs = options.leaseMs ?? 3000
    const renewMs = options.renewMs ?? 1000
    const commandTimeoutMs = options.commandTimeoutMs ?? 1000
    const slotTtlMs = options.slotTtlMs ?? 900_000
    const topology = openTopology(options, { name: `relay-${this.instanceId}`, commandTimeoutMs, extra: options.redis })
    const ctx: RedisContext = {
      topology,
      cmd: defineScripts(topology.cmd),
      keys: new RedisKeys(options.prefix ?? 'relay:', options.partitions ?? 64),
      instanceId: this.instanceId,
      health: new Health({
        log,
        onError: options.onError ?? noop,
        holdMs: renewMs + commandTimeoutMs,
        stallMs: commandTimeoutMs / 2,
        abandonMs: 2 * commandTimeoutMs,
        onUnanswered: (connection) => { this.#unanswered(connection) }
      }),
      log,
      retainMs,
      leaseMs
    }
    this.#ctx = ctx
    this.#memory = new MemoryStore({ ...options.memory, retainMs, log })
    this.#subscriptions = new Subscriptions(ctx, (channel, message) => {
      if (!this.#control.received(channel, message)) this.#follower.notified(channel, message)
    }, commandTimeoutMs)
    // A dead instance is remembered as long as anything it left may name it (slot counts, journals).
    this.#instances = new Instances(ctx, Math.max(slotTtlMs, retainMs) + leaseMs + 2 * renewMs)
    this.#follower = new Follower(ctx, { subscriptions: this.#subscriptions, instances: this.#instances, pollMs: options.pollMs ?? 5000 })
    this.#control = new Control(ctx, this.#subscriptions, this.#follower, this.#instances)
    this.#writer = new JournalWriter(ctx, {
      memory: this.#memory,
      flushMs: options.flushMs ?? 10,
      maxStreamLength: options.maxStreamLength ?? 100_000,
      maxPendingBytes: options.maxPendingBytes ?? 64 * 1024 * 1024,
      onStop: (streamId, action) => this.#control.stop(streamId, action),
      settleMs: Math.min(options.settleMs ?? 60_000, retainMs)
    })
    this.#slots = new SlotCounts(ctx, this.#instances, slotTtlMs)
    this.#conversations = new Conversations(ctx, options.activeTtlMs ?? 86_400_000)
    this.#channels = new RedisChannels(ctx, this.#follower)

    const { cmd } = ctx
    // Without a listener ioredis would print every reconnect error; the health record logs one line per outage.
    cmd.on('error', (err: Error) => {
      this.#instances.unsure()
      ctx.health.failed(err, 'connection')
    })
    cmd.on('close', () => { this.#instances.unsure() })
    // Back from an outage (or on a new master, or a node of a Cluster came or went): Redis may
    // have lost writes. What it holds is checked against memory before anything more is written.
    let connected = false
    cmd.on('ready', () => {
      if (connected) this.#reconcile()
      connected = true
      if (this.#serverChecked) void this.#tick()
      else void this.#checkServer('url' in options).then(async () => { await this.#tick() })
    })
    if (topology.cluster) {
      for (const event of ['+node', '-node', 'node error']) cmd.on(event, () => { if (connected) this.#reconcile() })
    }
    this.#control.start(() => this.#writer.verifyAll())
    this.#ticker = setInterval(() => { void this.#tick() }, renewMs)
    this.#ticker.unref()
  }

  /** True while Redis answers, every connection is up, and nothing failed lately (see `redis/health.ts`). */
  get ready (): boolean {
    return this.notReady === undefined
  }

  /** Why the store is not {@link ready}, in words, or `undefined` when it is. */
  get notReady (): string | undefined {
    if (this.#closed) return 'the store is closed'
    if (!this.#serverChecked) return 'the Redis server is not checked yet (connecting)'
    const unsubscribed = this.#subscriptions.unsubscribed
    if (unsubscribed !== undefined) return unsubscribed
    const subscribers = this.#subscriptions.connections
    return this.#ctx.health.problem([this.#ctx.topology.cmd, ...subscribers], [...this.#ctx.topology.masters(), ...subscribers])
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
    return this.#memory.bytes
  }

  /** Journals held in this instance's memory: the ones produced here (for metrics). */
  get size (): number {
    return this.#memory.size
  }

  /** Entries waiting to be written to Redis, all journals (for metrics and tests). */
  get pendingEntries (): number {
    return this.#writer.pendingEntries
  }

  /** Characters of entry data waiting to be written to Redis (for tests). */
  get pendingBytes (): number {
    return this.#writer.pendingBytes
  }

  /** Journals followed from Redis here (for metrics and tests). */
  get followed (): number {
    return this.#follower.size
  }

  /** The key names (for tests and tools that look at Redis). */
  get keys (): RedisKeys {
    return this.#ctx.keys
  }

  async create (key: string, meta: JournalMeta): Promise<void> {
    if (this.#memory.has(key)) throw new Error(`journal ${key} exists`)
    await this.#command('create', async () => { await this.#writer.create(key, meta) })
  }

  async discard (key: string): Promise<void> {
    await this.#command('discard', async () => { await this.#writer.discard(key) })
  }

  async state (key: string): Promise<JournalState | undefined> {
    const local = this.#memory.stateSync(key)
    if (local !== undefined) return local
    const { keys } = this.#ctx
    const replies = await this.#command('state', async () => await run(pipelineOf(this.#ctx.cmd)
      .hgetall(keys.meta(key))
      .xrevrange(keys.log(key), '+', '-', 'COUNT', 1)))
    for (const [err] of replies) if (err !== null) throw this.#unavailable(err, 'state')
    const hash = replies[0]?.[1] as Record<string, string> | undefined
    if (hash?.kind === undefined) return undefined
    const top = (replies[1]?.[1] as StreamItem[] | undefined)?.[0]
    let ended = endReasonOf(hash.ended)
    // No end and a dead producer: the first reader that follows it writes the end. Said here so
    // nobody waits on it or cancels it.
    if (ended === undefined && hash.producer !== undefined && this.#instances.dead.has(hash.producer)) ended = 'producer_lost'
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
    return this.#writer.append(key, entries)
  }

  end (key: string, reason: EndReason): void {
    if (this.#writer.end(key, reason)) {
      this.#control.ended(key)
      return
    }
    // A channel (or any journal not produced here): ended in Redis, readers get it from the stream.
    this.#channels.end(key, reason).catch((err: unknown) => {
      this.#ctx.health.failed(err, 'end')
      this.#ctx.log('warn', 'could not end a journal in Redis', { streamId: key, err })
    })
  }

  async publish (channel: string, events: readonly ChannelEventInput[], retention: ChannelRetention): Promise<number[]> {
    return await this.#command('publish', async () => await this.#channels.publish(channel, events, retention))
  }

  async openChannel (channel: string, retention: ChannelRetention): Promise<void> {
    await this.#command('open channel', async () => { await this.#channels.openChannel(channel, retention) })
  }

  subscribe (key: string, afterId: number, listener: JournalListener): Unsubscribe {
    if (this.#memory.has(key)) return this.#memory.subscribe(key, afterId, listener)
    return this.#follower.subscribe(key, afterId, listener)
  }

  holdRemote (key: string): Unsubscribe {
    // A journal produced here has no remote readers to announce (its producer counts local readers).
    if (this.#memory.has(key)) return noop
    return this.#control.hold(key)
  }

  async hasRemoteReaders (key: string): Promise<boolean> {
    return this.#control.hasRemoteReaders(key)
  }

  async swapActive (conversationId: string, streamId: string): Promise<string | undefined> {
    return await this.#command('conversation', async () => await this.#conversations.swapActive(conversationId, streamId))
  }

  async clearActive (conversationId: string, streamId: string): Promise<void> {
    await this.#command('conversation', async () => { await this.#conversations.clearActive(conversationId, streamId) })
  }

  async getActive (conversationId: string): Promise<string | undefined> {
    return await this.#command('conversation', async () => await this.#conversations.getActive(conversationId))
  }

  async acquireSlot (client: string, max: number): Promise<boolean> {
    return await this.#command('slot', async () => await this.#slots.acquire(client, max))
  }

  async releaseSlot (client: string): Promise<void> {
    this.#slots.release(client)
  }

  async publishControl (message: ControlMessage): Promise<void> {
    await this.#command('control', async () => { await this.#control.publish(message) })
  }

  onControl (listener: (message: ControlMessage) => void): void {
    this.#control.onControl(listener)
  }

  /** Writes what is queued (best effort, bounded by the command timeout), ends this instance's lease, then closes everything. */
  async close (): Promise<void> {
    if (this.#closed) return
    clearInterval(this.#ticker)
    await this.#writer.close()
    this.#closed = true
    this.#ctx.health.close()
    this.#follower.close()
    await this.#instances.leave().catch(noop)
    this.#subscriptions.close()
    const { cmd } = this.#ctx
    if (cmd.status === 'ready') await cmd.quit().catch(() => cmd.disconnect())
    else cmd.disconnect()
    await this.#memory.close()
  }

  /**
   * Once connected: is the server one this configuration can use? A Cluster node named by
   * `REDIS_URL` would answer MOVED for most keys, and a Redis older than 7.0 has no sharded
   * pub/sub: both are told once, as one line naming what to change, and the store stays not
   * ready (every start 503) rather than half working.
   */
  async #checkServer (byUrl: boolean): Promise<void> {
    let info: string
    try {
      info = await this.#ctx.cmd.info()
    } catch (err) {
      // Checked again at the next connection.
      this.#ctx.health.failed(err, 'server check')
      return
    }
    this.#serverChecked = true
    const version = /^redis_version:(\d+)\./m.exec(info)?.[1]
    if (version !== undefined && Number(version) < 7) this.#ctx.health.misconfigured(NO_SHARDED_PUBSUB)
    else if (byUrl && /^cluster_enabled:1/m.test(info)) this.#ctx.health.misconfigured('REDIS_URL names a node of a Redis Cluster (cluster_enabled:1): give the cluster\'s nodes as REDIS_CLUSTER_NODES (host:port,…) instead; the store stays not ready')
  }

  /** Runs a command for a request; any failure of Redis becomes {@link StoreUnavailable} (503). */
  async #command<T> (context: string, command: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new StoreUnavailable(new Error('store closed'))
    const misconfigured = this.#ctx.health.misconfiguration
    if (misconfigured !== undefined) throw new StoreUnavailable(new Error(misconfigured))
    try {
      return await command()
    } catch (err) {
      if (err instanceof StoreUnavailable || err instanceof StoreFullError) throw err
      throw this.#unavailable(err, context)
    }
  }

  #unavailable (err: unknown, context: string): StoreUnavailable {
    this.#ctx.health.failed(err, context)
    return new StoreUnavailable(err)
  }

  /**
   * `connection` left a PING unanswered for the health's `abandonMs` while up. A subscriber's is
   * replaced (lib/relay/stores/redis/subscriptions.ts). The command connection of a single Redis
   * (or of Sentinel's master) is reconnected: a connection the network dropped without a word
   * (a NAT or firewall that forgot it, a half-open TCP connection) looks up to ioredis until the
   * kernel gives up on it, which can take minutes, and every command meanwhile times out; a new
   * one answers at once if Redis is there. (Commands in flight fail, as at any break: the writer
   * checks what Redis holds before it writes on.) A Cluster's connections to its nodes are
   * ioredis's own (it reconnects them when a node fails).
   */
  #unanswered (connection: Redis): void {
    if (connection === this.#ctx.topology.cmd) {
      if (connection.status !== 'ready' || this.#closed) return
      this.#ctx.log('warn', 'Redis command connection answered nothing for a while: reconnecting it')
      connection.disconnect(true)
    } else {
      this.#subscriptions.unanswered(connection)
    }
  }

  /** Redis may have lost writes, or taken this instance for dead: check and write again what it lacks. */
  #reconcile (): void {
    this.#writer.verifyAll()
    this.#slots.retry(true)
    this.#channels.reseed().catch((err: unknown) => { this.#ctx.health.failed(err, 'reseed') })
  }

  /**
   * Every `renewMs`: this instance's lease (and its view of the others'), the holds of journals
   * read here, counts and expiries to write again, producers lost, quiet journals. Per instance:
   * one script call, plus one message per producer instance whose journals are read here.
   */
  async #tick (): Promise<void> {
    if (this.#closed || this.#ticking || !this.#serverChecked || this.#ctx.health.misconfiguration !== undefined) return
    if (this.#ctx.cmd.status !== 'ready') {
      // Cut off from Redis: others' leases are not believed until this one's ticks went through for a lease time.
      this.#instances.unsure()
      return
    }
    this.#ticking = true
    try {
      void this.ready // drives the health probe
      if (await this.#instances.renew() === 'lapsed') {
        this.#ctx.log('warn', 'this instance\'s lease had lapsed (others may have taken it for dead): its journals and slot counts are checked and written again')
        this.#reconcile()
      }
      this.#control.tick()
      this.#slots.retry()
      this.#writer.renewExpiries()
      this.#writer.forgetSettled()
      this.#subscriptions.refresh()
      await Promise.all([this.#follower.tick(), this.#channels.renewExpiries()])
    } catch (err) {
      this.#instances.unsure()
      this.#ctx.health.failed(err, 'tick')
    } finally {
      this.#ticking = false
    }
  }
}
