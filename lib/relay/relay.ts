import { randomFillSync } from 'node:crypto'
import type { ChatRequestBody } from '../upstream/types.js'
import { RelayError } from './errors.js'
import type { StopReason } from './errors.js'
import { Generation } from './generation.js'
import type { GenerationDeps, RelayHooks, UpstreamStreamer } from './generation.js'
import { exactlyOnce } from './journal.js'
import type { JournalListener, Unsubscribe } from './journal.js'
import { NO_OBSERVER } from './metrics.js'
import type { GenerationObserver } from './metrics.js'
import type { JournalState, RelayStore } from './store.js'

/** Options of {@link Relay}. */
export interface RelayCoreOptions {
  upstream: UpstreamStreamer
  store: RelayStore
  hooks?: RelayHooks
  /** `STREAM_MAX_DURATION_MS`. @default 600000 */
  maxDurationMs?: number
  /** `DETACH_GRACE_MS`. @default 15000 */
  detachGraceMs?: number
  /** `MAX_STREAMS_PER_CLIENT`. @default 8 */
  maxStreamsPerClient?: number
  /** `MAX_STREAMS` (this instance). @default 10000 */
  maxStreams?: number
  /**
   * `COMMIT_AFTER_MS`: how long {@link Relay.awaitCommit} waits for a first event before it lets
   * the stream commit anyway (status 200, headers, heartbeats), so a model that is silent for
   * long is not cut by an idle proxy; 0 = wait for the first event however long. @default 10000
   */
  commitAfterMs?: number
  log?: GenerationDeps['log']
  /**
   * The upstream's default model, for a request that names none: the generation's log line and
   * metrics name it (as `'unknown'` when not given). @default 'unknown'
   */
  defaultModel?: string
  /** Metrics of the generations. */
  observer?: GenerationObserver
}

/** What a caller asks for when starting a generation. */
export interface StartRequest {
  /** Key identity, or `null` when the relay runs open (then anyone with the id may read). */
  owner: string | null
  /** Whom the per-client limit counts: the key identity, or the client's IP when open. */
  client: string
  conversationId?: string | undefined
  body: ChatRequestBody
}

/**
 * The relay's core, free of HTTP: starts generations (limits, supersede), finds them for
 * readers (owner checks), stops them (cancel, wherever they run), and drains on shutdown.
 */
export class Relay {
  /** Generations produced by this instance, by stream id. */
  readonly local = new Map<string, Generation>()
  /** Starts waiting on the store: counted against `maxStreams` with the running ones, so a burst cannot pass the limit together. */
  private starting = 0
  private readonly deps: GenerationDeps
  private readonly maxStreamsPerClient: number
  private readonly maxStreams: number
  private readonly commitAfterMs: number
  private drainingFlag = false

  constructor (options: RelayCoreOptions) {
    this.deps = {
      upstream: options.upstream,
      store: options.store,
      hooks: options.hooks ?? {},
      maxDurationMs: options.maxDurationMs ?? 600_000,
      detachGraceMs: options.detachGraceMs ?? 15_000,
      log: options.log ?? noop,
      defaultModel: options.defaultModel ?? 'unknown',
      observer: options.observer ?? NO_OBSERVER
    }
    this.maxStreamsPerClient = options.maxStreamsPerClient ?? 8
    this.maxStreams = options.maxStreams ?? 10_000
    this.commitAfterMs = options.commitAfterMs ?? 10_000
    // A cancel or supersede may arrive at any instance; the producer hears it here.
    options.store.onControl((message) => this.local.get(message.streamId)?.stop(message.action))
  }

  get store (): RelayStore {
    return this.deps.store
  }

  /** True once shutdown began: new generations are refused. */
  get draining (): boolean {
    return this.drainingFlag
  }

  /**
   * Starts a generation, after the limits, superseding the conversation's active one.
   * Throws {@link RelayError} 429 (per client), 503 (per instance, or draining).
   */
  async start (request: StartRequest): Promise<Generation> {
    try {
      return await this.startGeneration(request)
    } catch (err) {
      if (err instanceof RelayError) throw err
      // The store (Redis) is unreachable: fail fast and clearly rather than run half-registered.
      this.deps.log('warn', 'store unavailable, generation refused', { err })
      throw new RelayError('store_unavailable', 503, 'the relay\'s store is unavailable; retry shortly', 1)
    }
  }

