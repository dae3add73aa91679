import t from 'tap'
import { closeReason, payloads, startStack, textOf, untilClose } from '../fixtures/stack.js'

// Text a naive relay mangles: newlines, a bare CR, CRLF, the sentinel inside content, U+2028,
// astral characters, HTML.
const TOKENS = ['Hel', 'lo', '\n\n', 'line\rtwo', '\r\n', 'data: [DONE]', ' \u2028 ', '😀👍🏽', ' <b>&amp;</b>', '']

t.test('a full answer arrives as delta, finish, usage, [DONE] and close', async (t) => {
  const stack = await startStack(t)
  const res = await stack.stream({ tokens: TOKENS, tokenDelayMs: 5, firstTokenDelayMs: 0 }, { until: untilClose })
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-cache, no-transform')
  t.equal(res.headers['x-accel-buffering'], 'no')
  t.equal(res.headers.connection, 'keep-alive')
  t.equal(res.headers['content-encoding'], undefined)
  t.match(res.headers['x-stream-id'], /^[A-Za-z0-9_-]{22}$/, 'a 128-bit stream id')
  t.same(res.retries, [3000], 'retry: 3000 first')

  t.equal(textOf(res.events), TOKENS.join(''), 'the text is exactly the upstream text')
  const withIds = res.events.filter((e) => e.event !== 'close')
  t.same(withIds.map((e) => Number(e.id)), withIds.map((_, i) => i + 1), 'ids 1..N in order')
  const types = payloads(res.events).map((p) => p.type)
  t.equal(types.at(-2), 'finish')
  t.equal(types.at(-1), 'usage')
  t.same(payloads(res.events).find((p) => p.type === 'finish'), { type: 'finish', reason: 'stop' })
  t.equal(res.events.at(-2)?.data, '[DONE]', '[DONE] arrives literally, before close')
  t.equal(closeReason(res.events), 'done')
  t.equal(res.events.at(-1)?.id, undefined, 'close carries no id')
  t.ok(res.raw.includes('event: close\ndata: {"reason":"done"}\n\n'), 'close has a data line')
})

t.test('tool calls are relayed as fragments that rebuild the arguments', async (t) => {
  const stack = await startStack(t)
  const args = { city: 'Paris', unit: 'celsius' }
  const res = await stack.stream({ toolCalls: [{ name: 'get_weather', arguments: args, id: 'call_1' }], firstTokenDelayMs: 0, tokenDelayMs: 0 }, { until: untilClose })
  const calls = payloads(res.events).filter((p) => p.type === 'tool_call')
  t.ok(calls.length >= 1)
  t.equal(calls[0]?.id, 'call_1')
  t.equal(calls[0]?.name, 'get_weather')
  t.same(JSON.parse(calls.map((c) => c.arguments).join('')), args)
  t.same(payloads(res.events).find((p) => p.type === 'finish'), { type: 'finish', reason: 'tool_calls' })
  t.equal(closeReason(res.events), 'done')
})

t.test('n > 1 (allowed by MAX_CHOICES): the extra choices carry their index', async (t) => {
  const stack = await startStack(t, { MAX_CHOICES: '2' })
  const res = await stack.stream({ tokens: ['a', 'b'], n: 2, firstTokenDelayMs: 0, tokenDelayMs: 0 }, { until: untilClose, extra: { n: 2 } })
  const deltas = payloads(res.events).filter((p) => p.type === 'delta')
  t.equal(deltas.filter((p) => p.choice === undefined).map((p) => p.content).join(''), 'ab')
  t.equal(deltas.filter((p) => p.choice === 1).map((p) => p.content).join(''), 'ab')
  t.equal(closeReason(res.events), 'done')
})

t.test('extra OpenAI parameters pass upstream; the body cannot pick the upstream', async (t) => {
  const stack = await startStack(t, { UPSTREAM_API_KEY: 'sk-secret-upstream' })
  const res = await stack.stream({ tokens: ['x'], tag: 'extra', firstTokenDelayMs: 0 }, {
    until: untilClose,
    extra: { temperature: 0.2, seed: 7, conversationId: 'c1', url: 'http://evil.invalid', apiKey: 'mine' }
  })
  t.equal(closeReason(res.events), 'done')
  const record = await stack.mock.waitFor('extra')
  const body = record.body as Record<string, unknown>
  t.equal(body.temperature, 0.2)
  t.equal(body.seed, 7)
  t.equal(body.stream, true)
  t.equal(body.conversationId, undefined, 'relay-only fields stay in the relay')
  t.equal(record.headers.authorization, 'Bearer sk-secret-upstream', 'the configured key, not the body')
  t.notOk(res.raw.includes('sk-secret-upstream'), 'the upstream key never reaches the client')
})
