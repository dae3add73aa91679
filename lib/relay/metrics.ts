import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Metric } from 'prom-client'
import type { UpstreamEvent } from '../upstream/types.js'
import type { GenerationSummary } from './generation-report.js'

/** What a generation reports while it runs. Every method is cheap: some run once per event. */
export interface GenerationObserver {
  /** The first event (of `type`), `ms` after the generation started. */
  firstToken: (ms: number, type: UpstreamEvent['type']) => void
  /** A later event (of `type`), `ms` after the previous one. */
  token: (gapMs: number, type: UpstreamEvent['type']) => void
  /** A generation ended: its reason, error, model, usage (README "Logs and metrics"). */
  ended: (summary: GenerationSummary) => void
}

/** Where a reader resumed or re-attached (`relay_resumes_total{via}`). */
export type ResumeVia = 'stream' | 'conversation' | 'channel'

/** A do-nothing observer, for a relay built without metrics. */
export const NO_OBSERVER: GenerationObserver = { firstToken () {}, token () {}, ended () {} }

/** The upstream event types, each exposed from the start (at 0) in `relay_events_total`. */
const EVENT_TYPES: ReadonlyArray<UpstreamEvent['type']> = ['delta', 'reasoning', 'tool_call', 'finish', 'usage']

/** Sources of the gauges, read at scrape time (nothing to update on the hot path). */
export interface MetricsSources {
  activeGenerations: () => number
  journalBytes?: () => number | undefined
  journals?: () => number | undefined
}

type Sample = { value: number, labels: Record<string, string | number>, metricName?: string }
interface Exposed { name: string, help: string, type: string, aggregator: string, values: Sample[] }

/**
 * The per-token metrics, without prom-client's per-call work (a closure and label hashing on
 * every `inc`/`observe`, about 1.5 µs a token): plain arithmetic, exposed at scrape time exactly
 * like prom-client's own metrics, and reset with the registry.
 */
abstract class FastMetric {
  readonly aggregator = 'sum'
  abstract readonly type: string

  constructor (readonly name: string, readonly help: string, registers: Registry[]) {
    for (const registry of registers) registry.registerMetric(this as unknown as Metric)
  }

  get (): Exposed {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values() }
  }

  protected abstract values (): Sample[]
  abstract reset (): void
}

/**
 * A label-less counter read from another one when scraped (`relay_tokens_total` is
 * `relay_events_total{type="delta"}`): nothing more to count on the per-token path.
 */
class DerivedCounter extends FastMetric {
  readonly type = 'counter'

  constructor (name: string, help: string, registers: Registry[], private readonly read: () => number) {
    super(name, help, registers)
  }

  protected values (): Sample[] {
    return [{ value: this.read(), labels: {} }]
  }

  /** Reset with the counter it reads. */
  reset (): void {}
}

/**
 * A counter with one label whose few values are known (event types), for the per-token path:
 * one property increment on an object of fixed shape (half the cost of a Map's get and set).
 */
class FastLabelCounter extends FastMetric {
  readonly type = 'counter'
  private counts: Record<string, number>

  constructor (name: string, help: string, private readonly label: string, private readonly known: readonly string[], registers: Registry[]) {
    super(name, help, registers)
    this.counts = this.zeros()
  }

  inc (value: string): void {
    this.counts[value] = (this.counts[value] ?? 0) + 1
  }

  /** The count of one label value. */
  count (value: string): number {
    return this.counts[value] ?? 0
  }

  protected values (): Sample[] {
    return Object.entries(this.counts).map(([value, count]) => ({ value: count, labels: { [this.label]: value } }))
  }

  reset (): void {
    this.counts = this.zeros()
  }

  private zeros (): Record<string, number> {
    return Object.fromEntries(this.known.map((value) => [value, 0]))
  }
}

/** A label-less histogram for the per-token path: `observe` is a scan of the bounds and three additions. */
class FastHistogram extends FastMetric {
  readonly type = 'histogram'
  private readonly bounds: number[]
  private counts: Float64Array
  private sum = 0
  private count = 0

  constructor (options: { name: string, help: string, buckets: number[], registers: Registry[] }) {
    super(options.name, options.help, options.registers)
    this.bounds = [...options.buckets].sort((a, b) => a - b)
    this.counts = new Float64Array(this.bounds.length)
  }

  observe (value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > (bounds[i] as number)) i++
    if (i < bounds.length) this.counts[i]!++
    this.sum += value
    this.count++
  }

  protected values (): Sample[] {
    const bucket = `${this.name}_bucket`
    let cumulative = 0
    const values: Sample[] = this.bounds.map((le, i) => {
      cumulative += this.counts[i] as number
      return { value: cumulative, labels: { le }, metricName: bucket }
    })
    values.push({ value: this.count, labels: { le: '+Inf' }, metricName: bucket })
    values.push({ value: this.sum, labels: {}, metricName: `${this.name}_sum` })
    values.push({ value: this.count, labels: {}, metricName: `${this.name}_count` })
    return values
  }

  reset (): void {
    this.counts = new Float64Array(this.bounds.length)
    this.sum = 0
    this.count = 0
  }
}

/**
 * The relay's Prometheus metrics, on a registry of its own (several relays in one process —
 * tests, an app with two instances — never collide on the global one).
 */
