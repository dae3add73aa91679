import { StoreFullError } from '../../errors.js'
import type { EndReason } from '../../journal.js'
import type { ChannelEventInput, ChannelRetention } from '../../store.js'
import { groupOf, run } from './context.js'
import type { RedisContext } from './context.js'
import type { Follower } from './follower.js'
import { pipelineOf } from './scripts.js'

/**
 * Channels live in Redis only: any instance may publish (ids come from Redis, atomically, by a
 * script), and every reader, local or not, reads them through the follower. A publish notifies
 * the channel's group like a producer's flush.
 */
export class RedisChannels {
  readonly #ctx: RedisContext
  readonly #follower: Follower
  /** Channels opened here: expiry (ms) and when to renew it (performance.now()), renewed while read here. */
  readonly #opened = new Map<string, { ttlMs: number, renewAt: number }>()

  constructor (ctx: RedisContext, follower: Follower) {
    this.#ctx = ctx
    this.#follower = follower
  }

  async publish (channel: string, events: readonly ChannelEventInput[], retention: ChannelRetention): Promise<number[]> {
    const { keys } = this.#ctx
    const ids: number[] = []
    // Lua's unpack has a stack limit: large arrays go in slices (ids stay consecutive per slice).
    for (let start = 0; start < events.length; start += 1000) {
      const args: Array<string | number> = [retention.maxEvents, retention.maxAgeMs, ttlOf(retention)]
      for (const event of events.slice(start, start + 1000)) args.push(event.event ?? '', event.data)
      const replies = await run(pipelineOf(this.#ctx.cmd)
        .relayPublish(keys.meta(channel), keys.log(channel), ...args)
        .spublish(this.#notifyChannel(channel), channel))
      const [err, range] = replies[0] ?? [new Error('no reply'), undefined]
      if (err !== null) {
        if (err.message.startsWith('CLOSED')) throw new StoreFullError(`channel ${channel} is closed`)
        throw err
      }
      const [first, last] = range as [number, number]
      for (let id = first; id <= last; id++) ids.push(id)
    }
    return ids
  }

  async openChannel (channel: string, retention: ChannelRetention): Promise<void> {
    const { keys } = this.#ctx
    const meta = keys.meta(channel)
    const ttlMs = ttlOf(retention)
    const replies = await run(pipelineOf(this.#ctx.cmd)
      .hsetnx(meta, 'kind', 'channel')
      .hsetnx(meta, 'createdAt', Date.now())
      .pexpire(meta, ttlMs)
      .pexpire(keys.log(channel), ttlMs))
    const failed = replies.find(([err]) => err !== null)?.[0]
    // Refused with a real status (store_unavailable) before a stream opens on a store that is not there.
    if (failed != null) throw failed
    // Kept alive while read here, so its id counter never restarts under a waiting reader.
    this.#opened.set(channel, { ttlMs, renewAt: performance.now() + ttlMs / 2 })
  }

  /** Ends a channel (or a journal not produced here) in Redis; readers everywhere get the end through it. */
  async end (channel: string, reason: EndReason): Promise<void> {
    const { keys, retainMs } = this.#ctx
    const replies = await run(pipelineOf(this.#ctx.cmd)
      .relayEnd(keys.meta(channel), keys.log(channel), retainMs, reason, 0)
      .spublish(this.#notifyChannel(channel), channel))
    const failed = replies.find(([err]) => err !== null)?.[0]
    if (failed != null) throw failed
  }

  /** Once a tick: renews the expiry of the channels read here (once per half expiry), forgets those no longer read. */
  async renewExpiries (): Promise<void> {
    const { keys } = this.#ctx
    const now = performance.now()
    const due: string[] = []
    for (const [channel, opened] of this.#opened) {
      if (!this.#follower.has(channel)) this.#opened.delete(channel)
      else if (now >= opened.renewAt) due.push(channel)
    }
    await Promise.all(due.map(async (channel) => {
      const opened = this.#opened.get(channel)
      if (opened === undefined) return
      await run(pipelineOf(this.#ctx.cmd).pexpire(keys.meta(channel), opened.ttlMs).pexpire(keys.log(channel), opened.ttlMs))
      opened.renewAt = performance.now() + opened.ttlMs / 2
    }))
  }

  /**
   * A channel that Redis lost (restarted empty) would count its ids from 1 again, under readers
   * here whose live read continues after the id they last got: they would skip that many events.
   * Its counter is seeded again with the highest id read here (every instance reading it does
   * the same; the highest wins), so its ids continue. (An event published in the moment between
   * Redis's return and this seeding still takes a low id, which those readers skip; the events
   * of that moment are gone with Redis's data in any case.)
   */
  async reseed (): Promise<void> {
    const { keys } = this.#ctx
    let raised = 0
    await Promise.all([...this.#opened].map(async ([channel, { ttlMs }]) => {
      const lastId = this.#follower.lastReadId(channel)
      if (lastId === undefined || lastId === 0) return
      const replies = await run(pipelineOf(this.#ctx.cmd).relayReseedChannel(keys.meta(channel), keys.log(channel), lastId, ttlMs))
      if (replies[0]?.[0] === null && replies[0]?.[1] === 1) raised++
    }))
    if (raised > 0) this.#ctx.log('warn', 'Redis lost channels read here (restarted empty?): their ids continue after the last one read', { channels: raised })
  }

  #notifyChannel (channel: string): string {
    return this.#ctx.keys.notify(groupOf(this.#ctx, channel))
  }
}

/**
 * A channel nobody publishes to or reads is forgotten after its age limit (as in memory, whose
 * sweep runs every 10 s at most), and not before 10 s: it is renewed from the ticks of the
 * instances reading it.
 */
function ttlOf (retention: ChannelRetention): number {
  return Math.max(retention.maxAgeMs, 10_000)
}
