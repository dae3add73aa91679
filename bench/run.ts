/**
 * `npm run bench` (quick, ≈ 5 min) / `npm run bench -- --full`: this relay against its peers,
 * side by side, in one run. See bench/README.md for what each scenario means.
 *
 * Options: `--full`; `--only=cost,lengths,latency,ttft,capacity,idle,broadcast,nginx,redis,follower,ramp,soak` (scenarios);
 * `--servers=relay,naive-openai,…`; `--lengths=400,100,5` (answer lengths of `lengths`); `--rounds=N` (of `lengths`); `--no-pin`; `--cpu-prof` (the servers' profiles into bench/results/prof/);
 * `--base=<dir>`: a built checkout of another commit (its `dist/`, with `node_modules` beside it) measured as
 * `relay-base` in the same run (`lengths`, in step with this build; `latency`; `idle`; and every scenario of
 * a full run that measures every server): an A/B of two builds;
 * `--goals`: the scenarios of the ratio-to-the-floor goals at full size, this relay and the passthrough only
 * (lengths, latency, idle, soak), written as `latest-goals.*` (the README's goals table and chart).
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { median, runLoad } from './load/index.js'
import type { Load, Measured, Target } from './load/index.js'
import { canPin, repoRoot, rssBytes, startNode } from './load/procs.js'
import type { Child } from './load/procs.js'
import { renderMarkdown, renderSvg } from './report.js'
import type { Results } from './report.js'
import type { SoakResult } from './churn-soak.js'

const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const hit = argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (hit === undefined) return undefined
  return hit.includes('=') ? hit.slice(hit.indexOf('=') + 1) : ''
}
/** The goals run: the scenarios the goals of this relay against the floor need, at full size. */
const goalsRun = flag('goals') !== undefined
const full = flag('full') !== undefined || goalsRun
const pinOn = flag('no-pin') === undefined && canPin
const SERVER_CORE = pinOn ? 0 : undefined
const CLIENT_CORE = pinOn ? 1 : undefined
const only = flag('only')?.split(',') ?? (goalsRun ? ['lengths', 'latency', 'idle', 'soak'] : undefined)
const wanted = (scenario: string): boolean => only === undefined || only.includes(scenario)
const cpuProf = flag('cpu-prof') !== undefined

export const SERVERS = ['relay', 'naive-openai', 'fastify-sse-openai', 'ai-sdk', 'passthrough'] as const
/** `relay-base`: the relay of another build (`--base`), for an A/B in one run. */
type ServerName = typeof SERVERS[number] | 'relay-base'
const base = flag('base')
const servers = (flag('servers')?.split(',') ?? (goalsRun ? ['relay', 'passthrough'] : [...SERVERS])) as ServerName[]
if (base !== undefined) servers.push('relay-base')
/** Servers of the broadcast scenario only (a channel to N subscribers, no upstream). */
type BroadcastServer = 'relay' | 'better-sse-channel'
const scripts: Record<ServerName | BroadcastServer, string> = {
  relay: 'bench/servers/relay.ts',
  'relay-base': 'bench/servers/relay.ts',
  'better-sse-channel': 'bench/peers/better-sse-channel.ts',
  'naive-openai': 'bench/peers/naive-openai.ts',
  'fastify-sse-openai': 'bench/peers/fastify-sse-openai.ts',
  'ai-sdk': 'bench/peers/ai-sdk.ts',
  passthrough: 'bench/peers/passthrough.ts'
}

const t0 = Date.now()
const log = (line: string): void => {
  process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${line}\n`)
}

// ---- processes ----

async function startMock (): Promise<{ child: Child, port: number }> {
  const child = startNode('mock', 'bench/servers/mock.ts', { core: CLIENT_CORE })
  const { port } = await child.next<{ port: number }>('ready')
  return { child, port }
}

async function startServer (name: ServerName | BroadcastServer, upstream: string, env: Record<string, string> = {}): Promise<{ child: Child, port: number, idleRss: number }> {
  const nodeArgs = cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(repoRoot, 'bench/results/prof')}`] : []
  // BENCH_SERVER_NODE_ARGS="--trace-gc …": extra node flags for the measured servers only (diagnosis).
  nodeArgs.push(...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean))
  const child = startNode(name, scripts[name], {
    core: SERVER_CORE,
    nodeArgs,
    env: {
      UPSTREAM_URL: upstream,
      LOG_LEVEL: 'warn',
      // The bench is one client IP opening thousands of streams: lift the per-client limit.
      MAX_STREAMS_PER_CLIENT: '100000',
      MAX_STREAMS: '100000',
      ...(name === 'relay-base' && base !== undefined ? { BENCH_RELAY_DIST: join(base, 'dist') } : {}),
      ...env
    }
  })
  const { port } = await child.next<{ port: number }>('ready', 60_000)
  await new Promise((resolve) => setTimeout(resolve, 300))
  return { child, port, idleRss: rssBytes(child.pid) }
}

