/**
 * A load-generator process (forked by bench/load/index.ts, pinned by the parent): holds
 * `streams` slots, each asking for one streamed answer after another on its own keep-alive
 * connection. One process holds at most ~20k sockets here (`ulimit -n`), so big runs use several.
 *
 * parent → worker: `{ type: 'start', config }`, `{ type: 'stop' }`
 * worker → parent: `{ type: 'progress', stats }` each second, `{ type: 'result', … }` after stop
 */
import { Histogram } from './histogram.js'
import { emptyStats, Slot } from './stream-client.js'
import type { SlotContext } from './stream-client.js'

export interface WorkerConfig {
  host: string
  port: number
  path: string
  /** The POST body; undefined: a GET (a channel subscriber). */
  body: unknown
  streams: number
  expectTokens: number
  /** Slots start evenly spread over this many ms. */
  rampMs: number
  windowStart: number
  windowEnd: number
  bucketMs: number
}

const send = (message: unknown): void => { process.send?.(message) }
let ctx: SlotContext | undefined
const slots: Slot[] = []
let progress: NodeJS.Timeout | undefined
const cpuAtStart = process.cpuUsage()

process.on('message', (message: { type: string, config?: WorkerConfig }) => {
  if (message.type === 'start' && message.config !== undefined) start(message.config)
  else if (message.type === 'stop') stop()
})
process.on('disconnect', () => process.exit(0))

function start (config: WorkerConfig): void {
  const body = Buffer.from(config.body === undefined ? '' : JSON.stringify(config.body))
  const head = config.body === undefined
    ? `GET ${config.path} HTTP/1.1\r\nhost: ${config.host}:${config.port}\r\naccept: text/event-stream\r\n\r\n`
    : `POST ${config.path} HTTP/1.1\r\nhost: ${config.host}:${config.port}\r\ncontent-type: application/json\r\n` +
      `accept: text/event-stream\r\ncontent-length: ${body.length}\r\n\r\n`
  const slices = Math.ceil((config.windowEnd - config.windowStart) / config.bucketMs)
  ctx = {
    host: config.host,
    port: config.port,
    request: Buffer.concat([Buffer.from(head), body]),
    expectTokens: config.expectTokens,
    subscriber: config.body === undefined,
    windowStart: config.windowStart,
    windowEnd: config.windowEnd,
    buckets: new Array(slices).fill(0),
    bucketMs: config.bucketMs,
    latency: new Histogram(),
    sliceLatency: Array.from({ length: slices }, () => new Histogram()),
    ttft: new Histogram(),
    stats: emptyStats(),
    stopping: false
  }
  const context = ctx
  for (let i = 0; i < config.streams; i++) {
    const slot = new Slot(context)
    slots.push(slot)
    setTimeout(() => slot.start(), config.streams <= 1 ? 0 : config.rampMs * i / config.streams)
  }
  progress = setInterval(() => send({ type: 'progress', stats: context.stats }), 1000)
}

function stop (): void {
  clearInterval(progress)
  if (ctx === undefined) return
  ctx.stopping = true
  for (const slot of slots) slot.stop()
  const cpu = process.cpuUsage(cpuAtStart)
  send({
    type: 'result',
    stats: ctx.stats,
    buckets: ctx.buckets,
    latency: ctx.latency.toJSON(),
    sliceLatency: ctx.sliceLatency.map((h) => h.toJSON()),
    ttft: ctx.ttft.toJSON(),
    cpuUs: cpu.user + cpu.system
  })
}

send({ type: 'ready' })
