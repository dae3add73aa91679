// The counters an operator tracks cost and traffic with (README "Logs and metrics"), each moved
// by real requests through a relay on a real socket and read back from /metrics as Prometheus
// text: content tokens apart from events, usage by model (the upstream's, or estimated), responses
// by route pattern and status, and resumes from every path.
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import t from 'tap'
import { startStack, untilClose, waitUntil } from '../fixtures/stack.js'
import type { Stack } from '../fixtures/stack.js'
import { collectSse } from '../fixtures/sse-client.js'
import { openaiChunk } from '../fixtures/mock.js'

interface Family { name: string, metrics: Array<{ value?: string, labels?: Record<string, string> }> }

async function scrape (url: string): Promise<Family[]> {
  const res = await fetch(`${url}/metrics`)
  if (res.status !== 200) throw new Error(`/metrics: ${res.status}`)
  return parsePrometheusTextFormat(await res.text()) as Family[]
}

/** The sample of `name` with exactly these labels (0 when absent). */
async function sample (stack: Stack, name: string, labels: Record<string, string> = {}): Promise<number> {
  const family = (await scrape(stack.relay.url)).find((f) => f.name === name)
  const found = family?.metrics.find((s) => {
    const have = s.labels ?? {}
    return Object.keys(have).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => have[k] === v)
  })
  return Number(found?.value ?? 0)
}

/** One reasoning piece, two content pieces, a finish and the upstream's usage (with reasoning tokens). */
const RAW_ANSWER = [
  openaiChunk('"choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"hmm"},"finish_reason":null}]'),
  openaiChunk('"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]'),
  openaiChunk('"choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}]'),
  openaiChunk('"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]'),
  openaiChunk('"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":3}}'),
  'data: [DONE]\n\n'
]

t.test('relay_tokens_total counts content tokens only; relay_events_total counts every event by type', async (t) => {
  const stack = await startStack(t)
  const res = await stack.stream({ raw: RAW_ANSWER }, { until: untilClose })
  t.equal(res.status, 200)
  t.equal(await sample(stack, 'relay_tokens_total'), 2, 'the two deltas')
  t.equal(await sample(stack, 'relay_events_total', { type: 'delta' }), 2)
  t.equal(await sample(stack, 'relay_events_total', { type: 'reasoning' }), 1)
  t.equal(await sample(stack, 'relay_events_total', { type: 'finish' }), 1)
  t.equal(await sample(stack, 'relay_events_total', { type: 'usage' }), 1)
})

t.test('relay_usage_tokens_total by model and kind: the upstream\'s usage, and estimates labelled as such', async (t) => {
  const stack = await startStack(t)
  // The model the request names is the label (the upstream's default when it names none).
  await stack.stream({ raw: RAW_ANSWER }, { until: untilClose, extra: { model: 'model-a' } })
  await waitUntil(async () => await sample(stack, 'relay_usage_tokens_total', { model: 'model-a', kind: 'prompt', estimated: 'false' }) === 7, 3000, 'usage counted')
  t.equal(await sample(stack, 'relay_usage_tokens_total', { model: 'model-a', kind: 'completion', estimated: 'false' }), 5)
  t.equal(await sample(stack, 'relay_usage_tokens_total', { model: 'model-a', kind: 'reasoning', estimated: 'false' }), 3)
  t.equal(await sample(stack, 'relay_usage_tokens_total', { model: 'model-a', kind: 'prompt', estimated: 'true' }), 0, 'nothing estimated')

  // No usage from the upstream: about four characters a token, "Hello" (5) → 2, "abcdefgh" (8) → 2.
  await stack.stream({ tokens: ['abcd', 'efgh'], usage: false, firstTokenDelayMs: 0, tokenDelayMs: 0 }, { until: untilClose })
  await waitUntil(async () => await sample(stack, 'relay_usage_tokens_total', { model: 'gpt-4o-mini', kind: 'prompt', estimated: 'true' }) === 2, 3000, 'estimate counted')
  t.equal(await sample(stack, 'relay_usage_tokens_total', { model: 'gpt-4o-mini', kind: 'completion', estimated: 'true' }), 2)
  t.equal(await sample(stack, 'relay_usage_tokens_total', { model: 'gpt-4o-mini', kind: 'completion', estimated: 'false' }), 0)
})

