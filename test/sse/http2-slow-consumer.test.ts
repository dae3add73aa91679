import t from 'tap'
import http2 from 'node:http2'
import Fastify from 'fastify'
import { formatEvent } from '../../lib/sse/index.js'
import type { CloseReason } from '../../lib/sse/index.js'
import ssePlugin from '../../plugins/sse.js'
import { flood, steadyRoute, waitFor } from '../fixtures/sse-server.js'

const BUDGET = 256 * 1024
const FRAME = formatEvent({ data: 'x'.repeat(16 * 1024) })

t.test('HTTP/2: a stream that stops reading is dropped with slow_consumer; its sibling on the same connection flows', async (t) => {
  const app = Fastify({ http2: true })
  t.teardown(() => app.close())
  await app.register(ssePlugin)
  let reason: CloseReason | undefined
  const seen = { maxBuffered: 0 }
  app.get('/flood', async (_req, reply) => {
    const stream = reply.sse({ maxBufferedBytes: BUDGET, heartbeatMs: 0 })
    stream.onClose((r) => { reason = r })
    await flood(stream, FRAME, seen)
  })
  steadyRoute(app)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const client = http2.connect(url)
  t.teardown(() => { client.destroy() })

  const stuck = client.request({ ':path': '/flood' })
  stuck.on('error', () => {})
  stuck.pause() // never read: HTTP/2 flow control stops the server's writes, its buffer grows

  await waitFor(() => reason !== undefined, 20_000, 'the flooded stream to close')
  t.equal(reason, 'slow_consumer')
  t.ok(seen.maxBuffered <= BUDGET + Buffer.byteLength(FRAME) + 64, `buffered at most ${seen.maxBuffered} bytes`)

  const steady = client.request({ ':path': '/steady' })
  let ticks = 0
  steady.setEncoding('utf8')
  steady.on('data', (d: string) => { ticks += d.split('data: tick').length - 1 })
  await waitFor(() => ticks >= 5, 10_000, 'the sibling stream to flow')
  t.ok(ticks >= 5, 'another stream on the same HTTP/2 connection keeps flowing')
  steady.close()
})
