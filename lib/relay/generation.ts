import { UpstreamError, modelOf } from '../upstream/types.js'
import type { ChatRequestBody, StreamOptions, UpstreamEvent, UpstreamReport } from '../upstream/types.js'
import { AnswerBuilder, OutputTally } from './answer.js'
import type { AssembledChoice, Usage } from './answer.js'
import { GenerationStopped, RelayError } from './errors.js'
import type { StopReason } from './errors.js'
import { DONE, errorData, eventData } from './events.js'
import { logFinished, logUpstreamFailure } from './generation-report.js'
import { makeEntry } from './journal.js'
import type { EndReason } from './journal.js'
import type { GenerationObserver } from './metrics.js'
import type { RelayStore } from './store.js'

/** Anything that streams normalized upstream events: the upstream client, or a test double. */
export interface UpstreamStreamer {
  stream (body: ChatRequestBody, options: StreamOptions): AsyncIterable<UpstreamEvent>
  /**
   * Optional push form (the upstream client has it): `onEvent` is called synchronously per event,
   * which spares a promise and a generator step per token. Used instead of `stream` when present.
   */
  consume?: (body: ChatRequestBody, options: StreamOptions, onEvent: (event: UpstreamEvent) => void) => Promise<void>
}

/** Who and what a generation is, as the application hooks see it. */
export interface GenerationInfo {
  streamId: string
  conversationId: string | undefined
  /** The key identity that made it (`null` when the relay runs open). */
  owner: string | null
  /** The request body sent upstream. */
  body: ChatRequestBody
}

/** How a generation ended, with the answer so far: what an application persists. */
export interface GenerationResult extends GenerationInfo {
  reason: EndReason
  /** Choice 0's text (the whole answer for ordinary requests). */
  text: string
  /** Choice 0's reasoning (a reasoning model's thinking, apart from `text`); `''` when none came. */
  reasoning: string
  finishReason: string | undefined
  choices: AssembledChoice[]
  usage: Usage
  /** True when the upstream sent no usage and `usage` is an estimate. */
  usageEstimated: boolean
  /** Set when `reason` is `error`. */
  error: { code: string, message: string } | undefined
}

/**
 * Application hooks, e.g. to persist the assistant's message. Errors they throw are logged,
 * never allowed to disturb the stream.
 */
export interface RelayHooks {
  /** A generation was accepted and is about to call the upstream. */
  onStart?: (info: GenerationInfo) => void | Promise<void>
  /** Every upstream event, synchronously on the hot path: keep it cheap. */
  onEvent?: (info: GenerationInfo, event: UpstreamEvent) => void
  /** The generation ended for any reason (also cancel, error, timeout) with the text so far. */
  onFinish?: (result: GenerationResult) => void | Promise<void>
}

/** What a generation needs from the relay. */
export interface GenerationDeps {
  upstream: UpstreamStreamer
  store: RelayStore
  hooks: RelayHooks
  /** Running time limit; 0 = none. */
  maxDurationMs: number
  /** How long to keep running with no reader attached. */
  detachGraceMs: number
  /** Metrics. */
  observer: GenerationObserver
  /** The model a request that names none is answered by (logs and metrics name it). */
  defaultModel: string
  /** Logs hook failures and the like; never gets the request body or keys. */
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void
}

/**
 * One answer being produced: reads the upstream, writes numbered events into its journal,
 * and ends the journal with a reason. It knows nothing of connections: readers come and go
 * (it only counts them, to stop the upstream when nobody has been listening for a while).
 */
export class Generation {
  readonly info: GenerationInfo
  /**
   * Settles when the first event is in the journal (resolves) or the generation ended before
   * (rejects with a {@link RelayError}: the upstream's failure, or {@link GenerationStopped}).
   */
  readonly firstEvent: Promise<void>
  /** Settles when the journal has ended. */
  readonly ended: Promise<EndReason>
  private readonly controller = new AbortController()
  private stopReason: StopReason | undefined
  private nextId = 1
  private readers = 0
  private graceTimer: NodeJS.Timeout | undefined
  /** The grace time runs: no reader has attached since it was (re)started. */
  private graceArmed = false
  private resolveFirst!: () => void
  private rejectFirst!: (err: Error) => void
  private started = false

