import type { Redis } from 'ioredis'
import { noop } from './context.js'
import type { RedisContext } from './context.js'
import { keySlot } from './keys.js'

/** One sharded channel this instance listens to. */
interface Channel {
  name: string
  slot: number
  /** The node it is subscribed on (or waits to be). */
  node: NodeSubscriber | undefined
  subscribed: boolean
  /**
   * The node an SSUBSCRIBE is in flight on, and since when (performance.now()). One sent to a
   * node that has just dropped the channel may never be answered (ioredis took that node's notice
   * for another reply): after `timeoutMs` the connection is replaced.
   */
  subscribing: NodeSubscriber | undefined
  subscribingSince: number
  /** Called at every (re)subscription: anything published while it was not subscribed was missed. */
  onSubscribed: () => void
  waiters: Array<() => void>
}

/** A connection to one node, for the channels that node serves. */
interface NodeSubscriber {
  node: string
  redis: Redis
  channels: Set<Channel>
}

/**
 * Sharded pub/sub (SSUBSCRIBE): each channel is served by the node of its slot only, so a
 * notification goes to that node and to the instances listening there, not to every node of a
 * cluster. One connection per node with channels to listen to (one in all on a single master or
 * under Sentinel, where it follows the master through a failover). On a Cluster, a channel whose
 * slot moved (a failover, a resharding) is moved to the node that serves it now.
 *
 * Pub/sub keeps nothing for a subscriber that is away: `onSubscribed` runs at each
 * (re)subscription so the listener can read what it may have missed.
 */
export class Subscriptions {
  readonly #ctx: RedisContext
  readonly #onMessage: (channel: string, message: string) => void
  readonly #timeoutMs: number
  readonly #channels = new Map<string, Channel>()
  readonly #nodes = new Map<string, NodeSubscriber>()
  #closed = false

  /** `timeoutMs`: how long an SSUBSCRIBE may go unanswered on a connection that is up. */
  constructor (ctx: RedisContext, onMessage: (channel: string, message: string) => void, timeoutMs: number) {
    this.#ctx = ctx
    this.#onMessage = onMessage
    this.#timeoutMs = timeoutMs
    const { cmd, topology } = ctx
    // A Cluster refreshed its map of slots: channels whose slot moved follow it.
    if (topology.cluster) cmd.on('refresh', () => this.refresh())
  }

  /** Listens to a channel; resolves once subscribed (which may wait for Redis to be back). */
  async add (name: string, onSubscribed: () => void): Promise<void> {
    let channel = this.#channels.get(name)
    if (channel === undefined) {
      channel = { name, slot: keySlot(name), node: undefined, subscribed: false, subscribing: undefined, subscribingSince: 0, onSubscribed, waiters: [] }
      this.#channels.set(name, channel)
      this.#route(channel)
    }
    if (channel.subscribed) return
    const waiting = channel
    await new Promise<void>((resolve) => waiting.waiters.push(resolve))
  }

  /** Stops listening to a channel. */
  remove (name: string): void {
    const channel = this.#channels.get(name)
    if (channel === undefined) return
    this.#channels.delete(name)
    this.#detach(channel)
    for (const resolve of channel.waiters) resolve()
  }

  /**
   * Why a channel is not subscribed (readiness: a notification could be missed meanwhile), or
   * `undefined` when every channel is.
   */
  get unsubscribed (): string | undefined {
    for (const channel of this.#channels.values()) {
      if (channel.subscribed) continue
      const { node, subscribing, subscribingSince } = channel
      const where = node === undefined
        ? 'its node is not known yet (the map of slots is asked for)'
        : `connection to ${node.node} ${node.redis.status}` + (subscribing === node ? `, SSUBSCRIBE sent ${Math.round(performance.now() - subscribingSince)} ms ago` : '')
      return `notification channel ${channel.name} is not subscribed yet (${where})`
    }
    return undefined
  }

