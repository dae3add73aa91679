import t from 'tap'
import type { Test } from 'tap'
import net from 'node:net'
import { SseStreamClosedError } from '../../lib/sse/index.js'
import type { CloseReason, SseStream } from '../../lib/sse/index.js'
import { collectSse } from '../fixtures/sse-client.js'
import { startRawServer, waitFor } from '../fixtures/sse-server.js'

/** Records every onClose call and the signal's abort. */
function watch (stream: SseStream): { reasons: CloseReason[], aborts: unknown[] } {
  const seen = { reasons: [] as CloseReason[], aborts: [] as unknown[] }
  stream.onClose((r) => { seen.reasons.push(r) })
  stream.signal.addEventListener('abort', () => { seen.aborts.push(stream.signal.reason) })
  return seen
}

function checkClosed (t: Test, stream: SseStream, seen: ReturnType<typeof watch>, reason: CloseReason): void {
  t.equal(stream.closed, true)
  t.equal(stream.closeReason, reason)
  t.same(seen.reasons, [reason], `onClose called exactly once with ${reason}`)
  t.equal(seen.aborts.length, 1, 'signal aborted once')
  t.ok(stream.signal.aborted)
  t.ok(stream.signal.reason instanceof SseStreamClosedError)
  t.equal((stream.signal.reason as SseStreamClosedError).reason, reason)
  t.equal((stream.signal.reason as SseStreamClosedError).name, 'AbortError')
}

const ends: Array<{ reason: CloseReason, act: (s: SseStream) => unknown, lastEvent: { event?: string, data: string } | undefined }> = [
  { reason: 'done', act: (s) => s.done(), lastEvent: { event: 'close', data: '{"reason":"done"}' } },
  { reason: 'error', act: (s) => s.error({ code: 'upstream_error', message: 'bad gateway' }), lastEvent: { event: 'close', data: '{"reason":"error"}' } },
  { reason: 'cancelled', act: (s) => s.close('cancelled', { by: 'user' }), lastEvent: { event: 'close', data: '{"reason":"cancelled","by":"user"}' } },
  { reason: 'superseded', act: (s) => { s.end('superseded') }, lastEvent: { event: undefined, data: 'before' } }
]

for (const { reason, act, lastEvent } of ends) {
  t.test(`ends with ${reason}: one close, onClose once, signal aborted, later writes dropped`, async (t) => {
    const { url, next } = await startRawServer(t, { heartbeatMs: 0 })
    const pending = collectSse(url)
    const { stream } = await next()
    const seen = watch(stream)
    await stream.send({ data: 'before' })
    await act(stream)
    checkClosed(t, stream, seen, reason)

    // Everything after the end is a no-op that settles.
    await stream.close('done')
    await stream.done()
    await stream.error(new Error('late'))
    stream.end('client')
    await stream.send({ data: 'after' })
    stream.comment('after')
    t.equal(stream.writeFrame('data: after\n\n'), false)
    t.same(seen.reasons, [reason], 'still exactly once')

    let late: CloseReason | undefined
    let sync = true
    stream.onClose((r) => { t.notOk(sync, 'a late onClose is called asynchronously'); late = r })
    sync = false
    await new Promise((resolve) => process.nextTick(resolve))
    t.equal(late, reason, 'registered after the end: called on the next tick')

    const res = await pending
    t.ok(res.ended)
    t.equal(res.events.filter((e) => e.event === 'close').length, lastEvent?.event === 'close' ? 1 : 0)
    t.same(res.events.at(-1) && { event: res.events.at(-1)?.event, data: res.events.at(-1)?.data }, lastEvent)
    t.notMatch(res.raw, /after|late/)
    if (reason === 'done') t.same(res.events.map((e) => e.data), ['before', '[DONE]', '{"reason":"done"}'])
    if (reason === 'error') {
      t.same(res.events.map((e) => [e.event, e.data]), [
        [undefined, 'before'],
        ['error', '{"type":"error","code":"upstream_error","message":"bad gateway"}'],
        ['close', '{"reason":"error"}']
      ], 'no [DONE] after an error')
    }
  })
}

t.test('client disconnect: reason client, once', async (t) => {
  const { url, next } = await startRawServer(t, { heartbeatMs: 0 })
  const pending = collectSse(url, { until: (e) => e.data === 'hello' })
  const { stream } = await next()
  const seen = watch(stream)
  await stream.send({ data: 'hello' })
  const res = await pending
  t.ok(res.aborted)
  await waitFor(() => stream.closed, 5000, 'the stream to see the client leave')
  checkClosed(t, stream, seen, 'client')
  await stream.send({ data: 'after' })
  t.equal(stream.writeFrame('data: x\n\n'), false)
})

t.test('an invalid event rejects with TypeError and writes nothing', async (t) => {
  const { url, next } = await startRawServer(t, { heartbeatMs: 0, retry: undefined })
  const pending = collectSse(url)
  const { stream } = await next()
  await t.rejects(stream.send({ event: 'a\nb', data: 'x' }), { name: 'TypeError', message: /"event"/ })
  await t.rejects(stream.send({ id: 'a\rdata: injected', data: 'x' }), { name: 'TypeError', message: /"id"/ })
  await t.rejects(stream.send({ data: undefined }), TypeError)
  t.notOk(stream.closed, 'the stream stays usable')
  await stream.send({ data: 'ok' })
  await stream.close()
  const res = await pending
  t.equal(res.raw, 'data: ok\n\nevent: close\ndata: {"reason":"done"}\n\n')
})

t.test('a send() waiting for drain settles when the client leaves', async (t) => {
  // A budget far above what this test writes: only drain, not slow_consumer, is at play.
  const { url, next } = await startRawServer(t, { heartbeatMs: 0, maxBufferedBytes: 512 * 1024 * 1024 })
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.pause() // a reader that never reads
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  const { stream } = await next()
  const seen = watch(stream)
  const chunk = 'x'.repeat(64 * 1024)
  let waiting: Promise<void> | undefined
  for (let i = 0; i < 2000 && waiting === undefined; i++) {
    const p = stream.send({ data: chunk })
    const state = await Promise.race([p.then(() => 'resolved'), new Promise((resolve) => setTimeout(resolve, 20, 'pending'))])
    if (state === 'pending') waiting = p
  }
  t.ok(waiting, 'a send() is waiting for drain')
  t.ok(stream.bufferedBytes > 0, `bytes are buffered (${stream.bufferedBytes})`)
  socket.destroy()
  await t.resolves(waiting ?? Promise.resolve(), 'the waiting send() resolves')
  await waitFor(() => stream.closed)
  checkClosed(t, stream, seen, 'client')
})

t.test('a throwing onClose callback does not stop the others or the close', async (t) => {
  const { url, next } = await startRawServer(t, { heartbeatMs: 0 })
  const pending = collectSse(url)
  const { stream } = await next()
  const uncaught: unknown[] = []
  const listeners = process.listeners('uncaughtException')
  process.removeAllListeners('uncaughtException')
  const onUncaught = (err: unknown): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  t.teardown(() => {
    process.off('uncaughtException', onUncaught)
    for (const l of listeners) process.on('uncaughtException', l)
  })
  const calls: string[] = []
  stream.onClose(() => { calls.push('first'); throw new Error('callback bug') })
  stream.onClose(() => { calls.push('second') })
  await stream.close()
  t.same(calls, ['first', 'second'])
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(uncaught.length, 1, 'the callback error surfaces as an uncaught exception')
  t.match(uncaught[0], { message: 'callback bug' })
  t.ok((await pending).ended)
})
