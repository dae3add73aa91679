// An AbortSignal cancels the request at any point; the iterator throws the signal's reason (not
// an UpstreamError) and the mock records that its client went away. Leaving the for-await early
// does the same.
import t from 'tap'
import { UpstreamError } from '../../lib/upstream/index.js'
import { assertNoOpenSockets, harness } from '../fixtures/mock.js'

const body = (mock: Record<string, unknown>): Record<string, unknown> => ({ messages: [{ role: 'user', content: 'hi' }], mock })

t.test('abort before the response headers', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const controller = new AbortController()
  const reason = new Error('user left')
  const iterator = upstream.stream(body({ headersDelayMs: 5000, tag: 'early' }), { signal: controller.signal })[Symbol.asyncIterator]()
  const next = iterator.next()
  await mock.waitFor('early', () => true)
  controller.abort(reason)
  await t.rejects(next, reason, 'throws the signal reason itself')
  const record = await mock.waitFor('early')
  t.equal(record.aborted, true, 'the mock saw the connection close')
  t.equal(record.tokensSent, 0)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('abort mid-body', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const controller = new AbortController()
  const seen: string[] = []
  let thrown: unknown
  try {
    for await (const event of upstream.stream(body({ tokens: Array.from({ length: 100 }, () => 'x'), tokenDelayMs: 20, tag: 'mid' }), { signal: controller.signal })) {
      if (event.type === 'delta') seen.push(event.content)
      if (seen.length === 3) controller.abort()
    }
  } catch (err) {
    thrown = err
  }
  t.notOk(thrown instanceof UpstreamError, 'an abort is not an upstream failure')
  t.equal((thrown as Error).name, 'AbortError', 'default reason: an AbortError')
  t.equal(seen.length, 3, 'nothing is delivered after the abort')
  const record = await mock.waitFor('mid')
  t.equal(record.aborted, true)
  t.ok(record.tokensSent < 100, `the mock stopped early (${record.tokensSent} tokens sent)`)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('an already aborted signal sends nothing', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const reason = new Error('gone already')
  const iterator = upstream.stream(body({}), { signal: AbortSignal.abort(reason) })[Symbol.asyncIterator]()
  await t.rejects(iterator.next(), reason)
  t.equal(mock.requests.length, 0)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('leaving the for-await early aborts the request and frees the socket', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  let count = 0
  for await (const event of upstream.stream(body({ tokens: Array.from({ length: 100 }, () => 'x'), tokenDelayMs: 20, tag: 'break' }), { signal: new AbortController().signal })) {
    if (event.type === 'delta' && ++count === 2) break
  }
  const record = await mock.waitFor('break')
  t.equal(record.aborted, true)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('abort during the retry backoff', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 2 })
  const controller = new AbortController()
  const reason = new Error('stop waiting')
  const iterator = upstream.stream(body({ status: 429, retryAfter: 5, failTimes: 5, tag: 'backoff' }), { signal: controller.signal })[Symbol.asyncIterator]()
  const next = iterator.next()
  await mock.waitFor('backoff')
  const started = Date.now()
  setTimeout(() => controller.abort(reason), 50)
  await t.rejects(next, reason)
  t.ok(Date.now() - started < 1000, 'did not sit out the 5 s retry-after')
  t.equal(mock.requests.length, 1)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a finished stream leaves its socket in the pool for the next request', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  for (let i = 0; i < 3; i++) {
    for await (const event of upstream.stream(body({ tokens: ['a'] }), { signal: new AbortController().signal })) t.ok(event)
    // undici marks the socket free a tick after the response ends; back-to-back requests in the
    // same tick would open a second connection, which is not a leak.
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  t.equal(await mock.connections(), 1, 'one keep-alive connection served all three')
  await assertNoOpenSockets(t, upstream, mock)
})