export type Result = Measured & { idleRssMB: number, rssPerStreamKB: number }

interface MeasureOptions {
  env?: Record<string, string>
  /** Put something between the load and the server (nginx): returns the port to load and pids to count. */
  front?: (port: number) => Promise<{ port: number, pids: number[], stop: () => Promise<void> }>
  label?: string
}

/** One server (and a fresh mock) for one load; both are stopped after. */
async function measure (name: ServerName | 'direct', load: Load, options: MeasureOptions = {}): Promise<Result> {
  const mock = await startMock()
  let server: { child: Child, port: number, idleRss: number } | undefined
  let front: Awaited<ReturnType<NonNullable<MeasureOptions['front']>>> | undefined
  try {
    let target: Target
    if (name === 'direct') {
      target = { name: options.label ?? 'mock (direct)', port: mock.port, path: '/v1/chat/completions', direct: true }
    } else {
      server = await startServer(name, `http://127.0.0.1:${mock.port}/v1`, options.env)
      target = { name: options.label ?? name, port: server.port, server: server.child, path: '/v1/chat/stream' }
      if (options.front !== undefined) {
        front = await options.front(server.port)
        target = { ...target, port: front.port, extraPids: front.pids }
      }
    }
    log(`${target.name}: ${load.streams} streams × ${load.tokensPerSecond} tok/s (${load.tokens}-token answers), ramp ${load.rampMs / 1000}s + warm ${load.warmMs / 1000}s + measure ${load.measureMs / 1000}s`)
    const m = await runLoad(target, load, { mock: mock.child, clientCore: CLIENT_CORE, progress: (line) => log(`  ${line}`) })
    const idleRssMB = server === undefined ? NaN : Math.round(server.idleRss / 2 ** 20 * 10) / 10
    const rssPerStreamKB = server === undefined ? NaN : Math.round((m.rssMB - idleRssMB) * 1024 / load.streams * 10) / 10
    log(`  → ${target.name}: ${summary(m)}`)
    return { ...m, idleRssMB, rssPerStreamKB }
  } finally {
    await front?.stop()
    if (server !== undefined) {
      if (cpuProf) {
        // --cpu-prof writes its profile on a clean exit only.
        server.child.send({ type: 'stop' })
        await new Promise((resolve) => setTimeout(resolve, 2000))
      }
      await server.child.kill()
    }
    await mock.child.kill()
  }
}

/**
 * Broadcast: `subscribers` SSE readers of one channel, the server publishing one event a second
 * in-process (its publish time embedded in the data). Delivery latency is publish → received;
 * CPU per delivered event is the server's CPU over the window / events received in it.
 */