  constructor (private readonly deps: GenerationDeps, info: GenerationInfo) {
    this.info = info
    this.firstEvent = new Promise((resolve, reject) => {
      this.resolveFirst = resolve
      this.rejectFirst = reject
    })
    // The first-event promise is awaited by whoever wants it; nobody may also be fine.
    this.firstEvent.catch(noop)
    this.ended = this.run()
    // Nobody is attached yet: the grace clock runs until a reader comes.
    this.armGrace()
  }

  /** Whether the generation has produced its first event. */
  get hasStarted (): boolean {
    return this.started
  }

  /** Stops the generation: the upstream request is aborted and the journal ends with `reason`. */
  stop (reason: StopReason): void {
    if (this.controller.signal.aborted) return
    this.stopReason = reason
    this.controller.abort(new GenerationStopped(reason))
  }

  /** A reader attached: the generation is wanted. */
  attach (): void {
    this.readers++
    // The timer is left to run: it does nothing when it fires with a reader attached, and the
    // next detach reschedules it (`refresh`), so a request costs one timer, not two set + two clear.
    this.graceArmed = false
  }

  /** A reader left; when none is left, the upstream is stopped after the grace time. */
  detach (): void {
    this.readers--
    if (this.readers <= 0) this.armGrace()
  }

  /** Starts (or restarts) the grace time: one Timeout per generation, rescheduled by `refresh()`. */
  private armGrace (): void {
    this.graceArmed = true
    if (this.graceTimer === undefined) {
      this.graceTimer = setTimeout(this.onGrace, this.deps.detachGraceMs)
      this.graceTimer.unref()
    } else {
      this.graceTimer.refresh()
    }
  }

  private readonly onGrace = (): void => {
    if (!this.graceArmed || this.readers > 0) return
    this.graceArmed = false
    void this.graceExpired()
  }

  /** Nobody here read for the whole grace time: stop, unless readers on other instances hold it. */
  private async graceExpired (): Promise<void> {
    let remote = false
    try {
      remote = await this.deps.store.hasRemoteReaders(this.info.streamId)
    } catch {
      // Store unreachable: no reader elsewhere can be reading through it either.
      remote = false
    }
    // A reader came (and maybe left, re-arming the grace time) while the store answered.
    if (this.readers > 0 || this.graceArmed) return
    if (remote) this.armGrace()
    else this.stop('abandoned')
  }

  /** Journals an event under the next id; a refused one (over the cap) takes no id. */
  private append (data: string, event?: string): boolean {
    if (!this.deps.store.append(this.info.streamId, [makeEntry(this.nextId, data, event)])) return false
    this.nextId++
    return true
  }

