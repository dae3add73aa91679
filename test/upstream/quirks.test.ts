// Wire quirks real servers send: each must give exactly the answer a clean stream gives.
import t from 'tap'
import type { MockQuirk } from '../../lib/mock/index.js'
import type { UpstreamFormat } from '../../lib/upstream/index.js'
import { ask, assertNoOpenSockets, harness, summarize } from '../fixtures/mock.js'

const tokens = ['Hel', 'lo', ', wörld', ' 🎉', '\n', 'da', 'ta: [DONE]', ' "[DONE]"', '\r', 'end']
const toolCalls = [{ name: 'lookup', arguments: { q: 'x', n: 2 }, id: 'call_1' }]

const QUIRKS: MockQuirk[] = ['crlf', 'cr', 'bom', 'no-space', 'event-message', 'split-json', 'done-no-blank', 'no-done', 'comments']

for (const format of ['openai', 'openai-responses', 'anthropic'] as UpstreamFormat[]) {
  t.test(`${format}: every quirk gives the clean answer`, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format, maxRetries: 0 })
    const clean = await ask(upstream, { tokens, toolCalls, usage: true })
    t.equal(clean.error, undefined)
    const summary = summarize(clean.events)
    t.equal(summary.text[0], tokens.join(''), 'text is exact')
    t.same(summary.tools['0:0'], { id: 'call_1', name: 'lookup', arguments: '{"q":"x","n":2}' })
    t.equal(summary.finish[0], 'tool_calls')
    t.ok(summary.usage !== undefined, 'usage')
    // `event-message`, `done-no-blank` and `no-done` are about OpenAI's unnamed events and sentinel.
    const quirks = format === 'openai' ? QUIRKS : QUIRKS.filter(q => !['event-message', 'done-no-blank', 'no-done'].includes(q))
    for (const quirk of quirks) {
      const outcome = await ask(upstream, { tokens, toolCalls, usage: true, quirks: [quirk] })
      t.equal(outcome.error, undefined, `${quirk}: no error`)
      t.same(outcome.events, clean.events, `${quirk}: same events`)
    }
    const all = await ask(upstream, { tokens, toolCalls, usage: true, quirks: format === 'openai' ? ['crlf', 'bom', 'no-space', 'event-message', 'split-json', 'done-no-blank', 'comments'] : ['cr', 'bom', 'no-space', 'split-json', 'comments'] })
    t.same(all.events, clean.events, 'all quirks at once: same events')
    t.equal(mock.requests.length, quirks.length + 2)
    await assertNoOpenSockets(t, upstream, mock)
  })
}

t.test('Azure-style first chunk with empty choices and a usage-only chunk', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const outcome = await ask(upstream, {
    raw: [
      'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"content_filter_results":{}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"content_filter_results":{"hate":{"filtered":false}}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}\n\n',
      'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n',
      'data: [DONE]\n\n'
    ]
  })
  t.equal(outcome.error, undefined)
  t.same(outcome.events, [
    { type: 'delta', choice: 0, content: 'Hi' },
    { type: 'finish', choice: 0, reason: 'content_filter' },
    { type: 'usage', prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }
  ])
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a whole tool call in one chunk, and Groq usage under x_groq', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const outcome = await ask(upstream, {
    raw: [
      'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":"f","arguments":"{\\"a\\":1}"}}]}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"x_groq":{"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}}\n\n',
      'data: [DONE]\n\n'
    ]
  })
  t.same(outcome.events, [
    { type: 'tool_call', choice: 0, index: 0, id: 'call_9', name: 'f', arguments: '{"a":1}' },
    { type: 'finish', choice: 0, reason: 'tool_calls' },
    { type: 'usage', prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 }
  ])
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('n > 1 keeps the choice index; done only when every choice finished', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const outcome = await ask(upstream, { tokens: ['a', 'b'], n: 3, usage: true, quirks: ['no-done'] })
  t.equal(outcome.error, undefined, 'finish on every choice, no [DONE]: complete')
  const summary = summarize(outcome.events)
  t.same(summary.text, { 0: 'ab', 1: 'ab', 2: 'ab' })
  t.same(summary.finish, { 0: 'stop', 1: 'stop', 2: 'stop' })
  t.equal(summary.usageEvents, 1)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('role-only chunks, comments and empty data yield nothing', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const outcome = await ask(upstream, {
    raw: [
      ': OPENROUTER PROCESSING\n\n',
      'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n',
      'data:\n\n',
      'retry: 1000\nid: 7\n\n',
      'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}\n\n',
      'data: [DONE]\n\n'
    ]
  })
  t.same(outcome.events, [{ type: 'delta', choice: 0, content: 'x' }, { type: 'finish', choice: 0, reason: 'stop' }])
  await assertNoOpenSockets(t, upstream, mock)
})
