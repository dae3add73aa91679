import type { RedisContext } from './context.js'

/**
 * The instances' leases: one per instance, not one per journal. Every tick this instance renews
 * its own (one script call on one key) and learns which instances live and which have died
 * (lease lapsed). Journals name their producer instance; a journal whose producer died is
 * `producer_lost`, and a dead instance's per-client slot counts are given back.
 *
 * Only believed once this instance has itself reached Redis at every tick for a lease time: after
 * an outage, or a Redis that hung, every lease looks lapsed until each instance had its turn to
 * renew.
 */
export class Instances {
  readonly #ctx: RedisContext
  readonly #forgetMs: number
  #live: ReadonlySet<string> = new Set()
  #dead: ReadonlySet<string> = new Set()
  #healthySince: number | undefined
  #registered = false

  /** @param forgetMs how long a dead instance is remembered: longer than anything it left may point to it. */
  constructor (ctx: RedisContext, forgetMs: number) {
    this.#ctx = ctx
    this.#forgetMs = forgetMs
  }

  /**
   * Renews this instance's lease. Resolves `lapsed` when it had lapsed or Redis had lost it (the
   * others may have taken this instance for dead: ended its journals, dropped its slot counts).
   */
  async renew (): Promise<'ok' | 'lapsed'> {
    const { cmd, keys, instanceId, leaseMs } = this.#ctx
    let reply: [number, string[], string[]]
    try {
      reply = await cmd.relayInstances(keys.instances, instanceId, leaseMs, this.#forgetMs, 0)
    } catch (err) {
      this.#healthySince = undefined
      throw err
    }
    const [was, live, dead] = reply
    this.#healthySince ??= performance.now()
    this.#live = new Set(live)
    this.#dead = new Set(dead)
    const lapsed = this.#registered && was !== 1
    this.#registered = true
    return lapsed ? 'lapsed' : 'ok'
  }

  /** A command failed: leases are not believed until the ticks have succeeded for a lease time again. */
  unsure (): void {
    this.#healthySince = undefined
  }

  /** Whether this instance's view of the others can be believed (see the class). */
  get trusted (): boolean {
    return this.#healthySince !== undefined && performance.now() - this.#healthySince >= this.#ctx.leaseMs
  }

  /** The instances whose lease lapsed, when {@link trusted}; none otherwise. */
  get dead (): ReadonlySet<string> {
    return this.trusted ? this.#dead : EMPTY
  }

  /** The instances whose lease runs (this one among them), when {@link trusted}; `undefined` otherwise. */
  get live (): ReadonlySet<string> | undefined {
    return this.trusted ? this.#live : undefined
  }

  /** How long a dead instance is remembered: anything it left (a count, a journal) older than this names an instance nobody knows any more. */
  get forgetMs (): number {
    return this.#forgetMs
  }

  /** Whether an instance's lease is running, as of the last tick. */
  isLive (instanceId: string): boolean {
    return instanceId === this.#ctx.instanceId || this.#live.has(instanceId)
  }

  /** Ends this instance's lease now (it is going away): what it did not end is seen as lost at once. */
  async leave (): Promise<void> {
    const { cmd, keys, instanceId, leaseMs } = this.#ctx
    if (!this.#registered) return
    await cmd.relayInstances(keys.instances, instanceId, leaseMs, this.#forgetMs, 1)
  }
}

const EMPTY: ReadonlySet<string> = new Set()
