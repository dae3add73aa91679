/**
 * The memory journal alone, without sockets: what retaining tokens costs in time, heap and
 * garbage collection. 1,000 live journals are appended to in turn, one token at a time (an
 * OpenAI-style chunk as the data, as the relay journals them); each ends after 200 tokens and a
 * new one takes its place; every ended journal stays retained.
 *
 *   npm run build && node --expose-gc --import tsx bench/memory-journal.ts [tokens] [dist root]
 *
 * `tokens` defaults to 600,000 (under the default 256 MiB cap, so nothing is evicted); the root
 * (default: this checkout) lets the same script measure another build, e.g. a `git worktree`.
 */
import { PerformanceObserver, performance } from 'node:perf_hooks'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { MemoryStore as MemoryStoreClass } from '../lib/relay/stores/memory.js'
import type { makeEntry as MakeEntry, JournalListener, JournalMeta } from '../lib/relay/journal.js'

const total = Number(process.argv[2] ?? 600_000)
const root = pathToFileURL(resolve(process.argv[3] ?? '.')).href
const { MemoryStore } = await import(`${root}/dist/lib/relay/stores/memory.js`) as { MemoryStore: typeof MemoryStoreClass }
const { makeEntry } = await import(`${root}/dist/lib/relay/journal.js`) as { makeEntry: typeof MakeEntry }

const LIVE = 1000
const TOKENS_PER_ANSWER = 200
const store = new MemoryStore({ retainMs: 3_600_000 })
const meta: JournalMeta = { kind: 'generation', owner: null, createdAt: 0 }
const listener: JournalListener = { onEntries () {}, onEnd () {} }
let serial = 0
const open = (): string => {
  const key = `s${serial++}`
  store.createSync(key, meta)
  store.subscribe(key, 0, listener)
  return key
}
const keys = Array.from({ length: LIVE }, open)
const ids = new Array<number>(LIVE).fill(0)

let gcMs = 0
let gcMax = 0
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration
    gcMax = Math.max(gcMax, e.duration)
  }
})
observer.observe({ entryTypes: ['gc'] })

const started = performance.now()
for (let n = 0; n < total; n++) {
  const j = n % LIVE
  const id = ++(ids[j] as number)
  const data = JSON.stringify({ id: 'chatcmpl-bench', choices: [{ index: 0, delta: { content: `token${n} ` } }] })
  store.append(keys[j] as string, [makeEntry(id, data)])
  if (id === TOKENS_PER_ANSWER) {
    store.end(keys[j] as string, 'done')
    keys[j] = open()
    ids[j] = 0
  }
}
const elapsed = performance.now() - started
// Let the last GC entries arrive, then measure what is live.
await new Promise((resolve) => setTimeout(resolve, 100))
observer.disconnect()
const gc = (globalThis as { gc?: () => void }).gc
gc?.()
const memory = process.memoryUsage()
const mb = (bytes: number): string => (bytes / 2 ** 20).toFixed(0)
process.stdout.write(`${total} tokens: ${(elapsed * 1000 / total).toFixed(3)} µs per append, GC ${gcMs.toFixed(0)} ms (longest ${gcMax.toFixed(1)} ms); ` +
  `live: heap ${mb(memory.heapUsed)} MB, array buffers ${mb(memory.arrayBuffers)} MB, RSS ${mb(memory.rss)} MB; store counts ${mb(store.bytes)} MB` +
  (gc === undefined ? ' (without --expose-gc: garbage included)' : '') + '\n')
await store.close()
