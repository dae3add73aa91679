/**
 * What a held stream keeps on the V8 heap, by kind of object: `npm run build && npx tsx
 * bench/held-heap.ts [--streams=3000] [--server=relay|passthrough] [--base=<dir>] [--prompt=5] [--top=40]`.
 *
 * The server (this relay as `npm start` runs it, another build's with `--base`, or the passthrough
 * floor) is given the idle scenario's answers — 40 tokens at 0.2 tok/s, the mock in its own
 * process — by `--streams` readers that stay, each asking with a prompt of `--prompt`
 * characters. A heap snapshot before the first stream and one once every stream has its first
 * token are compared: for each kind of object (its constructor, or V8's category), the count and
 * bytes per stream. Unlike RSS per stream (which moves by ±1.5 KB between runs with when the last
 * collection ran), this tells apart changes of a few hundred bytes. Not a test: it prints, and
 * writes nothing but the snapshots, in a temporary directory it removes.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startNode } from './load/procs.js'
import type { Child } from './load/procs.js'

const flag = (name: string): string | undefined => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const STREAMS = Number(flag('streams') ?? 3000)
const server = flag('server') ?? 'relay'
const base = flag('base')
const TOP = Number(flag('top') ?? 40)
const PROMPT = Number(flag('prompt') ?? 5)
if (server !== 'relay' && server !== 'passthrough') throw new Error(`--server must be relay or passthrough, got ${server}`)

const dir = mkdtempSync(join(tmpdir(), 'held-heap-'))
const mock = startNode('mock', 'bench/servers/mock.ts', { quiet: true })
// (The mock's URL is its API's base: `…/v1`.)
const upstream = (await mock.next<{ url: string }>('ready')).url
const target = startNode(server, server === 'relay' ? 'bench/servers/relay.ts' : 'bench/peers/passthrough.ts', {
  nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`],
  env: {
    UPSTREAM_URL: upstream,
    LOG_LEVEL: 'warn',
    MAX_STREAMS: '100000',
    MAX_STREAMS_PER_CLIENT: '100000',
    ...(base === undefined ? {} : { BENCH_RELAY_DIST: join(base, 'dist') })
  }
})
const { port } = await target.next<{ port: number }>('ready', 60_000)

try {
  await sleep(1000)
  const empty = await snapshot(target)
  await holdStreams(port, STREAMS)
  // Past the first token, allocation settles: what is left is what a held stream keeps.
  await sleep(3000)
  const held = await snapshot(target)
  report(perKind(empty), perKind(held))
} finally {
  await target.kill()
  await mock.kill()
  rmSync(dir, { recursive: true, force: true })
}
process.exit(0)

/** Asks for a snapshot (the server runs with `--heapsnapshot-signal`) and waits until it is written. */
async function snapshot (child: Child): Promise<string> {
  const before = new Set(readdirSync(dir))
  process.kill(child.pid, 'SIGUSR2')
  for (;;) {
    await sleep(1000)
    const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'))
    if (file === undefined) continue
    const size = statSync(join(dir, file)).size
    await sleep(1000)
    if (size > 0 && statSync(join(dir, file)).size === size) return join(dir, file)
  }
}

/** Opens `count` streams of the idle scenario's answers and resolves once each has data. */
async function holdStreams (port: number, count: number): Promise<void> {
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'hello '.repeat(Math.ceil(PROMPT / 6)).slice(0, PROMPT) }], mock: { fast: { tokens: 40, tokensPerSecond: 0.2 } } })
  let started = 0
  let failed = 0
  for (let i = 0; i < count; i++) {
    const req = request({ host: '127.0.0.1', port, path: '/v1/chat/stream', method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        failed++
        res.resume()
        return
      }
      res.once('data', () => { started++ })
    })
    req.on('error', () => { failed++ })
    req.end(body)
    if (i % 200 === 199) await sleep(100)
  }
  const deadline = Date.now() + 60_000
  const settled = (): boolean => started + failed === count || Date.now() > deadline
  while (!settled()) await sleep(200)
  if (started < count) throw new Error(`${started} of ${count} streams started (${failed} failed)`)
}

/** Bytes and count of every kind of object in a snapshot. */
function perKind (file: string): Map<string, { count: number, bytes: number }> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[], node_types: [string[]] } }, nodes: number[], strings: string[] }
  const { node_fields: fields, node_types: [types] } = snap.snapshot.meta
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number]
  const kinds = new Map<string, { count: number, bytes: number }>()
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + typeAt] as number] as string
    const name = snap.strings[snap.nodes[i + nameAt] as number] as string
    // Objects by constructor, closures by function name, the rest by V8's category.
    const kind = type === 'object' ? name : type === 'closure' ? `closure ${name}` : type === 'native' || type === 'hidden' || type === 'array' ? `(${type}) ${name.slice(0, 40)}` : `(${type})`
    const entry = kinds.get(kind) ?? { count: 0, bytes: 0 }
    entry.count++
    entry.bytes += snap.nodes[i + sizeAt] as number
    kinds.set(kind, entry)
  }
  return kinds
}

function report (empty: Map<string, { count: number, bytes: number }>, held: Map<string, { count: number, bytes: number }>): void {
  const rows = [...held].map(([kind, { count, bytes }]) => {
    const before = empty.get(kind) ?? { count: 0, bytes: 0 }
    return { kind, count: (count - before.count) / STREAMS, bytes: (bytes - before.bytes) / STREAMS }
  }).sort((a, b) => b.bytes - a.bytes)
  const total = rows.reduce((sum, r) => sum + r.bytes, 0)
  process.stdout.write(`${server}${base === undefined ? '' : ` (${base})`}: ${STREAMS} held streams (${PROMPT}-character prompts), V8 heap per stream ${(total / 1024).toFixed(1)} KB (${Math.round(total)} bytes)\n\n  bytes   count  kind\n`)
  for (const r of rows.slice(0, TOP)) process.stdout.write(`${r.bytes.toFixed(0).padStart(7)} ${r.count.toFixed(2).padStart(7)}  ${r.kind}\n`)
}
