/**
 * CPU cost of the upstream client per parsed event: `npx tsx bench/upstream-parse.ts [tokens] [runs]`.
 *
 * The mock runs in a child process (its CPU is not ours) in fast mode: one token per SSE chunk,
 * batched 32 chunks per write, as fast as the socket takes them. This process streams the answer
 * through `UpstreamClient` and reports `process.cpuUsage()` (user + system) per event yielded,
 * the median of several runs after one warm-up. Not a test: numbers depend on the machine.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { UpstreamClient } from '../lib/upstream/index.js'

const tokens = Number(process.argv[2] ?? 100_000)
const runs = Number(process.argv[3] ?? 5)

const child = spawn(process.execPath, ['--import', 'tsx', new URL('../lib/mock/main.ts', import.meta.url).pathname], {
  env: { ...process.env, PORT: '0', MOCK_QUIET: '1' },
  stdio: ['ignore', 'pipe', 'inherit']
})
let out = ''
child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
while (!/listening on (\S+)/.test(out)) await once(child.stdout, 'data')
const url = /listening on (\S+)/.exec(out)?.[1] as string

const client = new UpstreamClient({ url, maxRetries: 0 })

async function run (): Promise<{ events: number, cpuUs: number, wallMs: number }> {
  const body = { messages: [{ role: 'user', content: 'bench' }], mock: { fast: { tokens } } }
  const cpu = process.cpuUsage()
  const started = performance.now()
  let events = 0
  for await (const event of client.stream(body, { signal: new AbortController().signal })) {
    if (event.type === 'delta') events++
  }
  const used = process.cpuUsage(cpu)
  return { events, cpuUs: used.user + used.system, wallMs: performance.now() - started }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

await run() // warm-up: JIT, pool connection
const results = []
for (let i = 0; i < runs; i++) results.push(await run())
for (const r of results) {
  if (r.events !== tokens) throw new Error(`expected ${tokens} deltas, got ${r.events}`)
}
const perEvent = results.map(r => r.cpuUs / r.events)
console.log(`upstream parse: ${tokens} tokens × ${runs} runs, node ${process.version}`)
console.log(`  CPU per event: median ${median(perEvent).toFixed(2)} µs (runs: ${perEvent.map(v => v.toFixed(2)).join(', ')})`)
console.log(`  throughput:    median ${Math.round(median(results.map(r => r.events / r.wallMs * 1000))).toLocaleString('en')} events/s wall`)

await client.close()
child.kill('SIGTERM')
await once(child, 'exit')