async function measureBroadcast (name: BroadcastServer, load: Load): Promise<Result> {
  // No upstream is used: a closed port keeps the relay from starting its embedded mock.
  const server = await startServer(name, 'http://127.0.0.1:9/v1')
  try {
    const channel = `bench-${Date.now()}`
    const target: Target = { name, port: server.port, server: server.child, path: `/v1/channels/${channel}/stream`, subscribe: true }
    log(`${name}: ${load.streams} subscribers of one channel, ${1000 / BROADCAST_INTERVAL_MS} event/s, ramp ${load.rampMs / 1000}s + warm ${load.warmMs / 1000}s + measure ${load.measureMs / 1000}s`)
    const m = await runLoad(target, load, {
      mock: server.child,
      clientCore: CLIENT_CORE,
      progress: (line) => log(`  ${line.replace('tok/s', 'deliveries/s')}`),
      atRampEnd: () => server.child.send({ type: 'publish-start', channel, intervalMs: BROADCAST_INTERVAL_MS })
    })
    // Per event over the whole window (slices of 2 s hold only two events each).
    const windowCpuUs = m.serverCpuPct / 100 * load.measureMs * 1000
    const delivered = m.stats.tokensInWindow
    const perEvent = delivered > 0 ? Math.round(windowCpuUs / delivered * 100) / 100 : NaN
    const idleRssMB = Math.round(server.idleRss / 2 ** 20 * 10) / 10
    const result: Result = { ...m, clientCpuPct: NaN, cpuUsPerToken: perEvent, idleRssMB, rssPerStreamKB: Math.round((m.rssMB - idleRssMB) * 1024 / load.streams * 10) / 10 }
    log(`  → ${m.deliveredPerSecond} deliveries/s (of ${load.streams}/s), CPU ${perEvent} µs per delivered event (server ${m.serverCpuPct}% of a core), ` +
      `delivery latency p50 ${m.latencyMs.p50} ms p99 ${m.latencyMs.p99} ms max ${m.latencyMs.max} ms, RSS ${m.rssMB} MB, errors ${errorsOf(m)}`)
    return result
  } finally {
    await server.child.kill()
  }
}

export function errorsOf (m: Measured): number {
  const s = m.stats
  return s.httpErrors + s.socketErrors + s.shortStreams + s.longStreams + s.idGaps + s.idDuplicates
}

function summary (m: Measured): string {
  return `${m.deliveredPerSecond} tok/s, CPU ${m.cpuUsPerToken} µs/token (server ${m.serverCpuPct}% of a core, client ${m.clientCpuPct}%), ` +
    `latency p50 ${m.latencyMs.p50} ms p99 ${m.latencyMs.p99} ms (per slice ${m.p99MsSlices.map((v) => Math.round(v)).join('/')}), RSS ${m.rssMB} MB` +
    (m.eldMs === undefined ? '' : `, ELD p99 ${m.eldMs.p99} ms`) + `, errors ${errorsOf(m)}`
}

// ---- scenarios ----

/**
 * The loads. Quick mode (about five minutes) shortens ramps and windows and scales
 * capacity down; it never changes a shape (streams, rates and answer lengths per scenario).
 */
const LOADS = {
  // Cost: a fixed load every server carries without saturating its core.
  cost: full
    ? { streams: 500, tokensPerSecond: 20, tokens: 200, rampMs: 2000, warmMs: 2000, measureMs: 16_000, sliceMs: 2000 }
    : { streams: 500, tokensPerSecond: 20, tokens: 200, rampMs: 1500, warmMs: 1000, measureMs: 4000, sliceMs: 2000 },
  latency: full
    ? { streams: 1000, tokensPerSecond: 20, tokens: 200, rampMs: 2000, warmMs: 2000, measureMs: 16_000, sliceMs: 2000 }
    : { streams: 1000, tokensPerSecond: 20, tokens: 200, rampMs: 1500, warmMs: 1000, measureMs: 4000, sliceMs: 2000 },
  capacity: full
    ? { streams: 10_000, tokensPerSecond: 5, tokens: 100, rampMs: 10_000, warmMs: 4000, measureMs: 16_000, sliceMs: 2000 }
    : { streams: 5000, tokensPerSecond: 5, tokens: 100, rampMs: 3000, warmMs: 1000, measureMs: 4000, sliceMs: 2000 },
  // Time to first token: few streams, short answers, so each slot asks often.
  ttft: { streams: 20, tokensPerSecond: 50, tokens: 5, rampMs: 500, warmMs: 500, measureMs: full ? 10_000 : 2000, sliceMs: 1000 },
  // Answer lengths: 100 streams, this relay against the floor, answers of 400, 100 and 5 tokens
  // (the last gives the fixed cost of a request: start, headers, journal, limits, the finish).
  lengths: { streams: 100, tokensPerSecond: 20, tokens: 0, rampMs: 1500, warmMs: 1500, measureMs: full ? 10_000 : 4000, sliceMs: 2000 },
  // Held streams: 9,000 answers open at once, mostly idle (a token every 5 s): memory per stream.
  // (Each stream holds two sockets, the client's and the upstream's: 10,000 would pass the 20,000
  // open files a process may have on the machine this was built on, as `ulimit -Hn` says.)
  idle: { streams: 9000, tokensPerSecond: 0.2, tokens: 40, rampMs: 10_000, warmMs: full ? 5000 : 2000, measureMs: full ? 10_000 : 4000, sliceMs: 2000 },
  // Broadcast: 10,000 subscribers in both modes (quick only measures a shorter window).
  broadcast: { streams: 10_000, tokensPerSecond: 1, tokens: 0, rampMs: full ? 5000 : 4000, warmMs: full ? 2000 : 1000, measureMs: full ? 20_000 : 4000, sliceMs: 2000 }
} satisfies Record<string, Load>
const BROADCAST_INTERVAL_MS = 1000

