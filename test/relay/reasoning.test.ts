// Reasoning models through the relay's HTTP routes, from the mock in each upstream format:
// reasoning events before the answer, exact texts, resumable from the middle of the thinking,
// journaled like deltas; passed on as reasoning_content by the OpenAI-compatible route; onFinish
// gets the reasoning apart from the answer; a thinking model is not a stalled one.
import OpenAI from 'openai'
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import type { GenerationResult } from '../../lib/relay/generation.js'
import { startRelay } from '../fixtures/relay.js'
import { closeReason, payloads, startStack, textOf, untilClose, waitUntil } from '../fixtures/stack.js'
import type { CollectedEvent } from '../fixtures/sse-client.js'

const thoughts = ['First', ', the', ' units', ':\n', 'km', ' → ', 'miles', '… ', '🧮']
const answer = ['About', ' 6.2', ' miles', '.']
const quick = { firstTokenDelayMs: 0, tokenDelayMs: 0, jitterMs: 0 }

/** The mock's script rides along as an extra parameter (the relay passes unknown ones upstream). */
const withMock = <T extends object>(params: T, mock: Record<string, unknown>): T => ({ ...params, mock })

const reasoningOf = (events: readonly CollectedEvent[]): string =>
  payloads(events).filter((p) => p.type === 'reasoning').map((p) => p.content as string).join('')

const formats: Array<[string, Record<string, unknown>, number | undefined]> = [
  ['openai', { reasoningField: 'reasoning_content' }, thoughts.length],
  ['openai', { reasoningField: 'reasoning' }, thoughts.length],
  ['openai-responses', {}, thoughts.length],
  ['anthropic', { redactedThinking: true }, undefined]
]

for (const [format, script, reasoningTokens] of formats) {
  const name = `${format}${script.reasoningField === undefined ? '' : ` (${script.reasoningField as string})`}`
  t.test(`${name}: reasoning events, then the answer, exact; resume from the middle of the thinking`, async (t) => {
    const stack = await startStack(t, { UPSTREAM_FORMAT: format })
    const res = await stack.stream({ ...quick, ...script, reasoningTokens: thoughts, tokens: answer }, { until: untilClose })
    t.equal(res.status, 200)
    const types = payloads(res.events).map((p) => p.type)
    t.same(types, [...thoughts.map(() => 'reasoning'), ...answer.map(() => 'delta'), 'finish', 'usage'], 'reasoning first, then the answer')
    t.equal(reasoningOf(res.events), thoughts.join(''), 'concatenated reasoning = the upstream\'s, exact')
    t.equal(textOf(res.events), answer.join(''), 'concatenated deltas = the answer, exact')
    t.equal(res.events.find((e) => e.data.startsWith('{"type":"reasoning"'))?.data, `{"type":"reasoning","content":${JSON.stringify(thoughts[0])}}`, 'the event as the wire format shows it')
    const usage = payloads(res.events).find((p) => p.type === 'usage')
    t.equal(usage?.reasoning_tokens, reasoningTokens, 'reasoning_tokens in usage where the upstream reports it')
    t.equal(closeReason(res.events), 'done')

    const streamId = res.headers['x-stream-id'] as string
    const numbered = res.events.filter((e) => e.id !== undefined)
    const rest = await stack.read(streamId, { until: untilClose, headers: { 'last-event-id': '3' } })
    t.same(rest.events.filter((e) => e.id !== undefined).map((e) => [e.id, e.data]), numbered.slice(3).map((e) => [e.id, e.data]), 'after id 3: exactly the rest, once')
    t.equal(reasoningOf(rest.events), thoughts.slice(3).join(''), 'the rest of the thinking')
    t.equal(textOf(rest.events), answer.join(''))
  })
}

t.test('a live reader cut in the middle of the thinking resumes with no gap and no duplicate', async (t) => {
  const stack = await startStack(t, { DETACH_GRACE_MS: '5000' })
  const many = Array.from({ length: 20 }, (_, i) => `t${i} `)
  const first = await stack.stream({ ...quick, reasoningTokens: many, tokens: answer, tokenDelayMs: 20 }, { until: (_e, all) => all.length >= 5 })
  t.ok(first.aborted, 'left after 5 reasoning events')
  const rest = await stack.read(first.headers['x-stream-id'] as string, { until: untilClose, headers: { 'last-event-id': first.events.at(-1)?.id as string } })
  t.equal(reasoningOf(first.events) + reasoningOf(rest.events), many.join(''), 'the two halves make the exact thinking')
  t.equal(textOf(rest.events), answer.join(''))
  const ids = [...first.events, ...rest.events].filter((e) => e.id !== undefined).map((e) => Number(e.id))
  t.same(ids, ids.map((_, i) => i + 1), 'ids continue')
  t.equal(closeReason(rest.events), 'done')
})

