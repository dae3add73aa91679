/**
 * Runs one load against one server and measures it: spawns the load workers (pinned with the
 * mock), waits for the ramp and warm-up, then samples the server's CPU (/proc) at every slice
 * of the measurement window, its RSS and event-loop delay at the end, and merges the workers'
 * latency histograms.
 */
import { Histogram } from './histogram.js'
import { cpuUs, rssBytes, startNode } from './procs.js'
import type { Child } from './procs.js'
import type { SlotStats } from './stream-client.js'
import type { WorkerConfig } from './worker.js'

type HistogramJson = ReturnType<Histogram['toJSON']>

export interface Load {
  streams: number
  tokensPerSecond: number
  /** Tokens per answer; a slot asks again when one ends. */
  tokens: number
  rampMs: number
  warmMs: number
  measureMs: number
  /** CPU/token is computed per slice of this length; the median slice is reported. */
  sliceMs?: number
}

export interface Target {
  name: string
  port: number
  /** The server process, for CPU, RSS and (with `ipc`) event-loop delay. */
  server?: Child
  /** Other processes whose CPU counts as the server's (nginx workers). */
  extraPids?: number[]
  /** `/v1/chat/stream`, or `/v1/chat/completions` for the mock itself. */
  path: string
  direct?: boolean
  /** Channel subscribers: GET `path`, streams that never end, events stamped by the publisher. */
  subscribe?: boolean
}

export interface Measured {
  server: string
  streams: number
  tokensPerSecond: number
  /** Tokens delivered per second in the window. */
  deliveredPerSecond: number
  cpuUsPerToken: number
  /** Every slice's CPU/token, to see the spread. */
  cpuUsPerTokenSlices: number[]
  /** Server CPU in % of one core. */
  serverCpuPct: number
  /** Mock + load workers CPU in % of one core (they share core 1). */
  clientCpuPct: number
  latencyMs: { p50: number, p90: number, p99: number, p999: number, max: number, count: number }
  /** p99 latency of each slice of the window: where the tail comes from (a steady slice, or the one where answers end and ask again). */
  p99MsSlices: number[]
  ttftMs: { p50: number, p99: number, count: number }
  rssMB: number
  eldMs?: { p50: number, p99: number, max: number, mean: number }
  stats: SlotStats
}

const round = (n: number, digits = 3): number => Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : n
const sleepUntil = (t: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, t - Date.now())))

export interface RunOptions {
  mock: Child
  clientCore: number | undefined
  progress: (line: string) => void
  /** Called when the ramp is over (before the warm-up): the broadcast scenario starts publishing then. */
  atRampEnd?: () => void
}

