/**
 * Churn soak: what the relay's memory does when streams come and go for a while. Each round
 * starts `--streams` answers at once; half of the readers drop their connection mid-answer and
 * resume with `Last-Event-ID` a moment later, the rest read to the end. Every answer stays
 * retained (`RETAIN_MS`, 5 min), so the live heap grows with the journals, round by round.
 *
 * After each round: the server's RSS as it stands, and (the server runs with `--expose-gc`) the
 * heap after a full GC plus Node's external memory: what is live. `RSS ÷ live` is how much
 * memory the process holds beyond what it uses, the figure the heap settings act on.
 *
 *   npm run build && npx tsx bench/churn-soak.ts [--streams=500] [--rounds=8] [--tokens=100]
 *     [--settings=default,optimize-for-size,…]   (names from SETTINGS below) [--out=soak.json]
 *
 * `--out` writes the figures of every setting as JSON ({@link SoakResult}[]): `npm run bench --
 * --goals` runs the default setting that way for its RSS goal.
 *
 * Each setting is run in its own server process, one after the other, against the same mock.
 */
import { writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'
import type { startMockUpstream as StartMock } from '../lib/mock/index.js'
import { collectSse } from '../test/fixtures/sse-client.js'
import type { CollectedEvent } from '../test/fixtures/sse-client.js'
import { cpuUs, repoRoot, rssBytes, rssParts, startNode } from './load/procs.js'

/** Heap and allocator settings to compare: node flags and environment of the server process. */
const SETTINGS: Record<string, { nodeArgs: string[], env?: Record<string, string> }> = {
  default: { nodeArgs: [] },
  'optimize-for-size': { nodeArgs: ['--optimize-for-size'] },
  'semi-space-4': { nodeArgs: ['--max-semi-space-size=4'] },
  'semi-space-8': { nodeArgs: ['--max-semi-space-size=8'] },
  'semi-space-4-arenas-2': { nodeArgs: ['--max-semi-space-size=4'], env: { MALLOC_ARENA_MAX: '2' } },
  'malloc-arenas-2': { nodeArgs: [], env: { MALLOC_ARENA_MAX: '2' } },
  'old-space-256': { nodeArgs: ['--max-old-space-size=256'] },
  'growing-20': { nodeArgs: ['--heap-growing-percent=20'] },
  'growing-20-arenas-2': { nodeArgs: ['--heap-growing-percent=20'], env: { MALLOC_ARENA_MAX: '2' } },
  'optimize-for-size-arenas-2': { nodeArgs: ['--optimize-for-size'], env: { MALLOC_ARENA_MAX: '2' } },
  // jemalloc instead of glibc's allocator (Debian: libjemalloc2), which returns freed memory to the system.
  jemalloc: { nodeArgs: [], env: { LD_PRELOAD: 'libjemalloc.so.2' } }
}

const arg = (name: string, fallback: string): string =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
const STREAMS = Number(arg('streams', '500'))
const ROUNDS = Number(arg('rounds', '8'))
const TOKENS = Number(arg('tokens', '100'))
const TOKEN_DELAY_MS = 50
const names = arg('settings', Object.keys(SETTINGS).join(',')).split(',')
const out = arg('out', '')

/** One setting's soak, as `--out` writes it. */
export interface SoakResult {
  setting: string
  streams: number
  rounds: number
  tokens: number
  /** RSS before the first round and after the last, MB. */
  startRssMB: number
  rssMB: number
  /** Heap after a full GC plus external memory, after the last round, MB. */
  liveMB: number
  /** The RSS after the last round in its two parts: pages mapped from files (node's code, libraries) and anonymous memory, MB. */
  fileRssMB: number
  anonRssMB: number
  /** The V8 heap as committed after the full GC, MB. */
  heapCommittedMB: number
  cpuUsPerEvent: number
  /** Answers with a gap, a duplicate or no close. */
  bad: number
}
const soaks: SoakResult[] = []

const { startMockUpstream } = await import(pathToFileURL(join(repoRoot, 'dist/lib/mock/index.js')).href) as { startMockUpstream: typeof StartMock }
const mock = await startMockUpstream({ host: '127.0.0.1' })
setInterval(() => mock.clear(), 2000).unref()

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** One answer: start it, maybe drop and resume it, and check that every id came exactly once. */
async function answer (url: string, drop: boolean): Promise<{ tokens: number, ok: boolean }> {
  const body = { messages: [{ role: 'user', content: 'soak' }], mock: { tokens: Array.from({ length: TOKENS }, (_, i) => `token${i} `), tokenDelayMs: TOKEN_DELAY_MS, firstTokenDelayMs: 0, jitterMs: 0 } }
  const dropAfter = drop ? Math.floor(TOKENS / 4) : Infinity
  let seen = 0
  // Read to `close`, or cut the connection after `dropAfter` numbered events.
  const first = await collectSse(`${url}/v1/chat/stream`, { method: 'POST', body, timeoutMs: 60_000, until: (e) => e.event === 'close' || (e.id !== undefined && ++seen >= dropAfter) })
  if (first.status !== 200 && first.status !== 201) throw new Error(`POST /v1/chat/stream: ${first.status}`)
  let events = first.events
  if (drop && !closed(events)) {
    await sleep(200)
    const lastId = numbered(events).at(-1) ?? 0
    const rest = await collectSse(`${url}/v1/chat/stream/${String(first.headers['x-stream-id'])}`, { headers: { 'last-event-id': String(lastId) }, timeoutMs: 60_000, until: (e) => e.event === 'close' })
    events = events.concat(rest.events)
  }
  // Ids count the answer's events (tokens, then finish, usage…): consecutive from 1, none twice.
  const ids = numbered(events)
  const ok = closed(events) && ids.every((id, i) => id === i + 1) && ids.length >= TOKENS
  return { tokens: ids.length, ok }
}

const numbered = (events: readonly CollectedEvent[]): number[] => events.filter((e) => e.id !== undefined).map((e) => Number(e.id))
const closed = (events: readonly CollectedEvent[]): boolean => events.some((e) => e.event === 'close')

interface Memory { gc: boolean, rss: number, heapUsed: number, heapTotal: number, external: number, arrayBuffers: number }
const MB = (n: number): string => (n / 1048576).toFixed(1)

for (const name of names) {
  const setting = SETTINGS[name]
  if (setting === undefined) throw new Error(`unknown setting ${name} (${Object.keys(SETTINGS).join(', ')})`)
  const server = startNode(`relay:${name}`, 'bench/servers/relay.ts', {
    nodeArgs: ['--expose-gc', ...setting.nodeArgs],
    env: { ...setting.env, UPSTREAM_URL: mock.url, LOG_LEVEL: 'warn', MAX_STREAMS_PER_CLIENT: String(STREAMS * 2), MAX_STREAMS: String(STREAMS * 4), HEARTBEAT_MS: '15000' }
  })
  const { port } = await server.next<{ port: number }>('ready')
  const cpuStart = cpuUs(server.pid)
  let tokens = 0
  let bad = 0
  process.stdout.write(`\n${name} (${[...setting.nodeArgs, ...Object.entries(setting.env ?? {}).map(([k, v]) => `${k}=${v}`)].join(' ') || 'no flags'}): ${STREAMS} streams × ${TOKENS} tokens, half dropped and resumed, ${ROUNDS} rounds\n`)
  const startRss = rssBytes(server.pid)
  const rssByRound: string[] = [MB(startRss)]
  for (let round = 1; round <= ROUNDS; round++) {
    const results = await Promise.all(Array.from({ length: STREAMS }, (_, i) => answer(`http://127.0.0.1:${port}`, i % 2 === 0)))
    for (const r of results) {
      tokens += r.tokens
      if (!r.ok) bad++
    }
    rssByRound.push(MB(rssBytes(server.pid)))
  }
  // RSS as the soak left it, then what is live: a forced GC only now, so it shaped no round.
  const parts = rssParts(server.pid)
  const rss = parts.rss
  server.send({ type: 'memory' })
  const memory = await server.next<Memory>('memory')
  if (!memory.gc) throw new Error('the server runs without --expose-gc: no live heap figure')
  const live = memory.heapUsed + memory.external
  const last = { rss, live }
  process.stdout.write(`RSS MB at the start, then after each round: ${rssByRound.join(', ')}\n`)
  const cpuPerToken = (cpuUs(server.pid) - cpuStart) / tokens
  process.stdout.write(`${name}: after ${ROUNDS} rounds rss ${MB(last.rss)} MB, live ${MB(last.live)} MB, ratio ${(last.rss / last.live).toFixed(2)}; server CPU ${cpuPerToken.toFixed(1)} µs per event; answers with a gap, a duplicate or no close: ${bad}\n`)
  // Where the RSS is: pages mapped from files (node's own code and libraries: no heap setting
  // acts on them), the V8 heap as committed, external memory, and what the C allocator holds
  // beyond those (freed memory it keeps, Node's native state).
  const native = parts.anon - memory.heapTotal - memory.external
  process.stdout.write(`RSS after the soak, ${MB(parts.rss)} MB: mapped from files ${MB(parts.file)}, anonymous ${MB(parts.anon)} = V8 heap committed ${MB(memory.heapTotal)} (used after a full GC ${MB(memory.heapUsed)}) + external ${MB(memory.external)} + the rest ${MB(native)}\n`)
  soaks.push({ setting: name, streams: STREAMS, rounds: ROUNDS, tokens: TOKENS, startRssMB: Number(MB(startRss)), rssMB: Number(MB(last.rss)), liveMB: Number(MB(last.live)), fileRssMB: Number(MB(parts.file)), anonRssMB: Number(MB(parts.anon)), heapCommittedMB: Number(MB(memory.heapTotal)), cpuUsPerEvent: Math.round(cpuPerToken * 10) / 10, bad })
  await server.kill()
}
await mock.close()
if (out !== '') writeFileSync(out, JSON.stringify(soaks, null, 2) + '\n')
