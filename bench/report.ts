/** The results' shape, the markdown table and the SVG chart (drawn by hand: a few rects and texts). */
import type { Load } from './load/index.js'
import type { FollowerCost, JournalMemory } from './redis-follower.js'
import type { Result } from './run.js'
import type { SoakResult } from './churn-soak.js'

export interface CostSummary {
  /** Median over every slice of every round. */
  cpuUsPerToken: number
  p50Ms: number
  p99Ms: number
  rssMB: number
  eldP99Ms: number
  errors: number
  runs: Result[]
}

export interface Results {
  date: string
  machine: { cpu: string, cores: number, ramGB: number }
  node: string
  command: string
  mode: 'quick' | 'full'
  pinning: string
  loads: Record<string, Load>
  cost?: Record<string, CostSummary>
  latency?: Record<string, Result>
  ttft?: Record<string, Result>
  capacity?: Result
  ramp?: Record<string, { sustainedStreams: number, sustainedTokensPerSecond: number, limit: string, steps: Array<{ streams: number, tokensPerSecond: number, p99Ms: number, serverCpuPct: number, clientCpuPct: number, errors: number }> }>
  nginx?: { direct: Result, viaNginx: Result }
  redis?: { memory: Result, redis: Result, ratio: number }
  /** Redis's cost of journals followed from another instance, at a fixed total rate, by number of streams. */
  follower?: { topology: string, ratesPerSecond: number, points: FollowerCost[], memory: JournalMemory }
  /** Held, mostly idle streams: RSS per stream. */
  idle?: Record<string, Result>
  /** Rounds of the `lengths` scenario (`--rounds`; older files: 3 in a full run, 2 in a quick one). */
  lengthsRounds?: number
  /**
   * CPU per token of this relay and of the passthrough floor by answer length (best round). With
   * `--base`: the other build's best round (`baseUsPerToken`), this build ÷ it in each round
   * (`versusBaseRounds`) and their median (`versusBase`).
   */
  lengths?: Array<{ tokens: number, relayUsPerToken: number, floorUsPerToken: number, baseUsPerToken?: number, versusBase?: number, versusBaseRounds?: number[] }>
  /** One channel, N subscribers, 1 event/s: `cpuUsPerToken` is CPU per delivered event, `latencyMs` publish → received. */
  broadcast?: Record<string, Result>
  /** Churn soak of the service's default settings (bench/churn-soak.ts). */
  soak?: SoakResult
  goals: Goal[]
}

/** A goal and how this run measured against it. */
export interface Goal {
  goal: string
  measured: string
  met: boolean
  /** For the chart: the measured figure and the goal's bound on it (met when `value ≤ limit`), in `unit`. */
  value?: number
  limit?: number
  unit?: string
}

const fmt = (n: number | undefined, digits = 2): string => n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits)
const loadText = (l: Load): string => `${l.streams.toLocaleString('en')} streams × ${l.tokensPerSecond} tok/s`

