import type { Unsubscribe } from '../../journal.js'
import type { ControlMessage } from '../../store.js'
import { noop } from './context.js'
import type { RedisContext } from './context.js'
import type { Follower } from './follower.js'
import type { Instances } from './instances.js'
import type { Subscriptions } from './subscriptions.js'

/** What goes over an instance's control channel. */
type Wire =
  | { a: 'cancelled' | 'superseded', s: string }
  /** `from` holds (reads) the journals `s`, or no longer does. */
  | { a: 'hold' | 'unhold', from: string, s: string[] }

/** A journal produced elsewhere that readers here hold. */
interface Held {
  readers: number
  producer: string | undefined
}

/**
 * Control messages, each sent to the one instance that produces the generation (its sharded
 * channel), not to every instance: cancel and supersede, and the holds of readers elsewhere.
 *
 * A cancel or supersede is also noted in the journal's meta (`stop`), which the producer reads
 * whenever it may have missed messages (its channel resubscribed), so a stop sent during a
 * failover still arrives. Holds are renewed once a tick, one message per producer instance for
 * all the journals held of it, and lapse unless renewed (or when the holder's lease lapses): a
 * generation is not abandoned while someone elsewhere reads it, and is once nobody does.
 */
export class Control {
  readonly #ctx: RedisContext
  readonly #subscriptions: Subscriptions
  readonly #follower: Follower
  readonly #instances: Instances
  readonly #listeners: Array<(message: ControlMessage) => void> = []
  /** Journals produced elsewhere and read here. */
  readonly #held = new Map<string, Held>()
  /** Journals produced here and read elsewhere: holder instance → until when (performance.now()). */
  readonly #holders = new Map<string, Map<string, number>>()
  readonly #channel: string

  constructor (ctx: RedisContext, subscriptions: Subscriptions, follower: Follower, instances: Instances) {
    this.#ctx = ctx
    this.#subscriptions = subscriptions
    this.#follower = follower
    this.#instances = instances
    this.#channel = ctx.keys.control(ctx.instanceId)
  }

  /** Listens to this instance's channel; `onResubscribed` runs at each resubscription (messages may have been missed). */
  start (onResubscribed: () => void): void {
    let first = true
    void this.#subscriptions.add(this.#channel, () => {
      if (!first) onResubscribed()
      first = false
    })
  }

  /** Whether a message came on this instance's channel (and was handled). */
  received (channel: string, text: string): boolean {
    if (channel !== this.#channel) return false
    let wire: Wire
    try {
      wire = JSON.parse(text) as Wire
    } catch {
      return true
    }
    if (wire.a === 'cancelled' || wire.a === 'superseded') {
      if (typeof wire.s === 'string') this.stop(wire.s, wire.a)
    } else if ((wire.a === 'hold' || wire.a === 'unhold') && typeof wire.from === 'string' && Array.isArray(wire.s)) {
      const until = performance.now() + this.#ctx.leaseMs
      for (const streamId of wire.s) {
        if (typeof streamId !== 'string') continue
        let holders = this.#holders.get(streamId)
        if (wire.a === 'hold') {
          if (holders === undefined) this.#holders.set(streamId, holders = new Map())
          holders.set(wire.from, until)
        } else {
          holders?.delete(wire.from)
          if (holders?.size === 0) this.#holders.delete(streamId)
        }
      }
    }
    return true
  }

  onControl (listener: (message: ControlMessage) => void): void {
    this.#listeners.push(listener)
  }

  /** Hands a stop to this instance's listeners (the relay stops the generation if it runs here). */
  stop (streamId: string, action: ControlMessage['action']): void {
    for (const listener of this.#listeners) listener({ streamId, action })
  }

  /** Sends a cancel or supersede to the instance producing the journal. */
  async publish (message: ControlMessage): Promise<void> {
    const { cmd, keys, instanceId } = this.#ctx
    const producer = await cmd.relayStop(keys.meta(message.streamId), message.action)
    if (producer === null) return
    if (producer === instanceId) this.stop(message.streamId, message.action)
    else await cmd.spublish(keys.control(producer), JSON.stringify({ a: message.action, s: message.streamId }))
  }

  /** Holds a journal produced elsewhere (see RelayStore.holdRemote). */
  hold (streamId: string): Unsubscribe {
    let held = this.#held.get(streamId)
    if (held === undefined) {
      held = { readers: 0, producer: this.#follower.producerOf(streamId) }
      this.#held.set(streamId, held)
    }
    held.readers++
    if (held.readers === 1) this.#send('hold', [streamId], held)
    const holding = held
    let released = false
    return () => {
      if (released) return
      released = true
      holding.readers--
      if (holding.readers > 0 || this.#held.get(streamId) !== holding) return
      this.#held.delete(streamId)
      this.#send('unhold', [streamId], holding)
    }
  }

  /** Whether an instance that is alive holds a journal produced here. */
  hasRemoteReaders (streamId: string): boolean {
    const holders = this.#holders.get(streamId)
    if (holders === undefined) return false
    const now = performance.now()
    for (const [instance, until] of holders) {
      if (until > now && !this.#instances.dead.has(instance)) return true
      if (until <= now) holders.delete(instance)
    }
    if (holders.size === 0) this.#holders.delete(streamId)
    return false
  }

  /** Forgets the holders of a journal that ended here. */
  ended (streamId: string): void {
    this.#holders.delete(streamId)
  }

  /** Once a tick: renews every hold, one message per producer instance, and forgets the holds that lapsed (their holder died or left). */
  tick (): void {
    const now = performance.now()
    for (const [streamId, holders] of this.#holders) {
      for (const [instance, until] of holders) if (until <= now) holders.delete(instance)
      if (holders.size === 0) this.#holders.delete(streamId)
    }
    const byProducer = new Map<string, string[]>()
    for (const [streamId, held] of this.#held) {
      held.producer ??= this.#follower.producerOf(streamId)
      if (held.producer === undefined) {
        this.#send('hold', [streamId], held)
        continue
      }
      const list = byProducer.get(held.producer)
      if (list === undefined) byProducer.set(held.producer, [streamId])
      else list.push(streamId)
    }
    for (const [producer, streamIds] of byProducer) this.#publish(producer, { a: 'hold', from: this.#ctx.instanceId, s: streamIds })
  }

  #send (action: 'hold' | 'unhold', streamIds: string[], held: Held): void {
    const message: Wire = { a: action, from: this.#ctx.instanceId, s: streamIds }
    if (held.producer !== undefined) return this.#publish(held.producer, message)
    // Not known yet (the reader's catch-up has not read the meta): asked, then sent.
    const { cmd, keys } = this.#ctx
    cmd.hget(keys.meta(streamIds[0] as string), 'producer').then((producer) => {
      if (producer === null) return
      held.producer = producer
      this.#publish(producer, message)
    }, (err: unknown) => { this.#ctx.health.failed(err, 'hold') })
  }

  #publish (producer: string, message: Wire): void {
    if (producer === this.#ctx.instanceId) return
    this.#ctx.cmd.spublish(this.#ctx.keys.control(producer), JSON.stringify(message)).catch((err: unknown) => {
      // Sent again at the next tick (holds); a lost unhold lapses by itself.
      this.#ctx.health.failed(err, 'control message')
    }).catch(noop)
  }
}
