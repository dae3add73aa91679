// Errors inside a 200 stream, in every flavour servers use. Before the first event they are
// retryable failures (or a client error, kept as such); after it they end the stream.
import t from 'tap'
import { UpstreamError } from '../../lib/upstream/index.js'
import type { MockFault } from '../../lib/mock/index.js'
import type { UpstreamFormat } from '../../lib/upstream/index.js'
import { ask, assertNoOpenSockets, harness, summarize } from '../fixtures/mock.js'

const flavours: Array<[MockFault, UpstreamFormat]> = [
  ['error-data', 'openai'],
  ['error-event', 'openai'],
  ['llamacpp-error', 'openai'],
  ['vllm-error', 'openai'],
  ['responses-error', 'openai-responses'],
  ['responses-failed', 'openai-responses'],
  ['anthropic-error', 'anthropic']
]

for (const [fault, format] of flavours) {
  t.test(`${fault}: before the first token`, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format, maxRetries: 0 })
    const { events, error } = await ask(upstream, { fault, errorMessage: `boom from ${fault}` })
    t.same(events, [])
    t.type(error, UpstreamError)
    t.match(error, { code: 'upstream_error', status: 502, retryable: true, message: new RegExp(`boom from ${fault}`) })
    await assertNoOpenSockets(t, upstream, mock)
  })

  t.test(`${fault}: after two tokens the stream is cut with the error`, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format, maxRetries: 2 })
    const { events, error } = await ask(upstream, { tokens: ['a', 'b', 'c'], fault, faultAfterTokens: 2 })
    t.equal(summarize(events).text[0], 'ab')
    t.match(error, { code: 'upstream_error', status: 502 })
    t.equal(mock.requests.length, 1, 'never retried after a token')
    await assertNoOpenSockets(t, upstream, mock)
  })
}

t.test('a client error in-band stays a client error, not retried', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 2 })
  const { error } = await ask(upstream, { fault: 'error-data', errorType: 'invalid_request_error', errorMessage: 'context_length_exceeded' })
  t.match(error, { code: 'upstream_bad_request', status: 400, retryable: false })
  t.equal(mock.requests.length, 1)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('vLLM flat error with a 4xx code', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { error } = await ask(upstream, { fault: 'vllm-error', errorType: 'BadRequestError', errorMessage: 'too long' })
  t.match(error, { code: 'upstream_bad_request', status: 400, message: /too long/ })
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('insufficient_quota in-band → non-retryable 429', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 2 })
  const { error } = await ask(upstream, { fault: 'error-data', errorType: 'insufficient_quota' })
  t.match(error, { code: 'upstream_rate_limited', status: 429, retryable: false })
  t.equal(mock.requests.length, 1)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('rate_limit_error in-band (anthropic) → retryable 429', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ format: 'anthropic', maxRetries: 0 })
  const { error } = await ask(upstream, { fault: 'anthropic-error', errorType: 'rate_limit_error' })
  t.match(error, { code: 'upstream_rate_limited', status: 429, retryable: true })
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('an in-band message never carries the API key', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { error } = await ask(upstream, { fault: 'error-event', errorMessage: 'bad key sk-test-secret-key here' })
  t.match(error, { message: /bad key \[redacted\] here/ })
  await assertNoOpenSockets(t, upstream, mock)
})