export function renderMarkdown (r: Results): string {
  const out: string[] = []
  out.push(`## Benchmark (${r.mode}): ${r.date.slice(0, 10)}`, '')
  out.push(`${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.ramGB} GB RAM, Node ${r.node}. ${r.pinning}. Command: \`${r.command}\`.`, '')
  if (r.cost !== undefined) {
    const relay = r.cost.relay?.cpuUsPerToken
    const floor = r.cost.passthrough?.cpuUsPerToken
    out.push(`### Cost: CPU per relayed token at ${loadText(r.loads.cost as Load)} (${r.mode === 'full' ? '3 interleaved rounds' : '1 round'}, median of ${(r.loads.cost?.measureMs ?? 0) / (r.loads.cost?.sliceMs ?? 1)}-s... slices)`.replace('-s... slices', ' slices per round'), '')
    out.push('| server | CPU µs/token | × this relay | × passthrough | p50 ms | p99 ms | RSS MB | ELD p99 ms | errors |')
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const [name, c] of Object.entries(r.cost)) {
      out.push(`| ${name} | ${fmt(c.cpuUsPerToken)} | ${relay === undefined ? '–' : `${fmt(c.cpuUsPerToken / relay)}×`} | ${floor === undefined ? '–' : `${fmt(c.cpuUsPerToken / floor)}×`} | ${fmt(c.p50Ms)} | ${fmt(c.p99Ms)} | ${fmt(c.rssMB, 0)} | ${fmt(c.eldP99Ms)} | ${c.errors} |`)
    }
    out.push('')
  }
  if (r.lengths !== undefined) {
    out.push(`### Answer length: CPU per token and per request against the floor, ${loadText(r.loads.lengths as Load)} (best of ${r.lengthsRounds ?? (r.mode === 'full' ? 3 : 2)} interleaved rounds)`, '')
    out.push('| answer | this relay µs/token | passthrough µs/token | × passthrough | this relay ms/request | passthrough ms/request |')
    out.push('|---:|---:|---:|---:|---:|---:|')
    for (const l of r.lengths) {
      out.push(`| ${l.tokens} tokens | ${fmt(l.relayUsPerToken)} | ${fmt(l.floorUsPerToken)} | ${fmt(l.relayUsPerToken / l.floorUsPerToken)}× | ${fmt(l.relayUsPerToken * l.tokens / 1000, 3)} | ${fmt(l.floorUsPerToken * l.tokens / 1000, 3)} |`)
    }
    out.push('')
    for (const l of r.lengths) {
      if (l.versusBase !== undefined) out.push(`- ${l.tokens} tokens, against the base build (\`--base\`): ${fmt(l.baseUsPerToken)} µs/token at best; this build ÷ base per round ${(l.versusBaseRounds ?? []).map((v) => fmt(v, 3)).join(' / ')}, median ${fmt(l.versusBase, 3)}×`)
    }
    if (r.lengths.some((l) => l.versusBase !== undefined)) out.push('')
  }
  const rows: string[] = []
  const row = (scenario: string, m: Result | undefined, note = ''): void => {
    if (m === undefined) return
    rows.push(`| ${scenario} | ${m.server} | ${m.deliveredPerSecond.toLocaleString('en')} | ${fmt(m.latencyMs.p50)} | ${fmt(m.latencyMs.p99)} | ${fmt(m.ttftMs.p50)} | ${fmt(m.cpuUsPerToken)} | ${Number.isFinite(m.rssMB) ? fmt(m.rssMB, 0) : '–'} | ${fmt(m.eldMs?.p99)} | ${m.serverCpuPct} / ${m.clientCpuPct} | ${note} |`)
  }
  // Old result files have no per-slice figures.
  const slices = (m: Result): string => m.p99MsSlices === undefined ? '' : `p99 per 2-s slice: ${m.p99MsSlices.map((v) => fmt(v, 0)).join(' / ')}`
  if (r.latency !== undefined) for (const m of Object.values(r.latency)) row(`latency, ${loadText(r.loads.latency as Load)}`, m, slices(m))
  if (r.ttft !== undefined) {
    const direct = r.ttft.direct?.ttftMs.p50
    for (const [name, m] of Object.entries(r.ttft)) row(`first token, ${loadText(r.loads.ttft as Load)}`, m, name === 'direct' || direct === undefined ? '' : `TTFT overhead p50 ${fmt(m.ttftMs.p50 - direct)} ms, p99 ${fmt(m.ttftMs.p99 - (r.ttft.direct?.ttftMs.p99 ?? NaN))} ms`)
  }
  if (r.capacity !== undefined) row(`capacity, ${loadText({ ...r.loads.capacity as Load })}`, r.capacity, `${fmt(r.capacity.rssPerStreamKB, 1)} KB RSS/stream; ELD max ${fmt(r.capacity.eldMs?.max)} ms`)
  if (r.idle !== undefined) for (const m of Object.values(r.idle)) row(`held streams, ${loadText(r.loads.idle as Load)}`, m, `${fmt(m.rssPerStreamKB, 1)} KB RSS/stream (${fmt(m.idleRssMB, 0)} MB before the first)`)
  if (r.nginx !== undefined) row(`through nginx, ${loadText(r.loads.latency as Load)}`, r.nginx.viaNginx, `direct: p99 ${fmt(r.nginx.direct.latencyMs.p99)} ms`)
  if (r.redis !== undefined) row(`Redis journal, ${loadText(r.loads.cost as Load)}`, r.redis.redis, `${fmt(r.redis.ratio)}× the memory journal's CPU/token`)
  if (rows.length > 0) {
    out.push('### Latency, first token, capacity', '')
    out.push('Latency: mock send timestamp (embedded in each token) → load generator receive, per token. TTFT: request written → first token received.', '')
    out.push('| scenario | server | tok/s | p50 ms | p99 ms | TTFT p50 ms | CPU µs/token | RSS MB | ELD p99 ms | CPU % server / client | note |')
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|')
    out.push(...rows, '')
  }
  if (r.broadcast !== undefined && Object.keys(r.broadcast).length > 0) {
    const b = r.loads.broadcast as Load
    const relay = r.broadcast.relay?.cpuUsPerToken
    out.push(`### Broadcast: one channel, ${b.streams.toLocaleString('en')} subscribers, 1 event/s (${b.measureMs / 1000} s window)`, '')
    out.push('Latency: publish time (embedded in the event) → received by the subscriber. CPU: server CPU over the window / events delivered in it.', '')
    out.push('| server | deliveries/s | p50 ms | p99 ms | max ms | CPU µs / delivered event | × this relay | RSS MB | KB / subscriber | ELD p99 ms | errors |')
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for (const [name, m] of Object.entries(r.broadcast)) {
      out.push(`| ${name} | ${m.deliveredPerSecond.toLocaleString('en')} | ${fmt(m.latencyMs.p50)} | ${fmt(m.latencyMs.p99)} | ${fmt(m.latencyMs.max)} | ${fmt(m.cpuUsPerToken)} | ${relay === undefined ? '–' : `${fmt(m.cpuUsPerToken / relay)}×`} | ${fmt(m.rssMB, 0)} | ${fmt(m.rssPerStreamKB, 1)} | ${fmt(m.eldMs?.p99)} | ${m.stats.httpErrors + m.stats.socketErrors + m.stats.idGaps + m.stats.idDuplicates + m.stats.shortStreams} |`)
    }
    out.push('')
  }
  if (r.follower !== undefined) {
    const f = r.follower
    out.push(`### Redis: following journals of another instance (${f.topology}, ${f.ratesPerSecond.toLocaleString('en')} events/s in all)`, '')
    out.push('Redis\'s CPU (INFO cpu) and command time (INFO commandstats) per event delivered to the readers on the other instance.', '')
    out.push('| followed streams | events/s delivered | Redis CPU µs/event | command µs/event | × the fewest streams | costliest commands |')
    out.push('|---:|---:|---:|---:|---:|---|')
    for (const p of f.points) {
      out.push(`| ${p.streams.toLocaleString('en')} | ${p.deliveredPerSecond.toLocaleString('en')} | ${fmt(p.cpuUsPerEvent)} | ${fmt(p.commandUsPerEvent)} | ${fmt(p.cpuUsPerEvent / (f.points[0]?.cpuUsPerEvent ?? NaN))}× | ${p.commands.slice(0, 3).map((c) => `${c.command} ${c.callsPerSecond}/s × ${fmt(c.usPerCall)} µs`).join(', ')} |`)
    }
    out.push('', `Redis memory: ${f.memory.bytesPerAnswer.toLocaleString('en')} bytes per 200-token answer (${f.memory.bytesPerToken} per token).`, '')
  }
  if (r.ramp !== undefined) {
    out.push('### Ramp: most 5 tok/s streams with p99 ≤ 100 ms and no errors', '')
    out.push('| server | sustained streams | tok/s | stopped by |')
    out.push('|---|---:|---:|---|')
    for (const [name, ramp] of Object.entries(r.ramp)) out.push(`| ${name} | ${ramp.sustainedStreams.toLocaleString('en')} | ${ramp.sustainedTokensPerSecond.toLocaleString('en')} | ${ramp.limit} |`)
    out.push('')
  }
  if (r.soak !== undefined) {
    const k = r.soak
    out.push(`### Churn soak: ${k.rounds} rounds of ${k.streams} answers × ${k.tokens} tokens, half of the readers dropped and resumed, every answer retained`, '')
    out.push('| RSS at the start | RSS after | live (heap after a full GC + external) | RSS ÷ live | mapped from files | V8 heap committed | answers cut or repeated |')
    out.push('|---:|---:|---:|---:|---:|---:|---:|')
    out.push(`| ${k.startRssMB} MB | ${k.rssMB} MB | ${k.liveMB} MB | ${fmt(k.rssMB / k.liveMB)}× | ${k.fileRssMB} MB | ${k.heapCommittedMB} MB | ${k.bad} |`, '')
  }
  if (r.goals.length > 0) {
    out.push('### Goals', '')
    for (const g of r.goals) out.push(`- ${g.met ? '✅' : '❌'} ${g.goal}: ${g.measured}`)
    out.push('')
  }
  return out.join('\n')
}