  private async run (): Promise<EndReason> {
    const { deps, info } = this
    const answer = deps.hooks.onFinish === undefined ? undefined : new AnswerBuilder()
    const durationTimer = deps.maxDurationMs > 0 ? setTimeout(() => this.stop('timeout'), deps.maxDurationMs) : undefined
    durationTimer?.unref()
    let reason: EndReason
    let error: { code: string, message: string } | undefined
    const { observer } = deps
    const eventHook = deps.hooks.onEvent
    let eventHookFailed = false
    const startedAt = performance.now()
    let last = startedAt
    let ttftMs: number | undefined
    // For the log line and the metrics: counts, not text (README "Logs and metrics").
    const tally = new OutputTally()
    const report: UpstreamReport = { attempts: 0, status: undefined, model: undefined }
    // One closure per generation, called per event (synchronously from the socket's data
    // callback when the upstream offers `consume`).
    const onEvent = (event: UpstreamEvent): void => {
      if (!this.append(eventData(event))) throw new JournalFull()
      const now = performance.now()
      if (this.started) {
        observer.token(now - last, event.type)
      } else {
        this.started = true
        ttftMs = now - last
        observer.firstToken(ttftMs, event.type)
        this.resolveFirst()
      }
      last = now
      tally.add(event)
      answer?.add(event)
      if (eventHook !== undefined) {
        try {
          eventHook.call(deps.hooks, info, event)
        } catch (err) {
          // Once per generation: a hook that fails on every token would otherwise log every token.
          if (!eventHookFailed) deps.log('error', 'onEvent hook failed (logged once per generation)', { streamId: info.streamId, err })
          eventHookFailed = true
        }
      }
    }
    try {
      await this.runStartHook()
      const options = { signal: this.controller.signal, report }
      if (deps.upstream.consume !== undefined) {
        await deps.upstream.consume(info.body, options, onEvent)
      } else {
        for await (const event of deps.upstream.stream(info.body, options)) onEvent(event)
      }
      if (!this.started) throw new UpstreamError('upstream_truncated', 'the upstream answer ended without any content', { status: 502 })
      this.append(DONE)
      reason = 'done'
    } catch (err) {
      if (this.stopReason !== undefined) {
        reason = this.stopReason
        if (!this.started) this.rejectFirst(new GenerationStopped(this.stopReason))
      } else {
        const failure = RelayError.from(err)
        error = { code: failure.code, message: failure.message }
        if (failure.code === 'internal') deps.log('error', 'generation failed', { streamId: info.streamId, err })
        if (err instanceof UpstreamError) {
          logUpstreamFailure(deps.log, { streamId: info.streamId, code: err.code, message: err.message, upstreamStatus: report.status, attempts: report.attempts, cause: err.cause })
        }
        // Journaled too, so a reader attaching later (POST /v1/chat, resume) sees why.
        this.append(errorData(error.code, error.message), 'error')
        reason = 'error'
        if (!this.started) this.rejectFirst(failure)
      }
    } finally {
      clearTimeout(durationTimer)
      clearTimeout(this.graceTimer)
      this.graceArmed = false
    }
    deps.store.end(info.streamId, reason)
    const { usage, estimated } = tally.usageOrEstimate(info.body)
    const summary = {
      streamId: info.streamId,
      owner: info.owner,
      model: report.model ?? modelOf(info.body, deps.defaultModel),
      reason,
      errorCode: error?.code,
      upstreamStatus: report.status,
      attempts: report.attempts,
      ttftMs,
      durationMs: performance.now() - startedAt,
      tokens: tally.deltas,
      usage,
      usageEstimated: estimated
    }
    observer.ended(summary)
    logFinished(deps.log, summary)
    if (answer !== undefined) this.finish(answer, reason, error, usage, estimated)
    return reason
  }

  /**
   * Runs the onStart hook, waiting for it no longer than the generation runs: a hook that never
   * settles must not hold a stop, the time limit or a shutdown. A failure is logged.
   */
  private async runStartHook (): Promise<void> {
    const { hooks, log } = this.deps
    if (hooks.onStart === undefined) return
    const { signal } = this.controller
    let onAbort: (() => void) | undefined
    try {
      const started = hooks.onStart(this.info)
      if (started === undefined || signal.aborted) return
      await Promise.race([started, new Promise<void>((resolve) => {
        onAbort = () => resolve()
        signal.addEventListener('abort', onAbort, { once: true })
      })])
    } catch (err) {
      log('error', 'onStart hook failed', { streamId: this.info.streamId, err })
    } finally {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
    }
  }

  /** Runs the onFinish hook with the assembled answer and the usage the summary counted. */
  private finish (answer: AnswerBuilder, reason: EndReason, error: { code: string, message: string } | undefined, usage: Usage, estimated: boolean): void {
    const choices = answer.result()
    const result: GenerationResult = {
      ...this.info,
      reason,
      text: choices[0]?.text ?? '',
      reasoning: choices[0]?.reasoning ?? '',
      finishReason: choices[0]?.finishReason,
      choices,
      usage,
      usageEstimated: estimated,
      error
    }
    Promise.resolve()
      .then(() => this.deps.hooks.onFinish?.(result))
      .catch((err: unknown) => this.deps.log('error', 'onFinish hook failed', { streamId: this.info.streamId, err }))
  }
}

/** The journal refused more events: the answer outgrew the per-generation memory cap. */
class JournalFull extends RelayError {
  constructor () {
    super('answer_too_large', 502, 'the answer exceeded the relay\'s journal size limit')
  }
}

function noop (): void {}
