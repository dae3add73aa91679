import t from 'tap'
import http2 from 'node:http2'
import Fastify from 'fastify'
import { createParser } from 'eventsource-parser'
import type { EventSourceMessage } from 'eventsource-parser'
import ssePlugin from '../../plugins/sse.js'

t.test('HTTP/2: contract headers without connection-specific ones, events, no warnings', async (t) => {
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })

  const app = Fastify({ http2: true })
  t.teardown(() => app.close())
  await app.register(ssePlugin)
  app.get('/s', async (_req, reply) => {
    // Headers a careless app (or an HTTP/1 habit) might set: all illegal on HTTP/2.
    reply.header('connection', 'keep-alive').header('keep-alive', 'timeout=5').header('x-kept', 'yes')
    const stream = reply.sse({ heartbeatMs: 0 })
    await stream.send({ id: 1, data: { type: 'delta', content: 'héllo\r\n' } })
    await stream.send({ data: 'a\nb' })
    await stream.done()
  })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })

  const client = http2.connect(url)
  t.teardown(() => { client.close() })
  const req = client.request({ ':path': '/s', accept: 'text/event-stream' })
  const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => { req.on('response', resolve) })
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (e) => { events.push(e) } })
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => { parser.feed(chunk) })
  await new Promise((resolve) => { req.on('end', resolve) })

  t.equal(headers[':status'], 200)
  t.equal(headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(headers['cache-control'], 'no-cache, no-transform')
  t.equal(headers['x-accel-buffering'], 'no')
  t.equal(headers['x-kept'], 'yes')
  for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'content-encoding']) {
    t.notOk(name in headers, `no ${name}`)
  }
  t.same(events.map((e) => [e.id, e.event, e.data]), [
    ['1', undefined, '{"type":"delta","content":"héllo\\r\\n"}'],
    [undefined, undefined, 'a\nb'],
    [undefined, undefined, '[DONE]'],
    [undefined, 'close', '{"reason":"done"}']
  ])
  // Warnings are emitted on the next tick.
  await new Promise((resolve) => setImmediate(resolve))
  t.same(warnings.map((w) => `${w.name}: ${w.message}`), [], 'no process warnings')
})

t.test('HTTP/2: a client that cancels its stream closes the SSE stream with reason client', async (t) => {
  const app = Fastify({ http2: true })
  t.teardown(() => app.close())
  await app.register(ssePlugin)
  let reason: string | undefined
  let closed!: () => void
  const closedP = new Promise<void>((resolve) => { closed = resolve })
  app.get('/s', async (_req, reply) => {
    const stream = reply.sse({ heartbeatMs: 0 })
    stream.onClose((r) => { reason = r; closed() })
    await stream.send({ data: 'first' })
  })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const client = http2.connect(url)
  t.teardown(() => { client.close() })
  const req = client.request({ ':path': '/s' })
  await new Promise((resolve) => { req.once('data', resolve) })
  req.close(http2.constants.NGHTTP2_CANCEL)
  await closedP
  t.equal(reason, 'client')
})
