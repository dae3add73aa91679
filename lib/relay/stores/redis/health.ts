import type { Redis } from 'ioredis'
import type { StoreLog } from '../../store.js'

/**
 * What tells an outage (Redis unreachable, or between masters: it ends by itself) from an error
 * (Redis answered, and the answer is a fault someone must fix: a permission, memory, a key of the
 * wrong type, a command this topology refuses). Outages are ioredis's connection errors and
 * timeouts, and the replies of a server or cluster in transition.
 */
// ASK: a Cluster slot is being migrated and this key has moved already; pipelines do not follow
// it (single commands do), so the write is retried after a backoff, by which time the slot has
// been handed over (MOVED, which they follow).
const OUTAGE_CODES = new Set(['LOADING', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'READONLY', 'BUSY', 'ASK'])
const OUTAGE_MESSAGES = /^(Connection is closed|Stream isn't writeable|Command timed out|Cluster isn't ready|Cluster is ended|Failed to refresh slots cache|None of (the )?startup nodes|All sentinels are unreachable|Reached the max retries|Too many Cluster redirections)/
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED'])

/** The error code of a Redis reply (`NOPERM`, `OOM`, `WRONGTYPE`, …), or `undefined` for an outage. */
export function errorCode (err: unknown): string | undefined {
  if (!(err instanceof Error)) return 'ERR'
  const socketCode = (err as { code?: unknown }).code
  if (typeof socketCode === 'string' && SOCKET_CODES.has(socketCode)) return undefined
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError' || OUTAGE_MESSAGES.test(err.message)) return undefined
  const word = /^[A-Z][A-Z_]+(?= |$)/.exec(err.message)?.[0]
  if (word !== undefined && OUTAGE_CODES.has(word)) return undefined
  return word ?? 'ERR'
}

/** Options of {@link Health}. */
export interface HealthOptions {
  log: StoreLog
  /** Called on every Redis error that is not an outage, with its code (the relay counts them). */
  onError: (code: string) => void
  /** How long an error or a failed command keeps the store not ready after it. */
  holdMs: number
  /** A connection whose probe (PING) is unanswered this long marks the store not ready (a hung Redis). */
  stallMs: number
  /**
   * A connection whose probes are unanswered this long (however many ioredis's command timeout
   * rejected meanwhile) is given up: counted as a failed command, and a new probe is sent.
   * `onUnanswered` is told which connection (a subscriber's replies may be out of step with its
   * commands: it is replaced; a command connection is reconnected).
   */
  abandonMs: number
  onUnanswered?: (connection: Redis) => void
}

/**
 * The store's readiness, told truly: not ready while a connection is down, while Redis does not
 * answer (a probe outstanding for `stallMs`: a hung server keeps its connections open), and for
 * `holdMs` after any failed command, outage or error. Errors (not outages) are logged once per
 * code while they last, and each is counted through `onError`.
 */
export class Health {
  readonly #options: HealthOptions
  /** Until when the last failure keeps the store not ready (performance.now()). */
  #failingUntil = 0
  /** Error codes logged and not yet cleared by a spell without them. */
  readonly #logged = new Map<string, number>()
  /** Probes in flight: when each started (which also tells a probe's answer from an older one's). */
  readonly #probes = new Map<Redis, number>()
  /**
   * Connections that owe an answer: since when. Set by a probe, cleared by any answer; a probe
   * that ioredis's command timeout rejected leaves it (the next probe goes out, the clock runs
   * on), so a connection is given up `abandonMs` after its first unanswered probe, whatever the
   * timeout.
   */
  readonly #unanswered = new Map<Redis, number>()
  #outageLogged = false
  /** What failed last (for {@link problem}). */
  #lastFailure = ''
  #lastProbe = -Infinity
  /** The store is closing: its connections end, which is no outage. */
  #closed = false
  /** Why this store can never work as configured (see {@link misconfigured}). */
  #misconfigured: string | undefined

  constructor (options: HealthOptions) {
    this.#options = options
  }

