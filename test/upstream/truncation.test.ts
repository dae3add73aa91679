// A body that ends without a terminal signal is a cut answer (`upstream_truncated`), whatever
// the format; a finish on every choice is terminal enough; only the exact `[DONE]` counts.
import t from 'tap'
import type { UpstreamFormat } from '../../lib/upstream/index.js'
import { ask, assertNoOpenSockets, harness, summarize } from '../fixtures/mock.js'

for (const format of ['openai', 'openai-responses', 'anthropic'] as UpstreamFormat[]) {
  t.test(`${format}: body ends after two tokens`, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format, maxRetries: 2 })
    const { events, error } = await ask(upstream, { tokens: ['a', 'b', 'c'], fault: 'truncate', faultAfterTokens: 2 })
    t.equal(summarize(events).text[0], 'ab')
    t.match(error, { code: 'upstream_truncated', status: 502 })
    t.equal(mock.requests.length, 1, 'not retried after a token')
    await assertNoOpenSockets(t, upstream, mock)
  })

  t.test(`${format}: body ends before any token`, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format, maxRetries: 0 })
    const { events, error } = await ask(upstream, { fault: 'truncate' })
    t.same(events, [])
    t.match(error, { code: 'upstream_truncated', status: 502, retryable: true })
    await assertNoOpenSockets(t, upstream, mock)
  })
}

t.test('finish on every choice then end of body, no [DONE]: complete', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { events, error } = await ask(upstream, {
    raw: [
      'data: {"choices":[{"index":0,"delta":{"content":"x"}},{"index":1,"delta":{"content":"y"}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"length"}]}\n\n',
      'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n'
    ]
  })
  t.equal(error, undefined)
  t.same(summarize(events).finish, { 0: 'stop', 1: 'length' })
  t.same(events.at(-1), { type: 'usage', prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 })
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('one of two choices unfinished at end of body: truncated', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { error } = await ask(upstream, {
    raw: [
      'data: {"choices":[{"index":0,"delta":{"content":"x"}},{"index":1,"delta":{"content":"y"}}]}\n\n',
      'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    ]
  })
  t.match(error, { code: 'upstream_truncated' })
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a half event at the end of the body is truncation, not garbage', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { events, error } = await ask(upstream, {
    raw: ['data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n', 'data: {"choices":[{"index":0,"delta":{"cont']
  })
  t.equal(summarize(events).text[0], 'x')
  t.match(error, { code: 'upstream_truncated' })
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('`[DONE] ` with a trailing space is not the sentinel', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { events, error } = await ask(upstream, {
    raw: ['data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n', 'data: [DONE] \n\n']
  })
  t.equal(summarize(events).text[0], 'x')
  t.match(error, { code: 'upstream_bad_response' }, 'reported, not taken as the end')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('`[DONE]` as content is content', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { events, error } = await ask(upstream, { tokens: ['[DONE]', '\n\ndata: [DONE]\n\n', '"[DONE]"'] })
  t.equal(error, undefined)
  t.equal(summarize(events).text[0], '[DONE]\n\ndata: [DONE]\n\n"[DONE]"')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('`data: [DONE]` as the last bytes, no line end at all', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { events, error } = await ask(upstream, { raw: ['data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n', 'data: [DONE]'] })
  t.equal(error, undefined, 'the sentinel without its blank line still ends the answer')
  t.same(events, [{ type: 'delta', choice: 0, content: 'x' }])
  await assertNoOpenSockets(t, upstream, mock)
})
