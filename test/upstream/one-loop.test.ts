// `consume()` (push, what generations use) and `stream()` (pull) are one loop: the same events,
// retries and errors; a push consumer that throws stops the request; a pull consumer that stalls
// pauses the socket instead of buffering the whole answer.
import t from 'tap'
import type { UpstreamEvent } from '../../lib/upstream/index.js'
import { assertNoOpenSockets, collect, harness, QUICK } from '../fixtures/mock.js'

const body = (mock: Record<string, unknown>): Record<string, unknown> => ({ messages: [{ role: 'user', content: 'hi' }], mock: { ...QUICK, ...mock } })

t.test('consume() and stream() deliver the same events, a retry included', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 1 })
  const script = { status: 503, failTimes: 1, tokens: ['a', 'b\n', 'c'], toolCalls: [{ name: 'f', arguments: { x: 1 } }] }
  const pushed: UpstreamEvent[] = []
  await upstream.consume(body({ ...script, tag: 'push' }), { signal: AbortSignal.timeout(10_000) }, (event) => { pushed.push(event) })
  const pulled = await collect(upstream.stream(body({ ...script, tag: 'pull' }), { signal: AbortSignal.timeout(10_000) }))
  t.equal(pulled.error, undefined)
  t.same(pulled.events, pushed, 'identical events')
  t.equal(pushed.filter(e => e.type === 'delta').map(e => e.type === 'delta' ? e.content : '').join(''), 'ab\nc')
  t.same(mock.requests.map(r => [r.tag, r.status]), [['push', 503], ['push', 200], ['pull', 503], ['pull', 200]], 'each retried once')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('an onEvent that throws stops the request, and consume() rejects with what it threw', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 2 })
  const thrown = new Error('the consumer failed')
  let calls = 0
  await t.rejects(upstream.consume(body({ tokens: Array.from({ length: 50 }, () => 'x'), tokenDelayMs: 10, tag: 'throw' }), { signal: AbortSignal.timeout(10_000) }, () => {
    if (++calls === 3) throw thrown
  }), thrown)
  const record = await mock.waitFor('throw')
  t.equal(record.aborted, true, 'the mock saw the request go away')
  t.equal(calls, 3, 'no event after the throw')
  t.equal(mock.requests.length, 1, 'not retried')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('consume() rejects with the abort reason and closes the request', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const controller = new AbortController()
  const reason = new Error('stop')
  let calls = 0
  await t.rejects(upstream.consume(body({ tokens: Array.from({ length: 50 }, () => 'x'), tokenDelayMs: 10, tag: 'abort' }), { signal: controller.signal }, () => {
    if (++calls === 2) controller.abort(reason)
  }), reason)
  t.equal((await mock.waitFor('abort')).aborted, true)
  t.equal(calls, 2)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a stream() reader that stalls pauses the socket; the whole answer still arrives', async t => {
  const { mock, client } = await harness(t)
  const upstream = client()
  const total = 100_000
  let deltas = 0
  let sentWhileStalled = 0
  for await (const event of upstream.stream(body({ fast: { tokens: total }, tag: 'stall' }), { signal: AbortSignal.timeout(30_000) })) {
    if (event.type === 'delta' && ++deltas === 1) {
      await new Promise(resolve => setTimeout(resolve, 700))
      sentWhileStalled = mock.requests[0]?.tokensSent ?? 0
    }
  }
  // Unpaused, the client reads all of it into memory at once (the mock honours drain, so it
  // sends only what the client's socket takes: the kernel buffers hold a few MB, ~20k tokens).
  t.ok(sentWhileStalled < total * 0.9, `the mock was held back while the reader stalled (${sentWhileStalled} of ${total} sent)`)
  t.equal(deltas, total, 'every token arrived')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('a stream() reader that pauses often never hangs: bytes undici parses inside resume() are read', async t => {
  // Each short pause lets the queue pass its high-water mark, so the socket pauses and resumes
  // about 30 times; undici delivers the bytes it already holds inside resume(). Before this was
  // handled, those events sat in the queue with nobody to wake the reader: a hang every run.
  const { mock, client } = await harness(t)
  const upstream = client()
  const total = 30_000
  let deltas = 0
  for await (const event of upstream.stream(body({ fast: { tokens: total } }), { signal: AbortSignal.timeout(30_000) })) {
    if (event.type === 'delta' && ++deltas % 1000 === 0) await new Promise(resolve => setTimeout(resolve, 1))
  }
  t.equal(deltas, total, 'every token arrived')
  await assertNoOpenSockets(t, upstream, mock)
})
