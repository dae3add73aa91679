/**
 * The side channel every benchmarked server shares: it listens on 127.0.0.1 (`PORT`, default any
 * free port), tells the parent its port over IPC, and answers event-loop-delay questions.
 *
 * parent → server: `{ type: 'eld-reset' }`, `{ type: 'eld' }`, `{ type: 'stop' }`,
 *   `{ type: 'publish-start', channel, intervalMs }` (servers that pass `publish`: the broadcast scenario),
 *   `{ type: 'memory' }` (the churn soak: the heap after a full GC when node runs with `--expose-gc`)
 * server → parent: `{ type: 'ready', port }`, `{ type: 'eld', p50, p99, max, mean }` (ms),
 *   `{ type: 'memory', gc, rss, heapUsed, heapTotal, external, arrayBuffers }` (bytes)
 *
 * ELD comes from `perf_hooks.monitorEventLoopDelay` (10 ms resolution timer): measured inside
 * the server, so the load generator's own delays are not in it.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { FastifyInstance } from 'fastify'

export interface EldReport {
  type: 'eld'
  p50: number
  p99: number
  max: number
  mean: number
}

export interface ServeOptions {
  /**
   * Publishes one event to every subscriber of `channel` (the broadcast scenario): `data` is a
   * string that starts with the publish time (epoch ms, 3 decimals) and a space, which the load
   * generator reads back as the event's send time; `seq` counts from 1.
   */
  publish?: (channel: string, data: string, seq: number) => void | Promise<unknown>
}

export async function serve (app: FastifyInstance, options: ServeOptions = {}): Promise<void> {
  const eld = monitorEventLoopDelay({ resolution: 10 })
  eld.enable()
  await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const send = (message: unknown): void => { if (process.send !== undefined) process.send(message) }
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'eld-reset') eld.reset()
    else if (message.type === 'eld') {
      const ms = (ns: number): number => Math.round(ns / 1e3) / 1e3
      send({ type: 'eld', p50: ms(eld.percentile(50)), p99: ms(eld.percentile(99)), max: ms(eld.max), mean: ms(eld.mean) } satisfies EldReport)
    } else if (message.type === 'publish-start' && options.publish !== undefined) {
      const { channel, intervalMs } = message as unknown as { channel: string, intervalMs: number }
      const publish = options.publish
      let seq = 0
      setInterval(() => {
        seq++
        const stamp = (performance.timeOrigin + performance.now()).toFixed(3)
        Promise.resolve(publish(channel, `${stamp} #${seq}`, seq)).catch((err: unknown) => { process.stderr.write(`publish failed: ${String(err)}\n`) })
      }, intervalMs)
    } else if (message.type === 'memory') {
      // What is live, not what the collector has not got round to yet: two full collections
      // (the first one's finalizers may free more).
      const gc = (globalThis as { gc?: () => void }).gc
      gc?.()
      gc?.()
      send({ type: 'memory', gc: gc !== undefined, ...process.memoryUsage() })
    } else if (message.type === 'stop') {
      // The bench measures, it does not test shutdown: leave at once.
      process.exit(0)
    }
  })
  // The parent went away (Ctrl-C, crash): do not outlive it.
  process.on('disconnect', () => process.exit(0))
  send({ type: 'ready', port })
  if (process.send === undefined) process.stdout.write(`listening on http://127.0.0.1:${port}\n`)
}

/** The upstream base URL (`…/v1`) every server reads. */
export function upstreamUrl (): string {
  const url = process.env.UPSTREAM_URL
  if (url === undefined || url === '') throw new Error('UPSTREAM_URL must be set')
  return url.replace(/\/+$/, '')
}