const results: Results = {
  date: new Date().toISOString(),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, ramGB: Math.round(totalmem() / 2 ** 30) },
  node: process.version,
  command: `npm run bench${goalsRun ? ' -- --goals' : full ? ' -- --full' : ''}`,
  mode: full ? 'full' : 'quick',
  pinning: pinOn ? 'server on core 0; mock and load generator on core 1 (taskset)' : 'not pinned',
  loads: LOADS,
  goals: []
}

async function costScenario (): Promise<void> {
  const rounds = full ? 3 : 1
  const runs: Record<string, Result[]> = {}
  for (let round = 1; round <= rounds; round++) {
    log(`cost, round ${round}/${rounds}`)
    // Servers interleaved in every round: a neighbour's test slows one round of all, not all rounds of one.
    for (const name of servers) (runs[name] ??= []).push(await measure(name, LOADS.cost))
  }
  results.cost = {}
  for (const [name, list] of Object.entries(runs)) {
    results.cost[name] = {
      cpuUsPerToken: Math.round(median(list.flatMap((r) => r.cpuUsPerTokenSlices)) * 100) / 100,
      p50Ms: median(list.map((r) => r.latencyMs.p50)),
      p99Ms: median(list.map((r) => r.latencyMs.p99)),
      rssMB: median(list.map((r) => r.rssMB)),
      eldP99Ms: median(list.map((r) => r.eldMs?.p99 ?? NaN)),
      errors: list.reduce((n, r) => n + errorsOf(r), 0),
      runs: list
    }
  }
}

/** The answer lengths of the `lengths` scenario (`--lengths=5` to profile one). */
const LENGTHS: readonly number[] = flag('lengths')?.split(',').map(Number) ?? [400, 100, 5]

/**
 * CPU per token (and per request, for 5-token answers) of this relay and the passthrough floor
 * at three answer lengths: rounds interleaved (relay, floor, relay, floor…), the best round of
 * each kept, as a neighbour's load only ever adds CPU.
 */