/**
 * The chart: CPU µs/token and p99 ms at the cost load, one bar per server; CPU per delivered
 * event of the broadcast; then each goal with a bound (its measured figure against the bound,
 * which is drawn as a line). Panels without figures in this run are left out.
 */
export function renderSvg (r: Results): string {
  const width = 760
  const rowH = 26
  const left = 170
  const barW = width - left - 90
  const panel = (title: string, y0: number, values: Array<[string, number]>, unit: string): string => {
    const max = Math.max(...values.map(([, v]) => Number.isFinite(v) ? v : 0), 1e-9)
    let s = `<text x="10" y="${y0}" font-weight="bold">${esc(title)}</text>\n`
    values.forEach(([name, v], i) => {
      const y = y0 + 12 + i * rowH
      const w = Number.isFinite(v) ? Math.max(1, v / max * barW) : 0
      const color = name === 'relay' ? '#2f7d32' : name === 'passthrough' ? '#888' : '#4a6fa5'
      s += `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(name)}</text>\n`
      s += `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${color}"/>\n`
      s += `<text x="${(left + w + 6).toFixed(1)}" y="${y + 15}">${Number.isFinite(v) ? v.toFixed(2) : '–'} ${unit}</text>\n`
    })
    return s
  }
  const panelHeight = (rows: number): number => 30 + rows * rowH + 20
  const entries = Object.entries(r.cost ?? {})
  const broadcast = Object.entries(r.broadcast ?? {})
  const charted = r.goals.filter((g) => g.value !== undefined && g.limit !== undefined && Number.isFinite(g.value))
  const cost = r.loads.cost as Load
  const title = entries.length > 0
    ? `fastify-llm-relay vs peers, ${loadText(cost)} (${r.mode}, ${r.date.slice(0, 10)}, Node ${r.node})`
    : `fastify-llm-relay: goals against the passthrough floor (${r.date.slice(0, 10)}, Node ${r.node})`
  let body = `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>\n`
  let y = 50
  if (entries.length > 0) {
    body += panel('CPU per relayed token (µs, lower is better)', y, entries.map(([n, c]) => [n, c.cpuUsPerToken]), 'µs')
    y += panelHeight(entries.length)
    body += panel('p99 latency per token, mock send → client receive (ms, lower is better)', y, entries.map(([n, c]) => [n, c.p99Ms]), 'ms')
    y += panelHeight(entries.length)
  }
  if (broadcast.length > 0) {
    const b = r.loads.broadcast as Load
    body += panel(`Broadcast, ${b.streams.toLocaleString('en')} subscribers, 1 event/s: CPU per delivered event (µs)`, y, broadcast.map(([n, m]) => [n, m.cpuUsPerToken]), 'µs')
    y += panelHeight(broadcast.length)
  }
  if (charted.length > 0) {
    body += goalsPanel(charted, y, width)
    y += 30 + charted.length * GOAL_ROW + 10
  }
  const height = y + 10
  body += `<text x="10" y="${height - 10}" font-size="10" fill="#555">${esc(`${r.machine.cpu}, ${r.machine.cores} cores; ${r.pinning}; ${r.command}`)}</text>\n`
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n${body}</svg>\n`
}

const GOAL_ROW = 44

/** One row a goal: its text, then a bar of the measured figure on a scale where the bound is a line. */
function goalsPanel (goals: readonly Goal[], y0: number, width: number): string {
  const left = 10
  const barW = width - left - 200
  // Every row on its own scale, the bound at the same x: a bar's length is measured ÷ bound, up
  // to four times the bound (a longer one is cut, its end drawn ragged), so one far miss does
  // not flatten the others.
  const most = Math.min(4, Math.max(1.25, ...goals.map((g) => (g.value as number) / (g.limit as number))))
  const boundX = left + barW / most
  let s = `<text x="10" y="${y0}" font-weight="bold">Goals: measured against the bound (the line; shorter is better)</text>\n`
  goals.forEach((g, i) => {
    const y = y0 + 14 + i * GOAL_ROW
    const value = g.value as number
    const limit = g.limit as number
    const cut = value / limit > most
    const w = Math.max(1, Math.min(value / limit, most) / most * barW)
    const unit = g.unit ?? ''
    const color = g.met ? '#2f7d32' : '#c0392b'
    s += `<text x="${left}" y="${y + 10}" font-size="11">${esc(g.goal)}</text>\n`
    s += `<rect x="${left}" y="${y + 16}" width="${w.toFixed(1)}" height="16" fill="${color}"/>\n`
    if (cut) s += `<polygon points="${left + w},${y + 16} ${left + w + 6},${y + 20} ${left + w},${y + 24} ${left + w + 6},${y + 28} ${left + w},${y + 32}" fill="${color}"/>\n`
    s += `<line x1="${boundX.toFixed(1)}" y1="${y + 13}" x2="${boundX.toFixed(1)}" y2="${y + 35}" stroke="#000" stroke-dasharray="3,2"/>\n`
    s += `<text x="${(left + Math.max(w + (cut ? 6 : 0), boundX - left) + 6).toFixed(1)}" y="${y + 29}">${esc(`${fmt(value)}${unit} (goal ≤ ${limit}${unit})`)}</text>\n`
  })
  return s
}

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
