// What the client sends for each format: path, auth, and the minimal body translation.
import t from 'tap'
import { harness } from '../fixtures/mock.js'
import { ask } from '../fixtures/mock.js'

const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }]
const tools = [{ type: 'function', function: { name: 'f', description: 'd', parameters: { type: 'object' } } }]

t.test('openai: body passed through, model defaulted, stream and usage forced', async t => {
  const { mock, client } = await harness(t)
  await ask(client({ model: 'm-default' }), {}, { messages, tools, temperature: 0.2, stream: false, stream_options: { foo: 1 }, extra_param: 'kept' })
  const record = mock.requests[0]!
  t.equal(record.path, '/v1/chat/completions')
  t.equal(record.headers.authorization, 'Bearer sk-test-secret-key')
  t.match(record.body, { model: 'm-default', messages, tools, temperature: 0.2, stream: true, stream_options: { foo: 1, include_usage: true }, extra_param: 'kept' })
})

t.test('openai: the request model wins; the base URL query is kept', async t => {
  const { mock } = await harness(t)
  const { UpstreamClient } = await import('../../lib/upstream/index.js')
  const client = new UpstreamClient({ url: `${mock.url}/?api-version=2024-10-21` })
  t.teardown(() => client.close())
  await ask(client, {}, { model: 'gpt-x' })
  t.equal(mock.requests[0]?.path, '/v1/chat/completions')
  t.match(mock.requests[0]?.body, { model: 'gpt-x' })
  t.equal(mock.requests[0]?.headers.authorization, undefined, 'no key, no header')
})

t.test('openai-responses: messages → input, max_tokens → max_output_tokens, flat tools', async t => {
  const { mock, client } = await harness(t)
  await ask(client({ format: 'openai-responses' }), {}, { messages, tools, max_tokens: 50, n: 1 })
  const body = mock.requests[0]!.body as Record<string, unknown>
  t.equal(mock.requests[0]!.path, '/v1/responses')
  t.same(body.input, messages)
  t.equal(body.max_output_tokens, 50)
  t.same(body.tools, [{ type: 'function', name: 'f', description: 'd', parameters: { type: 'object' } }])
  t.equal(body.stream, true)
  t.notOk('messages' in body || 'n' in body || 'stream_options' in body || 'max_tokens' in body)
})

t.test('anthropic: system lifted, max_tokens required, tools and stop translated, x-api-key', async t => {
  const { mock, client } = await harness(t)
  await ask(client({ format: 'anthropic' }), {}, { messages, tools, stop: 'END', tool_choice: 'required', n: 1, presence_penalty: 0 })
  const record = mock.requests[0]!
  const body = record.body as Record<string, unknown>
  t.equal(record.path, '/v1/messages')
  t.equal(record.headers['x-api-key'], 'sk-test-secret-key')
  t.equal(record.headers['anthropic-version'], '2023-06-01')
  t.equal(record.headers.authorization, undefined)
  t.equal(body.system, 'Be brief.')
  t.same(body.messages, [{ role: 'user', content: 'Hi' }])
  t.equal(body.max_tokens, 4096)
  t.same(body.stop_sequences, ['END'])
  t.same(body.tools, [{ name: 'f', description: 'd', input_schema: { type: 'object' } }])
  t.same(body.tool_choice, { type: 'any' })
  t.notOk('n' in body || 'presence_penalty' in body || 'stop' in body)
})