  private async startGeneration (request: StartRequest): Promise<Generation> {
    if (this.drainingFlag) throw shuttingDown()
    if (this.local.size + this.starting >= this.maxStreams) throw new RelayError('server_busy', 503, 'the relay is at its concurrent generation limit', 1)
    const { store } = this.deps
    const streamId = newStreamId()
    const conversationKey = request.conversationId === undefined ? undefined : conversationKeyOf(request.owner, request.conversationId)
    // The client's slot and the journal are asked for together: with Redis, one round trip
    // before the upstream request instead of two (each a turn of a busy event loop). A refused
    // slot discards the journal made for nothing; a failed journal gives the slot back.
    this.starting++
    const [slot, created] = await Promise.allSettled([
      store.acquireSlot(request.client, this.maxStreamsPerClient),
      store.create(streamId, { kind: 'generation', owner: request.owner, conversationId: request.conversationId, createdAt: Date.now() })
    ])
    this.starting--
    // A shutdown that began meanwhile did not see this start (it was not running yet): refused too.
    if (slot.status === 'rejected' || created.status === 'rejected' || !slot.value || this.drainingFlag) {
      // Undone as far as the store lets: a failure here must not hide why the start was refused.
      const undo = await Promise.allSettled([
        created.status === 'fulfilled' ? store.discard(streamId) : undefined,
        slot.status === 'fulfilled' && slot.value ? store.releaseSlot(request.client) : undefined
      ])
      for (const step of undo) if (step.status === 'rejected') this.deps.log('warn', 'undoing a refused start failed', { streamId, err: step.reason })
      if (slot.status === 'rejected') throw slot.reason
      if (created.status === 'rejected') throw created.reason
      if (this.drainingFlag) throw shuttingDown()
      throw new RelayError('too_many_streams', 429, `at most ${this.maxStreamsPerClient} concurrent generations per client`, 1)
    }
    const generation = new Generation(this.deps, {
      streamId,
      conversationId: request.conversationId,
      owner: request.owner,
      body: request.body
    })
    this.local.set(streamId, generation)
    generation.ended.then(async () => {
      this.local.delete(streamId)
      await store.releaseSlot(request.client)
      if (conversationKey !== undefined) await store.clearActive(conversationKey, streamId)
    }).catch((err: unknown) => this.deps.log('warn', 'cleanup after a generation failed', { streamId, err }))
    if (conversationKey !== undefined) {
      try {
        const previous = await store.swapActive(conversationKey, streamId)
        if (previous !== undefined && previous !== streamId) await this.stopAnywhere(previous, 'superseded')
      } catch (err) {
        // Refused (503): the generation must not run on, unseen, until its grace time ends.
        generation.stop('cancelled')
        throw err
      }
    }
    return generation
  }

