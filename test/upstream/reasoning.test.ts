// Reasoning models through the client, from the mock in each format: reasoning then answer, exact
// texts, reasoning tokens in usage; thinking keeps the first-token and idle timers satisfied (a
// signature or a redacted block too), silence still times out.
import t from 'tap'
import type { UpstreamEvent, UpstreamFormat } from '../../lib/upstream/index.js'
import { ask, assertNoOpenSockets, harness, summarize } from '../fixtures/mock.js'

const thoughts = ['Let', ' me', ' think', ':\n', 'two', ' plus', ' two', '…', ' 🤔']
const answer = ['It', ' is', ' **4**', '.']

/** The event types in order, runs collapsed: `reasoning delta finish usage`. */
function shape (events: readonly UpstreamEvent[]): string {
  return events.map(e => e.type).filter((type, i, all) => type !== all[i - 1]).join(' ')
}

const variants: Array<[string, UpstreamFormat, Record<string, unknown>, number | undefined]> = [
  ['openai, reasoning_content (DeepSeek, vLLM)', 'openai', { reasoningField: 'reasoning_content' }, thoughts.length],
  ['openai, reasoning (OpenRouter, Ollama)', 'openai', { reasoningField: 'reasoning' }, thoughts.length],
  ['openai-responses, reasoning summary', 'openai-responses', {}, thoughts.length],
  // Anthropic counts thinking in output_tokens and reports no figure of its own.
  ['anthropic, thinking + signature + redacted_thinking', 'anthropic', { redactedThinking: true }, undefined]
]

for (const [name, format, script, reasoningTokens] of variants) {
  t.test(`${name}: reasoning, then the answer, exact`, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format, maxRetries: 0 })
    const { events, error } = await ask(upstream, { ...script, reasoningTokens: thoughts, tokens: answer, usage: true })
    t.equal(error, undefined)
    t.equal(shape(events), 'reasoning delta finish usage', 'reasoning first, then the answer')
    const summary = summarize(events)
    t.same(summary.reasoning, { 0: thoughts.join('') }, 'the reasoning text, exact')
    t.same(summary.text, { 0: answer.join('') }, 'the answer, exact')
    t.equal(events.filter(e => e.type === 'reasoning').length, thoughts.length, 'one event per reasoning token')
    t.match(summary.usage, { completion_tokens: thoughts.length + answer.length })
    t.equal(summary.usage?.reasoning_tokens, reasoningTokens, 'reasoning tokens where the format reports them')
    await assertNoOpenSockets(t, upstream, mock)
  })

  t.test(`${name}: a whole (non-stream) answer carries its reasoning too`, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format, maxRetries: 0 })
    const { events, error } = await ask(upstream, { ...script, fault: 'json', reasoning: 'Two and two.', text: 'Four.' })
    t.equal(error, undefined)
    t.same(events.slice(0, 2), [{ type: 'reasoning', choice: 0, content: 'Two and two.' }, { type: 'delta', choice: 0, content: 'Four.' }])
    await assertNoOpenSockets(t, upstream, mock)
  })

  t.test(`${name}: thinking longer than the first-token timeout completes`, async t => {
    // 8 reasoning tokens 100 ms apart: ~0.8 s of thinking against a 400 ms first-token timeout.
    const { mock, client } = await harness(t)
    const upstream = client({ format, firstTokenTimeoutMs: 400, idleTimeoutMs: 400, maxRetries: 0 })
    const { events, error } = await ask(upstream, { ...script, reasoningTokens: thoughts.slice(0, 8), tokens: answer, firstTokenDelayMs: 50, tokenDelayMs: 100, thinkingMs: 100 })
    t.equal(error, undefined, 'no timeout: reasoning is progress')
    t.equal(summarize(events).text[0], answer.join(''))
    await assertNoOpenSockets(t, upstream, mock)
  })
}