async function lengthsScenario (): Promise<void> {
  const names = (['relay', 'relay-base', 'passthrough'] as const).filter((name) => servers.includes(name))
  const rounds = Number(flag('rounds') ?? (full ? 3 : 2))
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a whole number of rounds, got ${flag('rounds')}`)
  const best: Record<string, Record<string, number>> = {}
  /** Per answer length, this build's CPU ÷ the base build's, one ratio per round (`--base`). */
  const versusBase: Record<string, number[]> = {}
  for (let round = 1; round <= rounds; round++) {
    for (const tokens of LENGTHS) {
      const thisRound: Record<string, number> = {}
      // With --base, the two builds run at the same time, each under the same load, both on the
      // server core: whatever slows the machine in that window slows both, so their ratio holds.
      const paired: ServerName[] = base === undefined ? [] : names.filter((name) => name === 'relay' || name === 'relay-base')
      const groups: ServerName[][] = [...(paired.length > 0 ? [paired] : []), ...names.filter((name) => !paired.includes(name)).map((name) => [name])]
      for (const group of groups) {
        log(`lengths, round ${round}/${rounds}: ${tokens}-token answers`)
        const measured = await Promise.all(group.map(async (name) => await measure(name, { ...LOADS.lengths, tokens })))
        group.forEach((name, i) => {
          const m = measured[i] as Result
          thisRound[name] = m.cpuUsPerToken
          const row = (best[String(tokens)] ??= {})
          row[name] = Math.min(row[name] ?? Infinity, m.cpuUsPerToken)
        })
      }
      if (thisRound.relay !== undefined && thisRound['relay-base'] !== undefined) (versusBase[String(tokens)] ??= []).push(thisRound.relay / thisRound['relay-base'])
    }
  }
  results.lengthsRounds = rounds
  results.lengths = LENGTHS.map((tokens) => {
    const row = best[String(tokens)] ?? {}
    const ratios = versusBase[String(tokens)]
    return {
      tokens,
      relayUsPerToken: row.relay ?? NaN,
      floorUsPerToken: row.passthrough ?? NaN,
      ...(ratios === undefined ? {} : { baseUsPerToken: row['relay-base'] ?? NaN, versusBase: Math.round(median(ratios) * 1000) / 1000, versusBaseRounds: ratios.map((r) => Math.round(r * 1000) / 1000) })
    }
  })
}

async function latencyScenario (): Promise<void> {
  results.latency = {}
  // The passthrough too: the first-token and tail goals are ratios to it.
  const names: ServerName[] = full ? servers : servers.filter((s) => s === 'relay' || s === 'relay-base' || s === 'passthrough')
  results.latency.direct = await measure('direct', LOADS.latency)
  for (const name of names) results.latency[name] = await measure(name, LOADS.latency)
}

async function capacityScenario (): Promise<void> {
  if (!servers.includes('relay')) return
  results.capacity = await measure('relay', LOADS.capacity)
}

/** RSS per held, mostly idle stream: this relay (and the passthrough, for reference). */
async function idleScenario (): Promise<void> {
  results.idle = {}
  for (const name of servers.filter((s) => s === 'relay' || s === 'relay-base' || s === 'passthrough')) results.idle[name] = await measure(name, LOADS.idle)
}

async function ttftScenario (): Promise<void> {
  results.ttft = {}
  results.ttft.direct = await measure('direct', LOADS.ttft)
  const names: ServerName[] = full ? servers : servers.filter((s) => s === 'relay')
  for (const name of names) results.ttft[name] = await measure(name, LOADS.ttft)
}

/** Highest number of 5 tok/s streams with p99 ≤ 100 ms and no errors; stops when the client core saturates. */
async function rampScenario (): Promise<void> {
  results.ramp = {}
  // Full: 1,000, then 2,500 more a step, every server. Quick: two coarse steps with short
  // windows, this relay and the floor only (the SDK peers do not carry the first step).
  const steps = full ? [1000, 2500, 5000, 7500, 10_000, 12_500, 15_000, 20_000] : [2500, 5000]
  for (const name of full ? servers : servers.filter((s) => s === 'relay' || s === 'passthrough')) {
    const points: NonNullable<Results['ramp']>[string]['steps'] = []
    let sustained = 0
    let limit = 'none within the steps'
    for (const streams of steps) {
      const m = await measure(name, { streams, tokensPerSecond: 5, tokens: 100, rampMs: Math.max(full ? 3000 : 2000, streams * (full ? 0.5 : 0.6)), warmMs: full ? 3000 : 1000, measureMs: full ? 6000 : 2000, sliceMs: 2000 })
      const errors = errorsOf(m)
      points.push({ streams, tokensPerSecond: m.deliveredPerSecond, p99Ms: m.latencyMs.p99, serverCpuPct: m.serverCpuPct, clientCpuPct: m.clientCpuPct, errors })
      const failed = m.latencyMs.p99 > 100 || errors > 0 || m.deliveredPerSecond < streams * 5 * 0.9
      if (m.clientCpuPct > 90 && (failed || m.serverCpuPct < 90)) {
        // The load side could not keep up: whatever the server did, this step says nothing of it.
        limit = `the load side's core (mock + load generator ${m.clientCpuPct}%) saturated at ${streams} streams (server ${m.serverCpuPct}%): a floor, not the server's limit`
        break
      }
      if (failed) {
        limit = `p99 ${m.latencyMs.p99} ms, ${errors} errors, ${m.deliveredPerSecond} tok/s at ${streams} streams (server ${m.serverCpuPct}% of a core)`
        break
      }
      sustained = streams
    }
    results.ramp[name] = { sustainedStreams: sustained, sustainedTokensPerSecond: sustained * 5, limit, steps: points }
  }
}

async function nginxScenario (): Promise<void> {
  if (!servers.includes('relay')) return
  const { startBenchNginx } = await import('./servers/nginx.js')
  const direct = results.latency?.relay ?? await measure('relay', LOADS.latency)
  const viaNginx = await measure('relay', LOADS.latency, {
    label: 'relay via nginx',
    front: async (port) => {
      // nginx's worker runs on the load side's core; its CPU is not counted as the relay's.
      const nginx = await startBenchNginx(port, CLIENT_CORE)
      return { port: nginx.port, pids: [], stop: nginx.stop }
    }
  })
  results.nginx = { direct, viaNginx }
}

async function redisScenario (): Promise<void> {
  if (!servers.includes('relay')) return
  const { startRedis } = await import('../test/fixtures/redis.js')
  const redis = await startRedis()
  try {
    // Back to back, same load: the memory journal's figure is measured again here, not taken
    // from the cost scenario minutes earlier (a neighbour's load would skew the ratio).
    const memory = await measure('relay', LOADS.cost, { label: 'relay (memory journal)' })
    const withRedis = await measure('relay', LOADS.cost, { label: 'relay + Redis journal', env: { REDIS_URL: redis.url } })
    results.redis = { memory, redis: withRedis, ratio: Math.round(withRedis.cpuUsPerToken / memory.cpuUsPerToken * 100) / 100 }
  } finally {
    await redis.destroy()
  }
}

/** Redis's CPU per followed event at 100, 1,000 and 5,000 followed streams (bench/redis-follower.ts). */
async function followerScenario (): Promise<void> {
  const { measureFollowerCost, measureJournalMemory, describeFollowerCost } = await import('./redis-follower.js')
  const { startTopology } = await import('../test/fixtures/redis-topology.js')
  const rate = 2000
  const redis = await startTopology('standalone')
  try {
    const points = []
    for (const streams of [100, 1000, 5000]) {
      log(`follower: ${streams} streams produced on A, read on B, ${rate} events/s in all`)
      const point = await measureFollowerCost(redis, streams, rate, full ? 10_000 : 4000)
      for (const line of describeFollowerCost(point)) log(`  ${line}`)
      points.push(point)
    }
    results.follower = { topology: 'standalone', ratesPerSecond: rate, points, memory: await measureJournalMemory(redis) }
  } finally {
    await redis.destroy()
  }
}

async function broadcastScenario (): Promise<void> {
  results.broadcast = {}
  const names: BroadcastServer[] = ['relay', 'better-sse-channel']
  for (const name of names) {
    if (name === 'relay' && !servers.includes('relay')) continue
    results.broadcast[name] = await measureBroadcast(name, LOADS.broadcast)
  }
}

/**
 * Churn soak (bench/churn-soak.ts, the service's default settings): RSS after rounds of streams
 * dropped and resumed, against what is live. Not pinned: it measures memory, not CPU.
 */
async function soakScenario (): Promise<void> {
  if (!servers.includes('relay')) return
  const out = join(tmpdir(), `fastify-llm-relay-soak-${process.pid}.json`)
  // Quick: fewer rounds (the RSS after them is lower than after 8: compare like with like).
  const rounds = full ? 8 : 3
  log(`soak: bench/churn-soak.ts --settings=default --rounds=${rounds} (500 answers × 100 tokens a round, half dropped and resumed)`)
  const soak = startNode('soak', 'bench/churn-soak.ts', { args: ['--settings=default', `--rounds=${rounds}`, `--out=${out}`] })
  const code = await soak.exited
  if (code !== 0) throw new Error(`bench/churn-soak.ts exited with ${String(code)}`)
  const [result] = JSON.parse(readFileSync(out, 'utf8')) as SoakResult[]
  rmSync(out, { force: true })
  if (result === undefined) throw new Error('bench/churn-soak.ts wrote no result')
  log(`  → RSS ${result.startRssMB} → ${result.rssMB} MB, live ${result.liveMB} MB (${(result.rssMB / result.liveMB).toFixed(2)}×), ${result.bad} answers cut or repeated`)
  results.soak = result
}

const fmtMs = (us: number): string => (us / 1000).toFixed(2)

function goals (): void {
  const g = results.goals
  const cost = results.cost
  const relay = cost?.relay?.cpuUsPerToken
  const floor = cost?.passthrough?.cpuUsPerToken
  if (relay !== undefined && floor !== undefined) {
    g.push({ goal: 'CPU per token ≤ 1.3× the passthrough floor', measured: `${(relay / floor).toFixed(2)}× (${relay} vs ${floor} µs)`, met: relay / floor <= 1.3 })
  }
  if (relay !== undefined && cost !== undefined) {
    const peers = Object.entries(cost).filter(([name]) => name !== 'relay' && name !== 'passthrough')
    if (peers.length > 0) {
      const cheapest = Math.min(...peers.map(([, c]) => c.cpuUsPerToken))
      g.push({ goal: 'cheaper per token than every SDK peer', measured: `${relay} µs vs the cheapest peer's ${cheapest} µs`, met: relay < cheapest })
    }
  }
  const cap = results.capacity
  if (cap !== undefined) {
    const label = `${cap.streams} streams × ${cap.tokensPerSecond} tok/s`
    g.push({ goal: `${full ? '' : '(quick: scaled down) '}${label}: p99 ≤ 20 ms`, measured: `p99 ${cap.latencyMs.p99} ms, ${errorsOf(cap)} errors`, met: cap.latencyMs.p99 <= 20 && errorsOf(cap) === 0 })
    g.push({ goal: `${label}: RSS ≤ 512 MB`, measured: `${cap.rssMB} MB (${cap.rssPerStreamKB} KB/stream)`, met: cap.rssMB <= 512 })
  }
  for (const { tokens, relayUsPerToken: relayUs, floorUsPerToken: floorUs } of results.lengths ?? []) {
    const ratio = relayUs / floorUs
    if (!Number.isFinite(ratio)) continue
    if (tokens === 5) {
      g.push({ goal: 'CPU per request (5-token answers) ≤ 1.5× the floor', measured: `${ratio.toFixed(2)}× (${fmtMs(relayUs * tokens)} vs ${fmtMs(floorUs * tokens)} ms)`, met: ratio <= 1.5, value: ratio, limit: 1.5, unit: '×' })
    } else {
      const bound = tokens >= 400 ? 1.15 : 1.3
      g.push({ goal: `CPU per token on ${tokens}-token answers ≤ ${bound}× the floor`, measured: `${ratio.toFixed(2)}× (${relayUs} vs ${floorUs} µs)`, met: ratio <= bound, value: ratio, limit: bound, unit: '×' })
    }
  }
  const [relayLat, floorLat] = [results.latency?.relay, results.latency?.passthrough]
  if (relayLat !== undefined && floorLat !== undefined) {
    const ttft = relayLat.ttftMs.p50 / floorLat.ttftMs.p50
    g.push({ goal: '1,000 streams × 20 tok/s: time to first token p50 ≤ 2× the passthrough\'s', measured: `${ttft.toFixed(2)}× (${relayLat.ttftMs.p50} vs ${floorLat.ttftMs.p50} ms)`, met: ttft <= 2, value: ttft, limit: 2, unit: '×' })
    const steady = (m: Result): number => median(m.p99MsSlices)
    const tail = steady(relayLat) / steady(floorLat)
    g.push({ goal: '1,000 streams × 20 tok/s: p99 latency in steady slices ≤ 1.5× the passthrough\'s', measured: `${tail.toFixed(2)}× (median slice p99 ${steady(relayLat).toFixed(1)} vs ${steady(floorLat).toFixed(1)} ms)`, met: tail <= 1.5, value: tail, limit: 1.5, unit: '×' })
  }
  const idle = results.idle?.relay
  if (idle !== undefined) {
    const floor = results.idle?.passthrough
    g.push({ goal: `${idle.streams.toLocaleString('en')} held streams × ${idle.tokensPerSecond} tok/s: RSS ≤ 16 KB per stream`, measured: `${idle.rssPerStreamKB} KB (RSS ${idle.rssMB} MB, ${idle.idleRssMB} MB before the first stream${floor === undefined ? '' : `; the passthrough ${floor.rssPerStreamKB} KB`}), ${errorsOf(idle)} errors`, met: idle.rssPerStreamKB <= 16 && errorsOf(idle) === 0, value: idle.rssPerStreamKB, limit: 16, unit: ' KB' })
  }
  const soak = results.soak
  if (soak !== undefined) {
    const ratio = soak.rssMB / soak.liveMB
    g.push({ goal: `RSS after a churn soak (${soak.rounds} rounds of ${soak.streams} answers, half resumed) ≤ 1.5× what is live (heap after a full GC plus external memory)`, measured: `${ratio.toFixed(2)}× (RSS ${soak.startRssMB} → ${soak.rssMB} MB, live ${soak.liveMB} MB; of the RSS ${soak.fileRssMB} MB mapped from files, V8 heap committed ${soak.heapCommittedMB} MB), ${soak.bad} answers cut or repeated`, met: ratio <= 1.5 && soak.bad === 0, value: ratio, limit: 1.5, unit: '×' })
  }
  const lat = results.latency?.relay
  if (lat !== undefined) {
    g.push({ goal: '1,000 streams × 20 tok/s: p99 ≤ 2 ms', measured: `p99 ${lat.latencyMs.p99} ms (direct to the mock: ${results.latency?.direct?.latencyMs.p99 ?? '?'} ms)`, met: lat.latencyMs.p99 <= 2 })
  }
  if (results.redis !== undefined) {
    g.push({ goal: 'Redis journal ≤ 1.3× the memory journal per token', measured: `${results.redis.ratio}×`, met: results.redis.ratio <= 1.3 })
  }
  const follow = results.follower?.points
  const [few, many] = [follow?.[0], follow?.at(-1)]
  if (few !== undefined && many !== undefined) {
    const ratio = many.cpuUsPerEvent / few.cpuUsPerEvent
    g.push({ goal: `Redis CPU per followed event within 1.5× from ${few.streams} to ${many.streams} followed streams`, measured: `${ratio.toFixed(2)}× (${few.cpuUsPerEvent} → ${many.cpuUsPerEvent} µs)`, met: ratio <= 1.5 })
  }
}

