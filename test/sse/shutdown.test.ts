import t from 'tap'
import net from 'node:net'
import { formatEvent } from '../../lib/sse/index.js'
import type { CloseReason } from '../../lib/sse/index.js'
import { collectSse } from '../fixtures/sse-client.js'
import { startApp, waitFor } from '../fixtures/sse-server.js'

t.test('fastify.close() with open streams: clients get close shutdown, close() resolves', async (t) => {
  const reasons: CloseReason[] = []
  let opened = 0
  const { app, url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse({ heartbeatMs: 0 })
      stream.onClose((r) => { reasons.push(r) })
      opened++
      await stream.send({ data: 'open' })
    })
  })
  const clients = [collectSse(`${url}/s`), collectSse(`${url}/s`)]
  await waitFor(() => opened === 2)
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 1500, `close() was prompt (${Date.now() - started} ms)`)
  for (const res of await Promise.all(clients)) {
    t.ok(res.ended)
    t.same(res.events.map((e) => [e.event, e.data]), [[undefined, 'open'], ['close', '{"reason":"shutdown"}']])
  }
  t.same(reasons, ['shutdown', 'shutdown'])
})

t.test('fastify.close() does not wait forever for a reader that stopped reading', async (t) => {
  let reason: CloseReason | undefined
  let filled = false
  const { app, url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      // A budget far above what fills the kernel buffers: the stream stays open, stuck.
      const stream = reply.sse({ heartbeatMs: 0, maxBufferedBytes: 256 * 1024 * 1024 })
      stream.onClose((r) => { reason = r })
      const frame = formatEvent({ data: 'x'.repeat(64 * 1024) })
      while (!stream.closed && stream.bufferedBytes < 1024 * 1024) {
        stream.writeFrame(frame)
        await new Promise((resolve) => setImmediate(resolve))
      }
      filled = true
    })
  })
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.pause()
  socket.write('GET /s HTTP/1.1\r\nHost: x\r\n\r\n')
  await waitFor(() => filled, 20_000, 'the stuck reader buffer to fill')
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 10_000, `close() resolved after the grace period (${Date.now() - started} ms)`)
  t.equal(reason, 'shutdown')
})
