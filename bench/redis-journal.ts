/**
 * CPU per token of the Redis journal against the memory journal:
 * `npx tsx bench/redis-journal.ts [runs] [store|relay]` (both parts unless one is named).
 *
 * Two measurements, each the median of `runs` runs after a warm-up, each with and without Redis
 * (a real redis-server on a free port; its own CPU is reported apart, from /proc):
 *
 * - store: the store API alone, in this process. J journals with one local reader each; every
 *   event-loop turn appends one token to every journal (as tokens arrive: one upstream chunk per
 *   I/O callback), until T tokens each, then waits until Redis has them all; or (spread) one
 *   token of one journal per turn, journals in turn, as many streams' tokens arrive. CPU µs per token.
 * - relay: the whole service. The relay (`server.ts`) and the mock upstream (fast mode, paced)
 *   run in child processes; this process opens S concurrent `POST /v1/chat/stream` and reads
 *   them. The relay process's CPU (/proc: user + system) per token relayed.
 *
 * Not a test: numbers depend on the machine (and on whatever else shares its cores).
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { makeEntry } from '../lib/relay/journal.js'
import type { JournalEntry, JournalMeta } from '../lib/relay/journal.js'
import type { RelayStore } from '../lib/relay/store.js'
import { MemoryStore } from '../lib/relay/stores/memory.js'
import { RedisStore } from '../lib/relay/stores/redis.js'
import { startRedis } from '../test/fixtures/redis.js'

const runs = Number(process.argv[2] ?? 5)
const part = process.argv[3]
const root = new URL('..', import.meta.url).pathname
const CLK_TCK = 100

const redis = await startRedis()
// The fixture exposes the server's pid (for its CPU time); 0 (no figure) where it does not.
const redisPid = (): number => (redis as unknown as { pid?: number }).pid ?? 0

/** User + system CPU of a process, µs (/proc, 10 ms ticks: runs are long enough for that). */
function procCpuUs (pid: number): number {
  if (pid === 0) return 0
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1e6 / CLK_TCK
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

interface Sample { cpuUs: number, redisUs: number, tokens: number }

async function measure (runOnce: () => Promise<Sample>): Promise<{ us: number, redisUs: number, all: number[] }> {
  await runOnce() // warm-up: JIT, connections, script cache
  const samples: Sample[] = []
  for (let i = 0; i < runs; i++) samples.push(await runOnce())
  const per = samples.map((s) => s.cpuUs / s.tokens)
  return { us: median(per), redisUs: median(samples.map((s) => s.redisUs / s.tokens)), all: per }
}

// ---- store ----------------------------------------------------------------------------------

const META: JournalMeta = { kind: 'generation', owner: null, createdAt: 0 }
let round = 0

async function storeRun (store: RelayStore, journals: number, tokens: number, spread = false): Promise<Sample> {
  const keys = Array.from({ length: journals }, (_, i) => `r${round}-${i}`)
  round++
  let sink = 0
  for (const key of keys) {
    await store.create(key, META)
    store.subscribe(key, 0, { onEntries: (entries: readonly JournalEntry[]) => { for (const e of entries) sink += e.frame.length }, onEnd: () => {} })
  }
  const data = JSON.stringify({ type: 'delta', content: ' token' })
  const cpu = process.cpuUsage()
  const redisBefore = procCpuUs(redisPid())
  await new Promise<void>((resolve) => {
    let id = 0
    let next = 0
    const turn = spread
      // One token of one journal per turn, journals in turn (as 500 streams' tokens arrive).
      ? (): void => {
          if (next === 0) id++
          store.append(keys[next] as string, [makeEntry(id, data)])
          next = (next + 1) % keys.length
          if (id < tokens || next !== 0) setImmediate(turn)
          else resolve()
        }
      : (): void => {
          id++
          for (const key of keys) store.append(key, [makeEntry(id, data)])
          if (id < tokens) setImmediate(turn)
          else resolve()
        }
    turn()
  })
  for (const key of keys) store.end(key, 'done')
  if (store instanceof RedisStore) while (store.pendingEntries > 0) await new Promise((resolve) => setImmediate(resolve))
  const used = process.cpuUsage(cpu)
  if (sink === 0) throw new Error('nothing read')
  return { cpuUs: used.user + used.system, redisUs: procCpuUs(redisPid()) - redisBefore, tokens: journals * tokens }
}

// ---- relay ----------------------------------------------------------------------------------

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

async function startChild (args: string[], env: Record<string, string>, ready: (out: string) => boolean): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const deadline = Date.now() + 30_000
  while (!ready(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`child ${args.join(' ')} did not start:\n${out}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return child
}

/** One streamed answer; resolves with the number of delta events read. */
async function streamOne (port: number, tokens: number, tokensPerSecond: number): Promise<number> {
  return await new Promise((resolve, reject) => {
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'bench' }], mock: { fast: { tokens, tokensPerSecond } } })
    const req = request({ host: '127.0.0.1', port, path: '/v1/chat/stream', method: 'POST', agent: false, headers: { 'content-type': 'application/json', accept: 'text/event-stream' } }, (res) => {
      let deltas = 0
      let tail = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        const text = tail + chunk
        let i = text.indexOf('"delta"')
        while (i >= 0) {
          deltas++
          i = text.indexOf('"delta"', i + 7)
        }
        tail = text.slice(-6)
      })
      res.on('end', () => resolve(deltas))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function relayBench (withRedis: boolean, streams: number, tokens: number, tokensPerSecond: number): Promise<{ us: number, redisUs: number, all: number[] }> {
  const mockPort = await freePort()
  const mock = await startChild(['lib/mock/main.ts'], { PORT: String(mockPort), HOST: '127.0.0.1', MOCK_QUIET: '1' }, (out) => out.includes('listening on'))
  const port = await freePort()
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    UPSTREAM_URL: `http://127.0.0.1:${mockPort}/v1`,
    MAX_STREAMS_PER_CLIENT: '100000'
  }
  if (withRedis) env.REDIS_URL = redis.url
  const relay = await startChild(['server.ts'], env, () => true)
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false)
    if (ok) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  try {
    return await measure(async () => {
      const cpuBefore = procCpuUs(relay.pid as number)
      const redisBefore = procCpuUs(redisPid())
      const counts = await Promise.all(Array.from({ length: streams }, async () => await streamOne(port, tokens, tokensPerSecond)))
      const read = counts.reduce((a, b) => a + b, 0)
      if (read !== streams * tokens) throw new Error(`read ${read} deltas, expected ${streams * tokens}`)
      return { cpuUs: procCpuUs(relay.pid as number) - cpuBefore, redisUs: procCpuUs(redisPid()) - redisBefore, tokens: read }
    })
  } finally {
    relay.kill('SIGKILL')
    mock.kill('SIGKILL')
  }
}

