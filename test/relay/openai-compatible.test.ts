import OpenAI from 'openai'
import t from 'tap'
import { startStack } from '../fixtures/stack.js'

/** The mock's script rides along as an extra parameter (the relay passes unknown ones upstream). */
const withMock = <T extends object>(params: T, mock: Record<string, unknown>): T => ({ ...params, mock })

const tokens = ['The', ' answer', '\nis', ' 42', ' 😀']

t.test('the official OpenAI SDK streams through /v1/chat/completions', async (t) => {
  const stack = await startStack(t)
  const client = new OpenAI({ baseURL: `${stack.relay.url}/v1`, apiKey: 'unused', maxRetries: 0 })
  const stream = await client.chat.completions.create(withMock({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hi' }],
    stream: true,
    stream_options: { include_usage: true }
  }, { tokens, tokenDelayMs: 5, firstTokenDelayMs: 0 }))
  let text = ''
  let finish: string | null = null
  let usage: unknown
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? ''
    finish = chunk.choices[0]?.finish_reason ?? finish
    if (chunk.usage) usage = chunk.usage
  }
  t.equal(text, tokens.join(''))
  t.equal(finish, 'stop')
  t.match(usage, { completion_tokens: Number, prompt_tokens: Number, total_tokens: Number })
})

t.test('the SDK gets tool calls and a whole completion without stream', async (t) => {
  const stack = await startStack(t)
  const client = new OpenAI({ baseURL: `${stack.relay.url}/v1`, apiKey: 'unused', maxRetries: 0 })
  const completion = await client.chat.completions.create(withMock({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hi' }]
  }, { tokens, tokenDelayMs: 0, firstTokenDelayMs: 0 }))
  t.equal(completion.object, 'chat.completion')
  t.equal(completion.choices[0]?.message.content, tokens.join(''))
  t.equal(completion.choices[0]?.finish_reason, 'stop')
  t.ok(completion.usage !== undefined)

  const args = { city: 'Oslo' }
  const tools = await client.chat.completions.create(withMock({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'weather?' }]
  }, { tokens: [], toolCalls: [{ name: 'get_weather', arguments: args, id: 'call_9' }], firstTokenDelayMs: 0 }))
  const call = tools.choices[0]?.message.tool_calls?.[0]
  t.equal(call?.id, 'call_9')
  t.same(call?.type === 'function' ? JSON.parse(call.function.arguments) : undefined, args)
  t.equal(tools.choices[0]?.finish_reason, 'tool_calls')
})

t.test('upstream errors reach the SDK as API errors with the mapped status', async (t) => {
  const stack = await startStack(t, { UPSTREAM_MAX_RETRIES: '0' })
  const client = new OpenAI({ baseURL: `${stack.relay.url}/v1`, apiKey: 'unused', maxRetries: 0 })
  const rateLimited = await client.chat.completions.create(withMock({
    model: 'm',
    messages: [{ role: 'user', content: 'x' }],
    stream: true
  }, { status: 429, retryAfter: 3 })).then(() => undefined, (err: unknown) => err)
  t.equal((rateLimited as { status?: number } | undefined)?.status, 429)
  const stream = await client.chat.completions.create(withMock({
    model: 'm',
    messages: [{ role: 'user', content: 'x' }],
    stream: true
  }, { tokens: ['a', 'b', 'c'], fault: 'truncate', faultAfterTokens: 2, firstTokenDelayMs: 0, tokenDelayMs: 10 }))
  let text = ''
  await t.rejects((async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? ''
  })(), /ended|truncat/i, 'a cut answer throws instead of ending quietly')
  t.equal(text, 'ab')
})

t.test('on the wire: OpenAI chunks only (no event: lines), the usage chunk only when asked for, then data: [DONE]', async (t) => {
  const stack = await startStack(t)
  const chunksOf = async (extra: Record<string, unknown>): Promise<{ raw: string, chunks: Array<Record<string, unknown>> }> => {
    const res = await fetch(`${stack.relay.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true, ...extra, mock: { tokens, tokenDelayMs: 0, firstTokenDelayMs: 0 } })
    })
    t.equal(res.status, 200)
    const raw = await res.text()
    const data = raw.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6))
    t.equal(data.at(-1), '[DONE]', 'the last data line is [DONE]')
    return { raw, chunks: data.slice(0, -1).map((d) => JSON.parse(d) as Record<string, unknown>) }
  }

  const plain = await chunksOf({})
  t.ok(plain.raw.endsWith('data: [DONE]\n\n'), 'the body ends with the sentinel and a blank line')
  t.notMatch(plain.raw, /^event:/m, 'no named events: OpenAI clients know none')
  t.ok(plain.chunks.every((c) => Array.isArray(c.choices) && c.choices.length === 1), 'every chunk has its choice (no usage chunk, not asked for)')
  t.notOk(plain.chunks.some((c) => 'usage' in c), 'no usage')
  t.equal(plain.chunks.map((c) => (c.choices as Array<{ delta: { content?: string } }>)[0]?.delta.content ?? '').join(''), tokens.join(''))

  const withUsage = await chunksOf({ stream_options: { include_usage: true } })
  const usage = withUsage.chunks.filter((c) => 'usage' in c)
  t.equal(usage.length, 1, 'asked for: one usage chunk')
  t.same(usage[0]?.choices, [], 'with no choices, as OpenAI sends it')
  t.equal(withUsage.chunks.at(-1), usage[0], 'the last chunk before [DONE]')
})