  /**
   * Commit late: holds the caller as a reader of `generation` (so its grace time does not run)
   * until its stream may commit. Resolves once the first event is journaled, or once
   * `commitAfterMs` passed without one (the stream then commits and sends heartbeats while the
   * model is silent; a later failure reaches it as an `error` event). Rejects with the
   * {@link RelayError} that ended the generation before: an upstream failure with its real
   * status, or a stop (409 cancelled / superseded). When `signal` aborts (the client left) the
   * caller stops being a reader at once — the grace time runs from then, not from whenever a
   * stalled upstream sends its first token — and this resolves.
   */
  async awaitCommit (generation: Generation, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) return
    generation.attach()
    let timer: NodeJS.Timeout | undefined
    let leave: (() => void) | undefined
    try {
      await new Promise<void>((resolve, reject) => {
        generation.firstEvent.then(resolve, reject)
        if (this.commitAfterMs > 0) timer = setTimeout(resolve, this.commitAfterMs)
        if (signal !== undefined) {
          leave = resolve
          signal.addEventListener('abort', leave, { once: true })
        }
      })
    } finally {
      clearTimeout(timer)
      if (leave !== undefined) signal?.removeEventListener('abort', leave)
      generation.detach()
    }
  }

  /** A journal's state if `owner` may see it; `undefined` otherwise (unknown and foreign look the same: no existence leak). */
  async find (streamId: string, owner: string | null): Promise<JournalState | undefined> {
    const state = await this.deps.store.state(streamId)
    if (state === undefined || state.meta.kind !== 'generation') return undefined
    if (state.meta.owner !== null && state.meta.owner !== owner) return undefined
    return state
  }

  /** The stream id of a conversation's active generation, if `owner` may see it. */
  async findActive (conversationId: string, owner: string | null): Promise<string | undefined> {
    const streamId = await this.deps.store.getActive(conversationKeyOf(owner, conversationId))
    if (streamId === undefined) return undefined
    const state = await this.find(streamId, owner)
    return state === undefined || state.ended !== undefined ? undefined : streamId
  }

  /**
   * Reads a generation's journal from `afterId`, counting the reader as attached (so the
   * upstream keeps running) when the generation runs here.
   */
  read (streamId: string, afterId: number, listener: JournalListener): Unsubscribe {
    const generation = this.local.get(streamId)
    const { store } = this.deps
    let release: Unsubscribe
    if (generation !== undefined) {
      generation.attach()
      release = () => generation.detach()
    } else {
      release = store.holdRemote(streamId)
    }
    const unsubscribe = store.subscribe(streamId, afterId, exactlyOnce(afterId, listener))
    let attached = true
    return () => {
      unsubscribe()
      if (attached) {
        attached = false
        release()
      }
    }
  }

  /** Stops a generation now, wherever it runs. False when it is unknown to `owner` or already ended. */
  async cancel (streamId: string, owner: string | null): Promise<boolean> {
    const state = await this.find(streamId, owner)
    if (state === undefined || state.ended !== undefined) return false
    await this.stopAnywhere(streamId, 'cancelled')
    return true
  }

  /**
   * Graceful shutdown: refuse new generations, let running ones finish for up to `deadlineMs`,
   * then stop the rest with reason `shutdown` (their readers may resume elsewhere from the journal).
   */
  async shutdown (deadlineMs: number): Promise<void> {
    this.drainingFlag = true
    const running = [...this.local.values()]
    if (running.length === 0) return
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, deadlineMs) })
    await Promise.race([Promise.all(running.map((g) => g.ended)), deadline])
    clearTimeout(timer)
    for (const generation of this.local.values()) generation.stop('shutdown')
    await Promise.all([...this.local.values()].map((g) => g.ended))
  }

  private async stopAnywhere (streamId: string, reason: Extract<StopReason, 'cancelled' | 'superseded'>): Promise<void> {
    const generation = this.local.get(streamId)
    if (generation !== undefined) generation.stop(reason)
    else await this.deps.store.publishControl({ streamId, action: reason })
  }
}

function shuttingDown (): RelayError {
  return new RelayError('shutting_down', 503, 'the relay is shutting down; retry on another instance', 1)
}

/** Bytes of one stream id: 128 random bits. */
const ID_BYTES = 16
/**
 * Random bytes for 256 ids, filled from the CSPRNG at once (as `crypto.randomUUID()` caches its
 * entropy): one `randomFillSync` per 256 requests instead of a `randomBytes` call per request.
 * Each slice is used once.
 */
const idPool = Buffer.alloc(ID_BYTES * 256)
let idOffset = idPool.length

/** 128 random bits, URL-safe: stream ids are unguessable, since without keys the id is the capability. */
export function newStreamId (): string {
  if (idOffset === idPool.length) {
    randomFillSync(idPool)
    idOffset = 0
  }
  const id = idPool.toString('base64url', idOffset, idOffset + ID_BYTES)
  idOffset += ID_BYTES
  return id
}

/** Conversations are per owner: one key can never supersede or attach to another key's conversation. */
function conversationKeyOf (owner: string | null, conversationId: string): string {
  return `${owner ?? ''}\u0000${conversationId}`
}

function noop (): void {}