// ---- report ---------------------------------------------------------------------------------

const fmt = (n: number): string => n.toFixed(2)
console.log(`redis journal vs memory journal: CPU µs per token, median of ${runs} runs; node ${process.version}, ${redis.url}`)

for (const [journals, tokens, spread] of part === 'relay' ? [] : [[1, 20_000, false], [100, 400, false], [100, 200, true]] as const) {
  const memory = new MemoryStore()
  const mem = await measure(async () => await storeRun(memory, journals, tokens, spread))
  await memory.close()
  const store = new RedisStore({ url: redis.url, prefix: 'bench:' })
  await store.waitUntilReady()
  const red = await measure(async () => await storeRun(store, journals, tokens, spread))
  await store.close()
  console.log(`store, ${journals} journal(s) × ${tokens} tokens, ${spread ? 'one token of one journal per turn' : 'one token per journal per turn'}:`)
  console.log(`  memory ${fmt(mem.us)} µs/token   redis ${fmt(red.us)} µs/token (+ redis-server ${fmt(red.redisUs)})   ratio ${fmt(red.us / mem.us)}`)
}

for (const [streams, tokens, rate] of part === 'store' ? [] : [[20, 1000, 200], [20, 2000, 0]] as const) {
  const mem = await relayBench(false, streams, tokens, rate)
  const red = await relayBench(true, streams, tokens, rate)
  console.log(`relay process, ${streams} streams × ${tokens} tokens at ${rate === 0 ? 'full speed' : `${rate} tokens/s each`}:`)
  console.log(`  memory ${fmt(mem.us)} µs/token   redis ${fmt(red.us)} µs/token (+ redis-server ${fmt(red.redisUs)})   ratio ${fmt(red.us / mem.us)}`)
  console.log(`  runs: memory ${mem.all.map(fmt).join(', ')}; redis ${red.all.map(fmt).join(', ')}`)
}

await redis.destroy()