t.test('n > 1 (allowed by MAX_CHOICES): reasoning of the extra choices carries "choice"', async (t) => {
  const stack = await startStack(t, { MAX_CHOICES: '2' })
  const res = await stack.stream({ ...quick, reasoningTokens: ['a'], tokens: ['b'] }, { until: untilClose, extra: { n: 2 } })
  const reasoning = res.events.filter((e) => e.data.startsWith('{"type":"reasoning"')).map((e) => e.data)
  t.same(reasoning, ['{"type":"reasoning","content":"a"}', '{"type":"reasoning","choice":1,"content":"a"}'])
})

t.test('the first-token timeout shorter than the thinking: the answer completes; silence still times out', async (t) => {
  // Timers scaled down: 400 ms against ~1 s of thinking, one reasoning token every 100 ms.
  const stack = await startStack(t, { UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: '400', UPSTREAM_IDLE_TIMEOUT_MS: '400', UPSTREAM_MAX_RETRIES: '0' })
  const thinking = Array.from({ length: 10 }, (_, i) => `step ${i}. `)
  const res = await stack.stream({ reasoningTokens: thinking, tokens: answer, firstTokenDelayMs: 100, tokenDelayMs: 100, jitterMs: 0, thinkingMs: 100 }, { until: untilClose })
  t.equal(res.status, 200)
  t.equal(reasoningOf(res.events), thinking.join(''))
  t.equal(textOf(res.events), answer.join(''))
  t.equal(closeReason(res.events), 'done')
  const lastThought = res.events.filter((e) => e.data.startsWith('{"type":"reasoning"')).at(-1)?.at ?? 0
  t.ok(lastThought >= 400, `the thinking outlasted the first-token timeout (${Math.round(lastThought)} ms)`)

  const silent = await stack.stream({ reasoning: 'never seen', tokens: answer, firstTokenDelayMs: 5000, pingEveryMs: 50 })
  t.equal(silent.status, 504, 'a truly silent upstream is still a 504')
  t.equal((JSON.parse(silent.raw) as { error: { code: string } }).error.code, 'upstream_first_token_timeout')
})

t.test('the OpenAI-compatible route passes reasoning on as reasoning_content, with reasoning_tokens', async (t) => {
  const stack = await startStack(t)
  const client = new OpenAI({ baseURL: `${stack.relay.url}/v1`, apiKey: 'unused', maxRetries: 0 })
  const mock = { ...quick, reasoningTokens: thoughts, tokens: answer }
  const stream = await client.chat.completions.create(withMock({
    model: 'deepseek-reasoner',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    stream_options: { include_usage: true }
  }, mock))
  let reasoning = ''
  let text = ''
  let usage: unknown
  let reasoningAfterText = false
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta as { content?: string, reasoning_content?: string } | undefined
    if (delta?.reasoning_content !== undefined) {
      reasoning += delta.reasoning_content
      if (text !== '') reasoningAfterText = true
    }
    text += delta?.content ?? ''
    if (chunk.usage) usage = chunk.usage
  }
  t.equal(reasoning, thoughts.join(''), 'delta.reasoning_content, exact')
  t.equal(text, answer.join(''))
  t.notOk(reasoningAfterText, 'all of it before the answer')
  t.match(usage, { completion_tokens: thoughts.length + answer.length, completion_tokens_details: { reasoning_tokens: thoughts.length } })

  const whole = await client.chat.completions.create(withMock({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }, mock))
  t.match(whole.choices[0]?.message, { role: 'assistant', content: answer.join(''), reasoning_content: thoughts.join('') }, 'message.reasoning_content in a whole completion')
  t.match(whole.usage, { completion_tokens_details: { reasoning_tokens: thoughts.length } })
})

t.test('onFinish gets the reasoning apart from the answer, and the usage with its reasoning tokens', async (t) => {
  const mock = await startMockUpstream()
  const finished: GenerationResult[] = []
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, UPSTREAM_FORMAT: 'openai-responses' }, hooks: { onFinish: (result) => { finished.push(result) } } })
  t.teardown(async () => { await relay.close(); await mock.close() })
  const res = await fetch(`${relay.url}/v1/chat/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], mock: { ...quick, reasoningTokens: thoughts, tokens: answer } }) })
  await res.text()
  await waitUntil(() => finished.length === 1)
  t.match(finished[0], { reason: 'done', reasoning: thoughts.join(''), text: answer.join(''), usageEstimated: false, usage: { reasoning_tokens: thoughts.length } })
  t.equal(finished[0]?.choices[0]?.reasoning, thoughts.join(''))
})
