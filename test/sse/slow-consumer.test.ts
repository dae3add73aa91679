import t from 'tap'
import net from 'node:net'
import { formatEvent } from '../../lib/sse/index.js'
import type { CloseReason } from '../../lib/sse/index.js'
import { collectSse } from '../fixtures/sse-client.js'
import { flood, startApp, steadyRoute, waitFor } from '../fixtures/sse-server.js'

const BUDGET = 256 * 1024
const FRAME = formatEvent({ data: 'é'.repeat(8 * 1024) }) // 16 KiB of UTF-8, 8 Ki UTF-16 units

t.test('a reader that stops reading: buffer stays within budget, closed with slow_consumer, others flow', async (t) => {
  const seen = { maxBuffered: 0 }
  let floodReason: CloseReason | undefined
  let floodDestroyed = false
  const { url } = await startApp(t, (app) => {
    app.get('/flood', async (_req, reply) => {
      const stream = reply.sse({ maxBufferedBytes: BUDGET, heartbeatMs: 0 })
      stream.onClose((reason) => {
        floodReason = reason
        // Destroyed right away, so the kernel and Node buffers of this reader are freed.
        floodDestroyed = reply.raw.destroyed
      })
      await flood(stream, FRAME, seen)
    })
    steadyRoute(app)
  })

  let afterFlood = 0
  const steady = collectSse(`${url}/steady`, {
    until: () => {
      if (floodReason !== undefined) afterFlood++
      return afterFlood >= 10
    },
    timeoutMs: 30_000
  })

  // The stuck reader: sends its request, then never reads a byte.
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.pause()
  socket.write('GET /flood HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n')

  await waitFor(() => floodReason !== undefined, 20_000, 'the flooded stream to close')
  t.equal(floodReason, 'slow_consumer')
  t.ok(floodDestroyed, 'the response was destroyed, its buffer freed')
  const frameBytes = Buffer.byteLength(FRAME)
  // Accounting is in bytes (not UTF-16 units): the buffer exceeds the budget by at most the frame
  // that crossed it (and HTTP chunk framing, a few bytes).
  t.ok(seen.maxBuffered > BUDGET, 'the budget was reached')
  t.ok(seen.maxBuffered <= BUDGET + frameBytes + 64, `buffered at most ${seen.maxBuffered} bytes (budget ${BUDGET} + one ${frameBytes}-byte frame)`)

  const res = await steady
  t.ok(res.aborted, 'the other stream kept flowing after the slow one was dropped')
  t.ok(res.events.length >= 10)
  t.same(res.events.map((e) => Number(e.id)), res.events.map((_e, i) => i + 1), 'in order, none lost')
})

t.test('an event larger than the budget still reaches a reader that keeps up', async (t) => {
  let reason: CloseReason | undefined
  const big = 'y'.repeat(4 * BUDGET)
  const { url } = await startApp(t, (app) => {
    app.get('/big', async (_req, reply) => {
      const stream = reply.sse({ maxBufferedBytes: BUDGET, heartbeatMs: 0 })
      stream.onClose((r) => { reason = r })
      for (let i = 0; i < 3; i++) await stream.send({ id: i, data: big })
      await stream.close()
    })
  })
  const res = await collectSse(`${url}/big`)
  t.equal(reason, 'done')
  t.same(res.events.map((e) => e.data.length), [big.length, big.length, big.length, '{"reason":"done"}'.length])
})
