// Commit late, but not forever (COMMIT_AFTER_MS): a failure that comes fast is still a real
// status, but a model that stays silent (thinking) gets a 200 stream after COMMIT_AFTER_MS, with
// heartbeats while it is silent, so no idle proxy cuts it; a failure after that is an error
// event then close. POST /v1/chat answers 201 at once, as before.
import t from 'tap'
import { startMockUpstream } from '../../mock.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, payloads, textOf, untilClose } from '../fixtures/stack.js'

const mock = await startMockUpstream()
t.teardown(() => mock.close())
const messages = [{ role: 'user', content: 'Think first' }]

t.test('a silent upstream: the stream commits after COMMIT_AFTER_MS, pings, then the answer', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, COMMIT_AFTER_MS: '300', HEARTBEAT_MS: '100' } })
  t.teardown(() => relay.close())
  const res = await collectSse(`${relay.url}/v1/chat/stream`, {
    method: 'POST',
    body: { messages, mock: { tokens: ['after ', 'thinking'], firstTokenDelayMs: 1500, tokenDelayMs: 5, jitterMs: 0 } },
    until: untilClose
  })
  t.equal(res.status, 200)
  t.ok(res.headersAt >= 250 && res.headersAt < 1400, `headers after the commit time, before the first token (${res.headersAt.toFixed(0)} ms)`)
  t.match(res.headers['x-stream-id'], /^[A-Za-z0-9_-]{22}$/)
  t.same(res.retries, [3000], 'the retry line comes with the commit')
  t.ok(res.comments >= 3, `heartbeats while the model was silent (${res.comments})`)
  t.equal(textOf(res.events), 'after thinking')
  t.equal(closeReason(res.events), 'done')
})

t.test('a failure after the commit is an error event then close, never [DONE]', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, COMMIT_AFTER_MS: '200', UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: '800', UPSTREAM_MAX_RETRIES: '0' } })
  t.teardown(() => relay.close())
  const res = await collectSse(`${relay.url}/v1/chat/stream`, { method: 'POST', body: { messages, mock: { fault: 'stall' } }, until: untilClose })
  t.equal(res.status, 200, 'committed before the upstream gave up')
  t.same(payloads(res.events).filter((p) => p.type === 'error').map((p) => p.code), ['upstream_first_token_timeout'])
  t.equal(closeReason(res.events), 'error')
  t.notOk(res.events.some((e) => e.data === '[DONE]'))
})

t.test('a fast failure keeps its status; COMMIT_AFTER_MS=0 waits for the first token however long', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, COMMIT_AFTER_MS: '200', UPSTREAM_MAX_RETRIES: '0' } })
  t.teardown(() => relay.close())
  const limited = await fetch(`${relay.url}/v1/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, mock: { status: 429, retryAfter: 7 } })
  })
  t.equal(limited.status, 429, 'an upstream 429 before the commit time is a 429')
  t.equal(limited.headers.get('retry-after'), '7')
  t.match(await limited.json(), { error: { code: 'upstream_rate_limited' } })

  const never = await startRelay({ env: { UPSTREAM_URL: mock.url, COMMIT_AFTER_MS: '0', UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: '600', UPSTREAM_MAX_RETRIES: '0' } })
  t.teardown(() => never.close())
  const timedOut = await fetch(`${never.url}/v1/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, mock: { fault: 'stall' } })
  })
  t.equal(timedOut.status, 504, 'no commit: the first-token timeout is a 504')
  t.match(await timedOut.json(), { error: { code: 'upstream_first_token_timeout' } })

  // The two-step flow is unchanged: 201 at once.
  const started = Date.now()
  const created = await fetch(`${relay.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, mock: { tokens: ['x'], firstTokenDelayMs: 1000 } })
  })
  t.equal(created.status, 201)
  t.ok(Date.now() - started < 900, 'POST /v1/chat does not wait for the first token')
})
