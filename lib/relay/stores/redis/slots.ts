import { noop } from './context.js'
import type { RedisContext } from './context.js'
import type { Instances } from './instances.js'

/** One client's generations on this instance. */
interface Count {
  /** Running here. */
  running: number
  /** Acquires waiting on Redis. */
  pending: number
  /** Redis may not hold `running + pending` for this instance: write it (again). */
  stale: boolean
  /** A write of this count is in flight. */
  writing: boolean
}

/**
 * `MAX_STREAMS_PER_CLIENT` across instances. A client's hash in Redis holds each instance's
 * count of its running generations; a slot is taken when the counts add up to less than the
 * limit. Counting per instance is what frees a crashed instance's slots: its counts are dropped
 * (by the next acquire of that client) once its lease has lapsed, so a crash locks no client out
 * beyond the lease time. Each count carries the time it was written (a second hash beside it):
 * the count of an instance dead so long ago that it was forgotten is dropped all the same, and a
 * client's hashes expire `ttlMs` after their last write, so nothing a dead instance left stays.
 *
 * This instance's own counts live here, and Redis holds a copy: every write sets the whole count
 * (not an increment), so a write that failed (Redis unreachable when a generation ended) is
 * simply written again, with the count of that moment, once Redis answers — and after this
 * instance's lease had lapsed (the others dropped its counts), all of them are.
 */
export class SlotCounts {
  readonly #ctx: RedisContext
  readonly #instances: Instances
  readonly #ttlMs: number
  readonly #counts = new Map<string, Count>()

  /** @param ttlMs safety-net expiry of a client's hash (renewed by every write). */
  constructor (ctx: RedisContext, instances: Instances, ttlMs: number) {
    this.#ctx = ctx
    this.#instances = instances
    this.#ttlMs = ttlMs
  }

  async acquire (client: string, max: number): Promise<boolean> {
    const count = this.#count(client)
    count.pending++
    const { cmd, keys, instanceId } = this.#ctx
    let taken = false
    try {
      // Counts of instances known neither dead nor alive are dropped only from a view that can be
      // believed (else -1), and only when older than a dead instance is remembered.
      const dead = [...this.#instances.dead]
      const live = this.#instances.live
      taken = await cmd.relayAcquireSlot(keys.slots(client), keys.slotTimes(client), max, instanceId, count.running + count.pending, this.#ttlMs, live === undefined ? -1 : this.#instances.forgetMs, dead.length, ...dead, ...live ?? []) === 1
    } catch (err) {
      // Taken or not, Redis may hold the count sent: it is written again once Redis answers.
      count.stale = true
      throw err
    } finally {
      count.pending--
      if (taken) count.running++
      // A refused slot (or one given back meanwhile) leaves Redis holding a count from before.
      else count.stale = true
      this.#flush(client, count)
    }
    return taken
  }

  /** Gives a slot back. Never fails: a count Redis did not take is written again when it answers. */
  release (client: string): void {
    const count = this.#counts.get(client)
    if (count === undefined || count.running === 0) return
    count.running--
    count.stale = true
    this.#flush(client, count)
  }

  /** Writes again every count Redis may not hold (a failed write; all after this instance's lease lapsed). */
  retry (all = false): void {
    for (const [client, count] of this.#counts) {
      if (all) count.stale = true
      this.#flush(client, count)
    }
  }

  /** Clients counted here (for tests). */
  get clients (): number {
    return this.#counts.size
  }

  #count (client: string): Count {
    let count = this.#counts.get(client)
    if (count === undefined) {
      count = { running: 0, pending: 0, stale: false, writing: false }
      this.#counts.set(client, count)
    }
    return count
  }

  /** Writes the count if Redis may not hold it and no acquire or write is in flight (they are ordered on one connection, but a retry is not). */
  #flush (client: string, count: Count): void {
    if (!count.stale || count.writing || count.pending > 0) return
    count.stale = false
    count.writing = true
    const { cmd, keys, instanceId } = this.#ctx
    const key = keys.slots(client)
    const value = count.running
    cmd.relaySetSlotCount(key, keys.slotTimes(client), instanceId, value, this.#ttlMs).catch((err: unknown) => {
      count.stale = true
      this.#ctx.health.failed(err, 'slot count')
    }).finally(() => {
      count.writing = false
      if (count.stale) {
        // Changed meanwhile: written now. Failed: written by the next retry (a tick), not in a loop.
        if (count.running !== value) this.#flush(client, count)
        return
      }
      if (count.running === 0 && count.pending === 0) this.#counts.delete(client)
    }).catch(noop)
  }
}