t.test('a model that thinks in silence still hits the first-token timeout', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ firstTokenTimeoutMs: 300, maxRetries: 0 })
  const { events, error } = await ask(upstream, { reasoning: 'Too late.', tokens: answer, firstTokenDelayMs: 3000, pingEveryMs: 50, tag: 'silent' })
  t.same(events, [])
  t.match(error, { code: 'upstream_first_token_timeout', status: 504 })
  t.equal((await mock.waitFor('silent')).aborted, true)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a pause after the thinking longer than the idle timeout is a stall', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ idleTimeoutMs: 300, maxRetries: 0 })
  const { events, error } = await ask(upstream, { reasoningTokens: ['a', 'b'], tokens: answer, thinkingMs: 3000, pingEveryMs: 50 })
  t.same(summarize(events).reasoning, { 0: 'ab' }, 'the reasoning came')
  t.match(error, { code: 'upstream_idle_timeout', status: 504 })
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a fault in the middle of the reasoning: the reasoning so far, then the error', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 2 })
  const { events, error } = await ask(upstream, { reasoningTokens: thoughts, tokens: answer, fault: 'reset', faultAfterTokens: 3 })
  t.same(summarize(events).reasoning, { 0: thoughts.slice(0, 3).join('') })
  t.match(error, { code: 'upstream_reset' })
  t.equal(mock.requests.length, 1, 'not retried: reasoning was delivered')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('n > 1: each choice reasons, then answers', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { events, error } = await ask(upstream, { reasoningTokens: ['x', 'y'], tokens: ['1', '2'], n: 2 })
  t.equal(error, undefined)
  t.same(summarize(events).reasoning, { 0: 'xy', 1: 'xy' })
  t.same(summarize(events).text, { 0: '12', 1: '12' })
  await assertNoOpenSockets(t, upstream, mock)
})

// Model output that is no event (a signature, a redacted or encrypted block) is progress too.
// Three writes 500 ms apart against 800 ms timers: the first token would come at ~1000 ms; only
// the write at ~500 ms keeps the first-token timer from firing.
const silentThinking: Array<[string, UpstreamFormat, string[]]> = [
  ['anthropic: a signature (thinking with display omitted)', 'anthropic', [
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}\n\nevent: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n',
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBsig"}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
    'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Done."}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":40}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
  ]],
  ['anthropic: a redacted_thinking block', 'anthropic', [
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}\n\n',
    'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"EmwKAhgB"}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
    'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":"Done."}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":40}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
  ]],
  ['openai: OpenRouter\'s encrypted reasoning detail', 'openai', [
    'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":null,"reasoning_details":[]},"finish_reason":null}]}\n\n',
    'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":null,"reasoning_details":[{"type":"reasoning.encrypted","data":"gAAAAABo","format":"openai-responses-v1","index":0}]},"finish_reason":null}]}\n\n',
    'data: {"choices":[{"index":0,"delta":{"content":"Done."},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
  ]]
]

for (const [name, format, raw] of silentThinking) {
  t.test(`${name} counts as progress for the timers, and is no event`, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format, firstTokenTimeoutMs: 800, idleTimeoutMs: 800, maxRetries: 0 })
    const { events, error } = await ask(upstream, { raw, rawDelayMs: 500 })
    t.equal(error, undefined, 'no first-token timeout')
    t.same(events.filter(e => e.type === 'delta' || e.type === 'reasoning'), [{ type: 'delta', choice: 0, content: 'Done.' }], 'nothing shown but the answer')
    await assertNoOpenSockets(t, upstream, mock)
  })
}

t.test('without that progress, the same wait is a first-token timeout', async t => {
  // The control for the three above: the middle write carries nothing (a ping).
  const { mock, client } = await harness(t)
  const upstream = client({ format: 'anthropic', firstTokenTimeoutMs: 800, idleTimeoutMs: 800, maxRetries: 0 })
  const [first, , last] = silentThinking[0]?.[2] ?? []
  const { error } = await ask(upstream, { raw: [first as string, 'event: ping\ndata: {"type": "ping"}\n\n', last as string], rawDelayMs: 500 })
  t.match(error, { code: 'upstream_first_token_timeout' })
  await assertNoOpenSockets(t, upstream, mock)
})
