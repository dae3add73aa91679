import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import t from 'tap'
import { startStack, untilClose } from '../fixtures/stack.js'

interface Family { name: string, metrics: Array<{ value?: string, labels?: Record<string, string>, count?: string }> }

const scrape = async (url: string): Promise<Map<string, Family>> => {
  const res = await fetch(`${url}/metrics`)
  if (res.status !== 200) throw new Error(`/metrics: ${res.status}`)
  const families = parsePrometheusTextFormat(await res.text()) as Family[]
  return new Map(families.map((f) => [f.name, f]))
}
const value = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}): number => {
  const family = m.get(name)
  const sample = family?.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))
  return Number(sample?.value ?? sample?.count ?? 0)
}

t.test('/metrics, parsed as Prometheus text, shows the numbers moving', async (t) => {
  const stack = await startStack(t, { UPSTREAM_MAX_RETRIES: '0' })
  const before = await scrape(stack.relay.url)
  t.equal(value(before, 'relay_tokens_total'), 0)

  const res = await stack.stream({ tokens: ['a', 'b', 'c'], firstTokenDelayMs: 0, tokenDelayMs: 5 }, { until: untilClose })
  const streamId = res.headers['x-stream-id'] as string
  await stack.read(streamId, { until: untilClose, headers: { 'last-event-id': '1' } })
  await stack.stream({ status: 503 })
  const live = stack.read(await stack.create({ tokens: Array.from({ length: 50 }, () => 'x'), tokenDelayMs: 20, firstTokenDelayMs: 0 }), { until: (_e, all) => all.length >= 2 })
  await live
  const during = await scrape(stack.relay.url)
  t.ok(value(during, 'relay_active_generations') >= 1, 'an active generation')

  const after = await scrape(stack.relay.url)
  t.ok(value(after, 'relay_tokens_total') >= 5, 'content tokens: 3 deltas, and those of the live one so far')
  t.ok(value(after, 'relay_time_to_first_token_seconds') >= 1, 'first-token histogram observed')
  t.ok(value(after, 'relay_inter_token_gap_seconds') >= 4, 'gap histogram observed')
  t.equal(value(after, 'relay_generations_total', { reason: 'done' }), 1)
  t.equal(value(after, 'relay_upstream_errors_total', { code: 'upstream_unavailable' }), 1)
  t.equal(value(after, 'relay_resumes_total', { via: 'stream' }), 1)
  t.ok(value(after, 'relay_stream_closes_total', { reason: 'done' }) >= 2, 'closes by reason')
  t.ok(value(after, 'relay_stream_closes_total', { reason: 'client' }) >= 1, 'a reader that left')
  t.ok(value(after, 'relay_journal_bytes') > 0, 'journal size')
  t.ok(after.has('process_resident_memory_bytes'), 'process metrics too')
})

t.test('counts kept outside prom-client (tokens, gaps) are exposed when scraped and forgotten by a reset', async (t) => {
  const { RelayMetrics } = await import('../../lib/relay/metrics.js')
  const metrics = new RelayMetrics({ activeGenerations: () => 0 })
  metrics.firstToken(120, 'delta')
  metrics.token(30, 'delta')
  metrics.token(2000, 'delta')
  const families = new Map((parsePrometheusTextFormat(await metrics.registry.metrics()) as Family[]).map((f) => [f.name, f]))
  t.equal(value(families, 'relay_tokens_total'), 3)
  const gap = families.get('relay_inter_token_gap_seconds')?.metrics[0] as unknown as { count: string, sum: string, buckets: Record<string, string> }
  t.equal(Number(gap.count), 2)
  t.equal(Number(gap.sum), 2.03)
  t.equal(Number(gap.buckets['0.05']), 1, 'buckets are cumulative: 30 ms in 0.05')
  t.equal(Number(gap.buckets['+Inf'] ?? gap.count), 2)

  metrics.token(10, 'delta')
  metrics.registry.resetMetrics()
  const after = new Map((parsePrometheusTextFormat(await metrics.registry.metrics()) as Family[]).map((f) => [f.name, f]))
  t.equal(value(after, 'relay_tokens_total'), 0, 'a token counted before the reset is not added after it')
  t.equal(Number((after.get('relay_inter_token_gap_seconds')?.metrics[0] as unknown as { count: string }).count), 0)
})