export async function runLoad (target: Target, load: Load, options: RunOptions): Promise<Measured> {
  const sliceMs = load.sliceMs ?? 2000
  const workers: Child[] = []
  const perWorker = 8000
  const count = Math.max(1, Math.ceil(load.streams / perWorker))
  for (let i = 0; i < count; i++) {
    workers.push(startNode(`load${i + 1}`, 'bench/load/worker.ts', { core: options.clientCore }))
  }
  await Promise.all(workers.map(async (w) => await w.next('ready')))
  const windowStart = Date.now() + load.rampMs + load.warmMs
  const windowEnd = windowStart + load.measureMs
  const body = target.subscribe === true
    ? undefined
    : {
        model: 'mock-model',
        messages: [{ role: 'user', content: 'Benchmark, please.' }],
        ...(target.direct === true ? { stream: true } : {}),
        mock: { fast: { tokens: load.tokens, tokensPerSecond: load.tokensPerSecond, timestamps: true } }
      }
  let remaining = load.streams
  workers.forEach((w, i) => {
    const streams = Math.ceil(remaining / (count - i))
    remaining -= streams
    const config: WorkerConfig = {
      host: '127.0.0.1',
      port: target.port,
      path: target.path,
      body,
      streams,
      expectTokens: target.subscribe === true ? Number.MAX_SAFE_INTEGER : load.tokens,
      rampMs: load.rampMs,
      windowStart,
      windowEnd,
      bucketMs: sliceMs
    }
    w.send({ type: 'start', config })
  })
  const latest = new Map<Child, SlotStats>()
  for (const w of workers) {
    w.proc.on('message', (m: { type?: string, stats?: SlotStats }) => { if (m.type === 'progress' && m.stats !== undefined) latest.set(w, m.stats) })
  }
  const started = Date.now()
  let lastTokens = 0
  const ticker = setInterval(() => {
    let tokens = 0
    let open = 0
    let errors = 0
    for (const s of latest.values()) {
      tokens += s.tokens
      open += s.streamsStarted - s.streamsCompleted
      errors += s.httpErrors + s.socketErrors + s.shortStreams + s.idGaps + s.idDuplicates
    }
    const phase = Date.now() < windowStart ? 'ramp/warm' : 'measure'
    options.progress(`${target.name}: ${((Date.now() - started) / 1000).toFixed(0)}s ${phase} open=${open} tok/s=${Math.round((tokens - lastTokens) / 2)} errors=${errors}`)
    lastTokens = tokens
  }, 2000)

  const pids = target.server === undefined ? [] : [target.server.pid, ...(target.extraPids ?? [])]
  const serverCpu = (): number => pids.reduce((sum, pid) => sum + cpuUs(pid), 0)
  const clientPids = [options.mock.pid, ...workers.map((w) => w.pid)]
  const clientCpu = (): number => clientPids.reduce((sum, pid) => sum + cpuUs(pid), 0)

  const rampTimer = options.atRampEnd === undefined ? undefined : setTimeout(options.atRampEnd, Math.max(0, windowStart - load.warmMs - Date.now()))
  await sleepUntil(windowStart)
  clearTimeout(rampTimer)
  target.server?.send({ type: 'eld-reset' })
  const cpuMarks: number[] = [serverCpu()]
  const client0 = clientCpu()
  const slices = Math.ceil(load.measureMs / sliceMs)
  for (let k = 1; k <= slices; k++) {
    await sleepUntil(windowStart + k * sliceMs)
    cpuMarks.push(serverCpu())
  }
  const client1 = clientCpu()
  const rss = target.server === undefined ? NaN : rssBytes(target.server.pid)
  let eld: Measured['eldMs']
  if (target.server !== undefined) {
    const reply = target.server.next<{ p50: number, p99: number, max: number, mean: number }>('eld', 5000)
    target.server.send({ type: 'eld' })
    const { p50, p99, max, mean } = await reply
    eld = { p50, p99, max, mean }
  }
  clearInterval(ticker)

  const results = await Promise.all(workers.map(async (w) => {
    const result = w.next<{ stats: SlotStats, buckets: number[], latency: HistogramJson, sliceLatency: HistogramJson[], ttft: HistogramJson }>('result', 20_000)
    w.send({ type: 'stop' })
    return await result
  }))
  await Promise.all(workers.map(async (w) => await w.kill()))

  const latency = new Histogram()
  const ttft = new Histogram()
  const buckets = new Array<number>(slices).fill(0)
  const sliceLatency = Array.from({ length: slices }, () => new Histogram())
  const stats: SlotStats = results[0]!.stats
  for (const [i, r] of results.entries()) {
    latency.merge(r.latency)
    ttft.merge(r.ttft)
    r.buckets.forEach((n, k) => { buckets[k] = (buckets[k] ?? 0) + n })
    r.sliceLatency.forEach((h, k) => sliceLatency[k]?.merge(h))
    if (i === 0) continue
    for (const key of Object.keys(stats) as Array<keyof SlotStats>) {
      if (key === 'statuses') {
        for (const [code, n] of Object.entries(r.stats.statuses)) stats.statuses[code] = (stats.statuses[code] ?? 0) + n
      } else {
        stats[key] += r.stats[key]
      }
    }
  }
  const perSlice: number[] = []
  for (let k = 0; k < slices; k++) {
    const tokens = buckets[k] ?? 0
    if (tokens > 0 && pids.length > 0) perSlice.push(((cpuMarks[k + 1] ?? 0) - (cpuMarks[k] ?? 0)) / tokens)
  }
  const tokensInWindow = stats.tokensInWindow
  const seconds = load.measureMs / 1000
  const serverCpuTotal = (cpuMarks[cpuMarks.length - 1] ?? 0) - (cpuMarks[0] ?? 0)
  const ms = (us: number): number => round(us / 1000)
  return {
    server: target.name,
    streams: load.streams,
    tokensPerSecond: load.tokensPerSecond,
    deliveredPerSecond: Math.round(tokensInWindow / seconds),
    cpuUsPerToken: round(median(perSlice), 2),
    cpuUsPerTokenSlices: perSlice.map((v) => round(v, 2)),
    serverCpuPct: round(serverCpuTotal / (seconds * 1e6) * 100, 1),
    clientCpuPct: round((client1 - client0) / (seconds * 1e6) * 100, 1),
    latencyMs: {
      p50: ms(latency.percentile(50)),
      p90: ms(latency.percentile(90)),
      p99: ms(latency.percentile(99)),
      p999: ms(latency.percentile(99.9)),
      max: ms(latency.max),
      count: latency.count
    },
    p99MsSlices: sliceLatency.map((h) => ms(h.percentile(99))),
    ttftMs: { p50: ms(ttft.percentile(50)), p99: ms(ttft.percentile(99)), count: ttft.count },
    rssMB: round(rss / 2 ** 20, 1),
    eldMs: eld,
    stats
  }
}

export function median (values: number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
