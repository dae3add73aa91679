/**
 * Summarises a V8 `.cpuprofile` (from `npm run bench -- --only=cost --servers=relay --cpu-prof`):
 * self time per function (name, file:line) as % of all samples, and the same grouped by file.
 *
 * `node --import tsx bench/profile.ts bench/results/prof/CPU….cpuprofile [top]`
 */
import { readFileSync } from 'node:fs'

interface Node {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
  children?: number[]
}

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const skipArg = process.argv.find((a) => a.startsWith('--skip='))
const [file, topArg] = args
if (file === undefined) {
  process.stderr.write('usage: bench/profile.ts <file.cpuprofile> [top]\n')
  process.exit(1)
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[], samples: number[], timeDeltas: number[] }
const top = Number(topArg ?? 30)
// --skip=S: leave out the first S seconds (boot, module loading, ramp) and the last one (exit).
const skipUs = Number(skipArg?.slice(7) ?? 0) * 1e6
const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const hits = new Map<number, number>()
let t = 0
const times: number[] = []
for (const d of profile.timeDeltas) times.push(t += d)
const endUs = t - 1e6
let total = 0
profile.samples.forEach((id, i) => {
  const at = times[i] ?? 0
  if (at < skipUs || (skipUs > 0 && at > endUs)) return
  total++
  hits.set(id, (hits.get(id) ?? 0) + 1)
})
const idle = new Set(['(idle)', '(program)'])
const keyOf = (node: Node): string => {
  const { functionName, url, lineNumber } = node.callFrame
  const short = url.startsWith(repoUrl) ? url.slice(repoUrl.length) : url
  return `${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`
}
// Inclusive time of this project's own functions (lib/, plugins/, app: compiled in dist/ or run by tsx): self + callees.
const repoUrl = new URL('..', import.meta.url).href
const ownCode = /^(dist\/)?(lib\/|plugins\/|app\.)/
const inclusive = new Map<string, number>()
for (const [id, n] of hits) {
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur)
    if (node === undefined) break
    if (!ownCode.test(node.callFrame.url.startsWith(repoUrl) ? node.callFrame.url.slice(repoUrl.length) : '')) continue
    const key = keyOf(node)
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + n)
  }
}
const self = new Map<string, number>()
const perFile = new Map<string, number>()
let busy = 0
for (const [id, n] of hits) {
  const node = byId.get(id)
  if (node === undefined) continue
  const { functionName, url, lineNumber } = node.callFrame
  const short = url.startsWith(repoUrl) ? url.slice(repoUrl.length) : url.replace(/^node:/, 'node:')
  const key = `${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`
  self.set(key, (self.get(key) ?? 0) + n)
  if (!idle.has(functionName)) busy += n
  const fileKey = short === '' ? functionName : short
  perFile.set(fileKey, (perFile.get(fileKey) ?? 0) + n)
}
const pct = (n: number, of: number): string => `${(n / of * 100).toFixed(1).padStart(5)}%`
process.stdout.write(`${total} samples; busy (not idle/program) ${pct(busy, total)}\n\nself time by function (% of busy samples):\n`)
for (const [key, n] of [...self].filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(program)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
  process.stdout.write(`${pct(n, busy)}  ${key}\n`)
}
process.stdout.write('\ninclusive time of the project\'s functions (% of busy samples):\n')
for (const [key, n] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(n, busy)}  ${key}\n`)
process.stdout.write('\nself time by file (% of busy samples):\n')
for (const [key, n] of [...perFile].filter(([k]) => !idle.has(k)).sort((a, b) => b[1] - a[1]).slice(0, 20)) {
  process.stdout.write(`${pct(n, busy)}  ${key}\n`)
}