// ---- main ----

log(`fastify-llm-relay bench (${results.mode}); ${results.machine.cpu}, ${results.machine.cores} cores, ${results.machine.ramGB} GB, Node ${results.node}`)
log(`pinning: ${results.pinning}`)
// The relay runs as shipped: the compiled dist/ that `npm start` runs, not the TypeScript
// through tsx (whose transform wraps every named closure in a __name() call on the hot path).
log('building dist/ (npm run build)')
execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' })
const scenarios: Array<[string, () => Promise<void>]> = [
  ['cost', costScenario],
  ['lengths', lengthsScenario],
  ['latency', latencyScenario],
  ['ttft', ttftScenario],
  ['capacity', capacityScenario],
  ['idle', idleScenario],
  ['broadcast', broadcastScenario],
  ['nginx', nginxScenario],
  ['redis', redisScenario],
  ['follower', followerScenario],
  ['ramp', rampScenario],
  ['soak', soakScenario]
]
for (const [name, run] of scenarios) {
  if (!wanted(name)) continue
  log(`== ${name} ==`)
  await run()
}
goals()
const dir = join(repoRoot, 'bench/results')
mkdirSync(dir, { recursive: true })
const markdown = renderMarkdown(results)
const stamp = results.date.slice(0, 19).replace(/[:T]/g, '-')
// A run of some scenarios or servers only does not replace the latest complete one.
// The goals run is complete in its kind: its own table and chart, kept like the full run's.
const partial = flag('only') !== undefined || flag('servers') !== undefined
const kind = goalsRun && !partial ? 'goals' : partial ? `${results.mode}-partial` : results.mode
// A quick run does not replace the full one's table and chart either (the README shows those).
const latest = `latest-${kind}`
writeFileSync(join(dir, `${stamp}-${kind}.json`), JSON.stringify(results, null, 2) + '\n')
writeFileSync(join(dir, `${latest}.json`), JSON.stringify(results, null, 2) + '\n')
writeFileSync(join(dir, `${latest}.md`), markdown)
writeFileSync(join(dir, `${latest}.svg`), renderSvg(results))
process.stdout.write(`\n${markdown}\n`)
log(`written: bench/results/${stamp}-${kind}.json, ${latest}.json, ${latest}.md, ${latest}.svg`)
process.exit(0)