  /**
   * Something failed. An outage is logged once until the store is ready again; an error is logged
   * once per code (until a `holdMs` without it), and counted. Returns the error's code, or
   * `undefined` for an outage.
   */
  failed (err: unknown, context: string): string | undefined {
    const now = performance.now()
    this.#failingUntil = Math.max(this.#failingUntil, now + this.#options.holdMs)
    this.#lastFailure = `${context}: ${err instanceof Error ? err.message : String(err)}`
    const code = errorCode(err)
    // Closing: its connections end. Misconfigured: that one line says what is wrong.
    if (this.#closed || this.#misconfigured !== undefined) return code
    if (code === undefined) {
      if (!this.#outageLogged) {
        this.#outageLogged = true
        this.#options.log('warn', 'Redis unavailable: new generations are refused until it is back; running ones stream locally', { err: (err as Error).message, context })
      }
      return undefined
    }
    this.#options.onError(code)
    const last = this.#logged.get(code)
    if (last === undefined || now - last > this.#options.holdMs) {
      this.#options.log('error', `Redis error ${code} (${context}): logged once while it lasts; the store is not ready meanwhile`, { code, err })
    }
    this.#logged.set(code, now)
    return code
  }

  /**
   * The deployment is not what the configuration says, or cannot serve the store (a Cluster node
   * named as a single Redis, a Redis without sharded pub/sub): retrying will not help, the
   * operator must. Logged once, as one line that says what to change; never ready after.
   */
  misconfigured (message: string): void {
    if (this.#misconfigured !== undefined) return
    this.#misconfigured = message
    this.#options.log('error', message)
  }

  /** The message of {@link misconfigured}, once it was called. */
  get misconfiguration (): string | undefined {
    return this.#misconfigured
  }

  /**
   * Why the store is not ready, in words (`/readyz` shows it), or `undefined` when the
   * `connected` connections are up, the `probed` ones up and answering, and nothing failed
   * lately. Starts a probe when one is due, and gives up a connection that has not answered for
   * `abandonMs` (a failure; `onUnanswered` is told). (A Cluster connects to a node on first use,
   * and refuses commands to a node still connecting: a probe connects it, and until it is up the
   * store is not ready.)
   */
  problem (connected: ReadonlyArray<Redis | { status: string }>, probed: readonly Redis[]): string | undefined {
    if (this.#misconfigured !== undefined) return this.#misconfigured
    const now = performance.now()
    if (now - this.#lastProbe > this.#options.stallMs || probed.some((connection) => connection.status === 'wait')) this.#probe(probed)
    for (const connection of [...connected, ...probed]) if (connection.status !== 'ready') return `the connection to ${nodeName(connection)} is ${connection.status}`
    for (const connection of probed) {
      const since = this.#unanswered.get(connection)
      if (since === undefined || now - since <= this.#options.stallMs) continue
      const reason = `${nodeName(connection)} has not answered a PING for ${Math.round(now - since)} ms`
      if (now - since > this.#options.abandonMs) {
        this.#probes.delete(connection)
        this.#unanswered.delete(connection)
        this.failed(new Error(`Command timed out: ${reason}`), 'probe')
        this.#options.onUnanswered?.(connection)
      }
      return reason
    }
    if (now < this.#failingUntil) return `a Redis command failed (${this.#lastFailure}); not ready for ${Math.ceil(this.#failingUntil - now)} ms more`
    if (this.#outageLogged) {
      this.#outageLogged = false
      this.#options.log('info', 'Redis available again')
    }
    return undefined
  }

  /** The store is closing: nothing more is logged or counted. */
  close (): void {
    this.#closed = true
  }

  /** PINGs each connection (not one already probed), so a Redis that stopped answering is seen as such. */
  #probe (connections: readonly Redis[]): void {
    const started = this.#lastProbe = performance.now()
    // A connection no longer in use may never settle its probe (ioredis keeps a command queued
    // for good when a connection is closed while it waits to reconnect): forgotten.
    for (const byConnection of [this.#probes, this.#unanswered]) {
      for (const connection of byConnection.keys()) if (!connections.includes(connection)) byConnection.delete(connection)
    }
    for (const connection of connections) {
      if (this.#probes.has(connection)) continue
      this.#probes.set(connection, started)
      if (!this.#unanswered.has(connection)) this.#unanswered.set(connection, started)
      // (A probe forgotten or given up meanwhile is no one's concern any more.)
      connection.ping().then(() => {
        if (this.#probes.get(connection) !== started) return
        this.#probes.delete(connection)
        this.#unanswered.delete(connection)
      }, (err: unknown) => {
        if (this.#probes.get(connection) !== started) return
        this.#probes.delete(connection)
        this.failed(err, 'probe')
        // Any other failure is an answer of a kind (or the connection went down, which the
        // status says): only a timeout on a connection that is up leaves the clock running.
        const timedOut = err instanceof Error && err.message.startsWith('Command timed out')
        if (!timedOut || connection.status !== 'ready') this.#unanswered.delete(connection)
      })
    }
  }
}

/** `host:port` of a node's connection (or "the Cluster"), for {@link Health.problem}. */
function nodeName (connection: Redis | { status: string }): string {
  const options = 'options' in connection ? connection.options : undefined
  return options?.host === undefined ? 'the Cluster' : `${options.host}:${options.port}`
}