  /** The node connections (readiness and health probes). */
  get connections (): Redis[] {
    return [...this.#nodes.values()].map((n) => n.redis)
  }

  /** Moves channels whose slot is now served by another node (Cluster), and subscribes again those the server dropped. */
  refresh (): void {
    if (this.#closed) return
    for (const channel of this.#channels.values()) {
      const node = this.#ctx.topology.nodeOf(channel.slot)
      if (node !== channel.node?.node) {
        this.#detach(channel)
        this.#route(channel)
      } else if (!channel.subscribed && channel.node?.redis.status === 'ready') {
        this.#subscribe(channel.node, channel)
      }
    }
  }

  /**
   * `connection` left a command unanswered while up. If it is a subscriber's, its replies are out
   * of step with its commands (see `Channel.subscribing`): it is replaced.
   */
  unanswered (connection: Redis): void {
    const subscriber = [...this.#nodes.values()].find((s) => s.redis === connection)
    if (subscriber !== undefined && connection.status === 'ready') this.#replace(subscriber)
  }

  close (): void {
    this.#closed = true
    for (const { redis } of this.#nodes.values()) redis.disconnect()
    this.#nodes.clear()
    for (const channel of this.#channels.values()) for (const resolve of channel.waiters) resolve()
    this.#channels.clear()
  }

  #route (channel: Channel): void {
    const node = this.#ctx.topology.nodeOf(channel.slot)
    // A Cluster whose map of slots is not known yet: routed at its next refresh.
    if (node === undefined || this.#closed) return
    let subscriber = this.#nodes.get(node)
    if (subscriber === undefined) subscriber = this.#connect(node)
    subscriber.channels.add(channel)
    channel.node = subscriber
    if (subscriber.redis.status === 'ready') this.#subscribe(subscriber, channel)
  }

  #detach (channel: Channel): void {
    const subscriber = channel.node
    channel.node = undefined
    const wasSubscribed = channel.subscribed
    channel.subscribed = false
    if (subscriber === undefined) return
    subscriber.channels.delete(channel)
    if (subscriber.channels.size === 0) {
      subscriber.redis.disconnect()
      this.#nodes.delete(subscriber.node)
    } else if (wasSubscribed && subscriber.redis.status === 'ready') {
      subscriber.redis.sunsubscribe(channel.name).catch(noop)
    }
  }

  /** A new connection to the same node takes over every channel of `subscriber`, whose own is closed. */
  #replace (subscriber: NodeSubscriber): void {
    if (this.#nodes.get(subscriber.node) !== subscriber) return
    this.#nodes.delete(subscriber.node)
    const channels = [...subscriber.channels]
    subscriber.channels.clear()
    subscriber.redis.disconnect()
    for (const channel of channels) {
      channel.node = undefined
      channel.subscribed = false
      this.#route(channel)
    }
  }

  #connect (node: string): NodeSubscriber {
    const redis = this.#ctx.topology.subscriber(node, 'sub')
    const subscriber: NodeSubscriber = { node, redis, channels: new Set() }
    this.#nodes.set(node, subscriber)
    redis.on('smessage', (channel: string, message: string) => this.#onMessage(channel, message))
    redis.on('ready', () => { for (const channel of subscriber.channels) this.#subscribe(subscriber, channel) })
    redis.on('error', (err: Error) => {
      const dropped = droppedChannel(err)
      if (dropped === undefined) {
        this.#ctx.health.failed(err, 'subscriber')
        return
      }
      // The node no longer serves the channel's slot (a resharding moved it, or a failover):
      // not an error; it is subscribed again where the slot is now.
      const channel = this.#channels.get(dropped)
      if (channel?.node === subscriber) channel.subscribed = false
      this.#ctx.topology.refresh()
    })
    redis.on('close', () => {
      for (const channel of subscriber.channels) channel.subscribed = false
      // The node may be gone for good (failed over): ask the Cluster where its slots went.
      if (!this.#closed) this.#ctx.topology.refresh()
    })
    return subscriber
  }

  #subscribe (subscriber: NodeSubscriber, channel: Channel): void {
    if (channel.subscribing === subscriber) return
    channel.subscribing = subscriber
    channel.subscribingSince = performance.now()
    const unanswered = setTimeout(() => {
      if (channel.subscribing !== subscriber || channel.node !== subscriber || this.#closed) return
      channel.subscribing = undefined
      // The connection is down: ioredis sends it again once up, and the next 'ready' does too.
      if (subscriber.redis.status !== 'ready') return
      // Up, and no answer: its replies are out of step with its commands (see `subscribing`).
      this.#ctx.health.failed(new Error(`Command timed out: SSUBSCRIBE ${channel.name} on ${subscriber.node} unanswered for ${this.#timeoutMs} ms; its connection is replaced`), 'subscribe')
      this.#replace(subscriber)
    }, this.#timeoutMs).unref()
    subscriber.redis.ssubscribe(channel.name).finally(() => {
      clearTimeout(unanswered)
      if (channel.subscribing === subscriber) channel.subscribing = undefined
    }).then(() => {
      if (channel.node !== subscriber || this.#closed) return
      channel.subscribed = true
      const waiters = channel.waiters
      channel.waiters = []
      for (const resolve of waiters) resolve()
      channel.onSubscribed()
    }, (err: unknown) => {
      // (A connection replaced or a channel moved meanwhile: nothing more to do here.)
      if (channel.node !== subscriber || this.#closed) return
      // On a Cluster, MOVED is a slot served elsewhere now: the refresh it asks for moves the channel.
      if (this.#ctx.topology.cluster && err instanceof Error && /^(MOVED|ASK) /.test(err.message)) this.#ctx.topology.refresh()
      else if (err instanceof Error && /^ERR unknown command .ssubscribe/i.test(err.message)) this.#ctx.health.misconfigured(NO_SHARDED_PUBSUB)
      else this.#ctx.health.failed(err, 'subscribe')
    })
  }
}

/** Why a Redis that refuses SSUBSCRIBE cannot serve the store. */
export const NO_SHARDED_PUBSUB = 'Redis refuses SSUBSCRIBE (sharded pub/sub, Redis 7.0 or later): the relay needs Redis 7.0 or later, or Valkey; the store stays not ready'

/**
 * The channel a node dropped by itself: when a slot leaves a node (resharding, failover), Redis
 * sends its subscribers an `sunsubscribe` they did not ask for, which ioredis (5.x) reports as a
 * command queue error naming that reply (`… Last reply: sunsubscribe,<channel>,<count>`).
 */
function droppedChannel (err: Error): string | undefined {
  return /^Command queue state error\b.*Last reply: sunsubscribe,([^,]+),\d+$/s.exec(err.message)?.[1]
}
