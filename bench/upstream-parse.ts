/**
 * CPU cost of the upstream client per parsed event:
 * `npx tsx bench/upstream-parse.ts [tokens] [runs] [push|pull|both]`.
 *
 * The mock runs in a child process (its CPU is not ours) in fast mode: one token per SSE chunk,
 * batched 32 chunks per write, as fast as the socket takes them. This process streams the answer
 * through `UpstreamClient` — `consume()` (push: what the relay's generations use) and/or
 * `stream()` (pull: the async iterator), in alternating runs — and reports `process.cpuUsage()`
 * (user + system) per event delivered, the median of several runs after one warm-up of each.
 * Not a test: numbers depend on the machine.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { UpstreamClient } from '../lib/upstream/index.js'
import type { UpstreamEvent } from '../lib/upstream/index.js'

const tokens = Number(process.argv[2] ?? 100_000)
const runs = Number(process.argv[3] ?? 5)
const which = process.argv[4] ?? 'both'
const modes = (which === 'both' ? ['push', 'pull'] : [which]) as Array<'push' | 'pull'>
if (!modes.every(m => m === 'push' || m === 'pull')) throw new Error(`mode must be push, pull or both, got ${which}`)

const child = spawn(process.execPath, ['--import', 'tsx', new URL('../lib/mock/main.ts', import.meta.url).pathname], {
  env: { ...process.env, PORT: '0', MOCK_QUIET: '1' },
  stdio: ['ignore', 'pipe', 'inherit']
})
let out = ''
child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
while (!/listening on (\S+)/.test(out)) await once(child.stdout, 'data')
const url = /listening on (\S+)/.exec(out)?.[1] as string

const client = new UpstreamClient({ url, maxRetries: 0 })

async function run (mode: 'push' | 'pull'): Promise<{ events: number, cpuUs: number, wallMs: number }> {
  const body = { messages: [{ role: 'user', content: 'bench' }], mock: { fast: { tokens } } }
  const options = { signal: new AbortController().signal }
  const cpu = process.cpuUsage()
  const started = performance.now()
  let events = 0
  if (mode === 'push') {
    await client.consume(body, options, (event: UpstreamEvent) => {
      if (event.type === 'delta') events++
    })
  } else {
    for await (const event of client.stream(body, options)) {
      if (event.type === 'delta') events++
    }
  }
  const used = process.cpuUsage(cpu)
  return { events, cpuUs: used.user + used.system, wallMs: performance.now() - started }
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

for (const mode of modes) await run(mode) // warm-up: JIT, pool connection
const results = new Map(modes.map(mode => [mode, [] as Array<{ events: number, cpuUs: number, wallMs: number }>]))
for (let i = 0; i < runs; i++) {
  for (const mode of modes) results.get(mode)?.push(await run(mode))
}
console.log(`upstream parse: ${tokens} tokens × ${runs} runs, node ${process.version}`)
for (const [mode, list] of results) {
  for (const r of list) {
    if (r.events !== tokens) throw new Error(`${mode}: expected ${tokens} deltas, got ${r.events}`)
  }
  const perEvent = list.map(r => r.cpuUs / r.events)
  console.log(`  ${mode}: CPU per event median ${median(perEvent).toFixed(2)} µs (runs: ${perEvent.map(v => v.toFixed(2)).join(', ')}); ` +
    `median ${Math.round(median(list.map(r => r.events / r.wallMs * 1000))).toLocaleString('en')} events/s wall`)
}

await client.close()
child.kill('SIGTERM')
await once(child, 'exit')
