// The plugin's stream settings (`maxBufferedBytes`, `MAX_BUFFERED_BYTES` in the service) hold for
// every `reply.sse()` of the instance, not only the relay's own answers: a channel, a demo or an
// application's route with a reader that stops reading is cut at the same budget.
import net from 'node:net'
import Fastify from 'fastify'
import t from 'tap'
import llmRelay from '../../index.js'
import { formatEvent } from '../../lib/sse/index.js'
import type { CloseReason } from '../../lib/sse/index.js'
import { startMockUpstream } from '../../mock.js'
import { flood, waitFor } from '../fixtures/sse-server.js'

const BUDGET = 64 * 1024
const FRAME = formatEvent({ data: 'z'.repeat(4096) })

t.test('maxBufferedBytes reaches an application route\'s reply.sse()', async (t) => {
  const mock = await startMockUpstream()
  t.teardown(() => mock.close())
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(llmRelay, { upstream: { url: mock.url }, routes: false, maxBufferedBytes: BUDGET })
  const seen = { maxBuffered: 0 }
  let reason: CloseReason | undefined
  app.get('/mine', async (_request, reply) => {
    const stream = reply.sse({ heartbeatMs: 0 })
    stream.onClose((r) => { reason = r })
    await flood(stream, FRAME, seen)
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as net.AddressInfo

  // A reader that sends its request and never reads a byte.
  const socket = net.connect(port, '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.pause()
  socket.write('GET /mine HTTP/1.1\r\nHost: x\r\n\r\n')

  await waitFor(() => reason !== undefined, 20_000, 'the flooded stream to close')
  t.equal(reason, 'slow_consumer')
  t.ok(seen.maxBuffered > BUDGET, 'the budget was reached')
  t.ok(seen.maxBuffered <= BUDGET + Buffer.byteLength(FRAME) + 64, `at most the plugin's budget plus one frame was buffered (${seen.maxBuffered} bytes; the SSE default is 1 MiB)`)
})