t.test('relay_http_responses_total by route pattern and status, streams and clients that left included', async (t) => {
  const stack = await startStack(t)
  const url = stack.relay.url
  await (await fetch(`${url}/healthz`)).arrayBuffer()
  await (await fetch(`${url}/v1/chat/stream/no-such-stream-id`)).arrayBuffer()
  await (await fetch(`${url}/not/a/route?api_key=secret`)).arrayBuffer()
  await stack.stream({ tokens: ['a'], firstTokenDelayMs: 0 }, { until: untilClose })
  // A reader that leaves an open stream: counted when its connection closes.
  const streamId = await stack.create({ tokens: Array.from({ length: 40 }, () => 'x'), tokenDelayMs: 50, firstTokenDelayMs: 0 })
  await collectSse(`${url}/v1/chat/stream/${streamId}`, { until: (_e, all) => all.length >= 2 })

  await waitUntil(async () => await sample(stack, 'relay_http_responses_total', { route: '/v1/chat/stream/:streamId', status: '200' }) === 1, 3000, 'the left stream counted')
  t.equal(await sample(stack, 'relay_http_responses_total', { route: '/healthz', status: '200' }), 1)
  t.equal(await sample(stack, 'relay_http_responses_total', { route: '/v1/chat/stream/:streamId', status: '404' }), 1)
  t.equal(await sample(stack, 'relay_http_responses_total', { route: 'unmatched', status: '404' }), 1)
  t.equal(await sample(stack, 'relay_http_responses_total', { route: '/v1/chat/stream', status: '200' }), 1)
  t.equal(await sample(stack, 'relay_http_responses_total', { route: '/v1/chat', status: '201' }), 1)
  const text = await (await fetch(`${url}/metrics`)).text()
  t.notOk(text.includes(streamId), 'no stream id in a label')
  t.notOk(text.includes('no-such-stream-id') || text.includes('/not/a/route') || text.includes('secret'), 'no raw URL in a label')
})

t.test('relay_resumes_total counts every resume path, and not a first read', async (t) => {
  const stack = await startStack(t, { RELAY_PUBLISH_KEYS: 'pub-key' })
  const url = stack.relay.url
  const streamId = await stack.create({ tokens: ['a', 'b', 'c', 'd'], firstTokenDelayMs: 0, tokenDelayMs: 5 })
  await stack.read(streamId, { until: untilClose })
  t.equal(await sample(stack, 'relay_resumes_total', { via: 'stream' }), 0, 'the first read of a created stream is no resume')

  await stack.read(streamId, { until: untilClose, headers: { 'last-event-id': '2' } })
  t.equal(await sample(stack, 'relay_resumes_total', { via: 'stream' }), 1, 'Last-Event-ID')
  await collectSse(`${url}/v1/chat/stream/${streamId}?lastEventId=3`, { until: untilClose })
  t.equal(await sample(stack, 'relay_resumes_total', { via: 'stream' }), 2, '?lastEventId')

  // The chat page re-attaches through its conversation after a reload (public/generation.js), from the start.
  await stack.create({ tokens: Array.from({ length: 20 }, () => 'x'), firstTokenDelayMs: 0, tokenDelayMs: 50 }, { conversationId: 'conv-1' })
  const attached = await collectSse(`${url}/v1/conversations/conv-1/stream`, { until: untilClose })
  t.equal(attached.status, 200)
  t.equal(await sample(stack, 'relay_resumes_total', { via: 'conversation' }), 1, 'a conversation re-attached')

  const publish = async (): Promise<void> => {
    const res = await fetch(`${url}/v1/channels/orders/events`, {
      method: 'POST',
      headers: { authorization: 'Bearer pub-key', 'content-type': 'application/json' },
      body: JSON.stringify({ data: { n: 1 } })
    })
    t.equal(res.status, 202)
  }
  await publish()
  await publish()
  await collectSse(`${url}/v1/channels/orders/stream`, { until: (_e, all) => all.length >= 2 })
  t.equal(await sample(stack, 'relay_resumes_total', { via: 'channel' }), 0, 'a channel read from the start is no resume')
  await collectSse(`${url}/v1/channels/orders/stream`, { headers: { 'last-event-id': '1' }, until: (_e, all) => all.length >= 1 })
  t.equal(await sample(stack, 'relay_resumes_total', { via: 'channel' }), 1, 'a channel resumed')
})
