// The mock's reasoning mode on the wire, in each format: what a reasoning model's stream looks
// like (the field, the blocks and events, their order), its pacing, and usage.
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { QUICK } from '../fixtures/mock.js'

interface Frame { event: string | undefined, data: Record<string, unknown> }

async function frames (url: string, path: string, mock: Record<string, unknown>): Promise<Frame[]> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'x' }], mock }) })
  const text = await res.text()
  return text.split('\n\n').filter(block => block.includes('data: {')).map(block => {
    const event = /^event: (.*)$/m.exec(block)?.[1]
    return { event, data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] as string) as Record<string, unknown> }
  })
}

const choice0 = (f: Frame): Record<string, unknown> | undefined => (f.data.choices as Array<{ delta: Record<string, unknown> }> | undefined)?.[0]?.delta

t.test('openai: reasoning_content deltas (content null) by default, then content; usage counts them', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const list = await frames(mock.url, '/chat/completions', { reasoning: 'Hm, let me see.', text: 'Yes.' })
  const deltas = list.map(choice0).filter(d => d !== undefined && Object.keys(d).length > 0)
  t.same(deltas.slice(1, 5), [
    { content: null, reasoning_content: 'Hm,' },
    { content: null, reasoning_content: ' let' },
    { content: null, reasoning_content: ' me' },
    { content: null, reasoning_content: ' see.' }
  ])
  t.same(deltas.slice(5), [{ content: 'Yes.' }])
  t.same(list.at(-1)?.data.usage, { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10, completion_tokens_details: { reasoning_tokens: 4 } })
})

t.test('openai: reasoningField reasoning (content "") and exact reasoningTokens', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const list = await frames(mock.url, '/chat/completions', { reasoningTokens: ['a\n', 'b'], reasoning: 'ignored', reasoningField: 'reasoning', tokens: ['c'] })
  const deltas = list.map(choice0).filter(d => d !== undefined && (d.reasoning !== undefined || d.reasoning_content !== undefined))
  t.same(deltas, [{ content: '', reasoning: 'a\n' }, { content: '', reasoning: 'b' }])
})

t.test('openai-responses: a reasoning item with its summary, then the message at output 1', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const list = await frames(mock.url, '/responses', { reasoningTokens: ['Plan', ' it'], tokens: ['Ok'], toolCalls: [{ name: 'f', arguments: '{}' }] })
  t.same(list.map(f => f.event), [
    'response.created',
    'response.output_item.added',
    'response.reasoning_summary_part.added',
    'response.reasoning_summary_text.delta',
    'response.reasoning_summary_text.delta',
    'response.reasoning_summary_text.done',
    'response.reasoning_summary_part.done',
    'response.output_item.done',
    'response.output_item.added',
    'response.output_text.delta',
    'response.output_item.added',
    'response.function_call_arguments.delta',
    'response.function_call_arguments.delta',
    'response.function_call_arguments.done',
    'response.completed'
  ])
  t.match(list[5]?.data, { item_id: 'rs_mock', summary_index: 0, text: 'Plan it' })
  t.match(list[8]?.data, { output_index: 1, item: { type: 'message' } })
  t.match(list[10]?.data, { output_index: 2, item: { type: 'function_call', name: 'f' } })
  t.match(list.at(-1)?.data, { response: { usage: { output_tokens: 3, output_tokens_details: { reasoning_tokens: 2 } } } })
})

t.test('anthropic: a thinking block ending in signature_delta, a redacted_thinking block, then text at index 2', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const list = await frames(mock.url, '/messages', { reasoningTokens: ['Hmm'], redactedThinking: true, tokens: ['Hi'] })
  t.same(list.map(f => [f.event, f.data.index, (f.data.content_block as { type?: string } | undefined)?.type ?? (f.data.delta as { type?: string } | undefined)?.type]), [
    ['message_start', undefined, undefined],
    ['content_block_start', 0, 'thinking'],
    ['content_block_delta', 0, 'thinking_delta'],
    ['content_block_delta', 0, 'signature_delta'],
    ['content_block_stop', 0, undefined],
    ['content_block_start', 1, 'redacted_thinking'],
    ['content_block_stop', 1, undefined],
    ['content_block_start', 2, 'text'],
    ['content_block_delta', 2, 'text_delta'],
    ['content_block_stop', 2, undefined],
    ['message_delta', undefined, undefined],
    ['message_stop', undefined, undefined]
  ])
  t.match(list.at(-2)?.data, { usage: { output_tokens: 2 } }, 'thinking counted in output_tokens')
})

t.test('pacing: firstTokenDelayMs before the first reasoning token, thinkingMs before the answer', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const started = Date.now()
  const res = await fetch(`${mock.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: true, mock: { reasoningTokens: ['a'], tokens: ['b'], firstTokenDelayMs: 100, thinkingMs: 400 } }) })
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  let text = ''
  let reasoningAt = 0
  let answerAt = 0
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    text += decoder.decode(value, { stream: true })
    if (reasoningAt === 0 && text.includes('"reasoning_content":"a"')) reasoningAt = Date.now() - started
    if (answerAt === 0 && text.includes('"content":"b"')) answerAt = Date.now() - started
  }
  t.ok(reasoningAt >= 90, `reasoning after the first-token delay (${reasoningAt} ms)`)
  t.ok(answerAt - reasoningAt >= 380, `the answer after thinkingMs (${answerAt - reasoningAt} ms later)`)
})

t.test('a whole (non-stream) answer carries the reasoning in each format', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const post = async (path: string, mockScript: Record<string, unknown>): Promise<unknown> => await (await fetch(`${mock.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [], mock: { reasoning: 'Think.', text: 'Say.', ...mockScript } }) })).json()
  t.match(await post('/chat/completions', {}), { choices: [{ message: { content: 'Say.', reasoning_content: 'Think.' } }], usage: { completion_tokens_details: { reasoning_tokens: 1 } } })
  t.match(await post('/chat/completions', { reasoningField: 'reasoning' }), { choices: [{ message: { content: 'Say.', reasoning: 'Think.' } }] })
  t.match(await post('/responses', {}), { output: [{ type: 'reasoning', summary: [{ type: 'summary_text', text: 'Think.' }] }, { type: 'message' }] })
  t.match(await post('/messages', { redactedThinking: true }), { content: [{ type: 'thinking', thinking: 'Think.', signature: String }, { type: 'redacted_thinking' }, { type: 'text', text: 'Say.' }] })
})
