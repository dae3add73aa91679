// Retries happen before the first event only: connect errors, 429 (retry-after honoured), 5xx,
// in-band errors; with exponential backoff and full jitter; at most maxRetries.
import t from 'tap'
import { ask, assertNoOpenSockets, harness, summarize } from '../fixtures/mock.js'

t.test('429 with retry-after, then success', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const started = Date.now()
  const { events, error } = await ask(upstream, { status: 429, retryAfter: 1, failTimes: 1, tag: 'r429', tokens: ['ok'] })
  t.equal(error, undefined)
  t.equal(summarize(events).text[0], 'ok')
  t.ok(Date.now() - started >= 990, 'waited the retry-after second')
  t.equal(mock.requests.length, 2)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a retry-after above the cap is passed on, not waited out', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const { error } = await ask(upstream, { status: 429, retryAfter: 60, failTimes: 1, tag: 'long' })
  t.match(error, { code: 'upstream_rate_limited', status: 429, retryAfter: 60 })
  t.equal(mock.requests.length, 1)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('5xx twice, then success (maxRetries 2)', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const { events, error } = await ask(upstream, { status: 503, failTimes: 2, tag: 'r5xx', tokens: ['fine'] })
  t.equal(error, undefined)
  t.equal(summarize(events).text[0], 'fine')
  t.equal(mock.requests.length, 3)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('in-band error before the first token, then success', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const { events, error } = await ask(upstream, { fault: 'error-data', failTimes: 1, tag: 'inband', tokens: ['yes'] })
  t.equal(error, undefined)
  t.equal(summarize(events).text[0], 'yes')
  t.equal(mock.requests.length, 2)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a reset before the first token, then success', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const { events, error } = await ask(upstream, { fault: 'reset', failTimes: 1, tag: 'reset', tokens: ['back'] })
  t.equal(error, undefined)
  t.equal(summarize(events).text[0], 'back')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('no retry once a token was delivered', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const { events, error } = await ask(upstream, { fault: 'error-data', faultAfterTokens: 1, failTimes: 1, tag: 'late', tokens: ['a', 'b'] })
  t.equal(summarize(events).text[0], 'a')
  t.match(error, { code: 'upstream_error' })
  t.equal(mock.requests.length, 1)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('maxRetries is respected', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 1 })
  const { error } = await ask(upstream, { status: 500, failTimes: 10, tag: 'many' })
  t.match(error, { code: 'upstream_unavailable', status: 502 })
  t.equal(mock.requests.length, 2, 'one try and one retry')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a 4xx is not retried', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 3 })
  const { error } = await ask(upstream, { status: 400, failTimes: 10, tag: 'bad' })
  t.match(error, { code: 'upstream_bad_request', status: 400 })
  t.equal(mock.requests.length, 1)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('each attempt sends the same body', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  await ask(upstream, { status: 502, failTimes: 2, tag: 'same' }, { temperature: 0.3 })
  const bodies = mock.requests.map(r => JSON.stringify(r.body))
  t.equal(new Set(bodies).size, 1)
  t.match(mock.requests[0]?.body, { stream: true, stream_options: { include_usage: true }, model: 'gpt-4o-mini', temperature: 0.3 })
  t.equal(mock.requests[0]?.headers.authorization, 'Bearer sk-test-secret-key')
  await assertNoOpenSockets(t, upstream, mock)
})