export class RelayMetrics implements GenerationObserver {
  readonly registry = new Registry()
  private readonly events: FastLabelCounter
  private readonly usage: Counter<'model' | 'kind' | 'estimated'>
  private readonly responses: Counter<'route' | 'status'>
  private readonly ttft: Histogram
  private readonly gap: FastHistogram
  private readonly upstreamErrors: Counter<'code'>
  private readonly generationsEnded: Counter<'reason'>
  private readonly closes: Counter<'reason'>
  private readonly resumesTotal: Counter<'via'>
  private readonly slowConsumers: Counter
  private readonly storeErrors: Counter<'code'>
  private readonly connections: Gauge

  constructor (sources: MetricsSources) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    const events = this.events = new FastLabelCounter('relay_events_total', 'Events relayed from the upstream, by type (delta, reasoning, tool_call, finish, usage)', 'type', EVENT_TYPES, registers)
    new DerivedCounter('relay_tokens_total', 'Content tokens relayed from the upstream (answer text pieces: delta events)', registers, () => events.count('delta')) // eslint-disable-line no-new
    this.usage = new Counter({
      name: 'relay_usage_tokens_total',
      help: 'Tokens of finished generations by model and kind (prompt, completion, reasoning); estimated="true" where the upstream sent no usage',
      labelNames: ['model', 'kind', 'estimated'],
      registers
    })
    this.responses = new Counter({ name: 'relay_http_responses_total', help: 'HTTP responses by route pattern and status (499: the client left before an answer)', labelNames: ['route', 'status'], registers })
    this.ttft = new Histogram({
      name: 'relay_time_to_first_token_seconds',
      help: 'Generation start to its first upstream event',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers
    })
    this.gap = new FastHistogram({
      name: 'relay_inter_token_gap_seconds',
      help: 'Time between two upstream events of a generation',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers
    })
    this.upstreamErrors = new Counter({ name: 'relay_upstream_errors_total', help: 'Generations that failed, by error code', labelNames: ['code'], registers })
    this.generationsEnded = new Counter({ name: 'relay_generations_total', help: 'Generations ended, by reason', labelNames: ['reason'], registers })
    this.closes = new Counter({ name: 'relay_stream_closes_total', help: 'Downstream streams closed, by reason (client = the reader left)', labelNames: ['reason'], registers })
    this.resumesTotal = new Counter({
      name: 'relay_resumes_total',
      help: 'Readers that resumed or re-attached: a generation stream after an event id, a conversation\'s stream, a channel after an event id',
      labelNames: ['via'],
      registers
    })
    this.slowConsumers = new Counter({ name: 'relay_slow_consumer_drops_total', help: 'Readers dropped for not reading (slow_consumer)', registers })
    this.storeErrors = new Counter({ name: 'relay_store_errors_total', help: 'Errors the store\'s Redis answered (not outages), by Redis error code', labelNames: ['code'], registers })
    this.connections = new Gauge({ name: 'relay_active_connections', help: 'Open downstream SSE streams', registers })
    new Gauge({ name: 'relay_active_generations', help: 'Generations running on this instance', registers, collect () { this.set(sources.activeGenerations()) } }) // eslint-disable-line no-new
    new Gauge({ // eslint-disable-line no-new
      name: 'relay_journal_bytes',
      help: 'Bytes held by the journals of this instance',
      registers,
      collect () { this.set(sources.journalBytes?.() ?? 0) }
    })
    new Gauge({ name: 'relay_journals', help: 'Journals held by this instance', registers, collect () { this.set(sources.journals?.() ?? 0) } }) // eslint-disable-line no-new
  }

  firstToken (ms: number, type: UpstreamEvent['type']): void {
    this.events.inc(type)
    this.ttft.observe(ms / 1000)
  }

  token (gapMs: number, type: UpstreamEvent['type']): void {
    this.events.inc(type)
    this.gap.observe(gapMs / 1000)
  }

  ended (summary: GenerationSummary): void {
    const { reason, errorCode, model, usage } = summary
    this.generationsEnded.inc({ reason })
    if (errorCode !== undefined) this.upstreamErrors.inc({ code: errorCode })
    const estimated = summary.usageEstimated ? 'true' : 'false'
    // Completion tokens include the reasoning ones (as upstreams bill them): reasoning is a part, not an addition.
    this.usage.inc({ model, kind: 'prompt', estimated }, usage.prompt_tokens)
    this.usage.inc({ model, kind: 'completion', estimated }, usage.completion_tokens)
    if (usage.reasoning_tokens !== undefined) this.usage.inc({ model, kind: 'reasoning', estimated }, usage.reasoning_tokens)
  }

  /** An HTTP response ended: `route` is the route's pattern (never the raw URL). */
  responded (route: string, status: number): void {
    this.responses.inc({ route, status: String(status) })
  }

  /** A downstream stream opened. */
  opened (): void {
    this.connections.inc()
  }

  /** A downstream stream closed. */
  closed (reason: string): void {
    this.connections.dec()
    this.closes.inc({ reason })
    if (reason === 'slow_consumer') this.slowConsumers.inc()
  }

  /** The store's Redis answered an error (RedisStore's `onError`). */
  storeError (code: string): void {
    this.storeErrors.inc({ code })
  }

  /** A reader resumed (`Last-Event-ID`, `?lastEventId`) or re-attached (a conversation's stream). */
  resumed (via: ResumeVia): void {
    this.resumesTotal.inc({ via })
  }
}
