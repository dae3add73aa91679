import t from 'tap'
import net from 'node:net'
import { collectSse } from '../fixtures/sse-client.js'
import { startApp } from '../fixtures/sse-server.js'

t.test('HTTP/1.1: the contract headers, sent at once, before any event', async (t) => {
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  const { url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse({ retry: undefined })
      await held
      await stream.close()
    })
  })
  let headersBeforeFirstEvent = false
  const pending = collectSse(`${url}/s`)
  // The handler is still waiting: the headers must already be there (flushHeaders, no retry line).
  const { request } = await import('node:http')
  await new Promise<void>((resolve, reject) => {
    const req = request(`${url}/s`, { agent: false }, (res) => {
      headersBeforeFirstEvent = true
      res.destroy()
      resolve()
    })
    req.on('error', reject)
    req.end()
  })
  t.ok(headersBeforeFirstEvent, 'headers arrive while no event was written')
  release()
  const res = await pending
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-cache, no-transform')
  t.equal(res.headers['x-accel-buffering'], 'no')
  t.equal(res.headers.connection, 'keep-alive')
  t.equal(res.headers['transfer-encoding'], 'chunked')
  t.notOk('content-length' in res.headers)
  t.notOk('content-encoding' in res.headers)
  t.same(res.retries, [], 'retry: undefined writes no retry line')
  t.same(res.events.map((e) => e.event), ['close'])
})

t.test('status and headers set on the reply are kept; SSE headers win; framing headers dropped', async (t) => {
  const { url } = await startApp(t, (app) => {
    app.addHook('onRequest', async (_req, reply) => {
      reply.header('x-request-tag', 'hooked')
    })
    app.get('/s', async (_req, reply) => {
      reply.code(201)
        .header('x-stream-id', 'abc')
        .header('set-cookie', ['a=1', 'b=2'])
        .header('content-type', 'application/json')
        .header('cache-control', 'max-age=60')
        .header('content-length', '12')
        .header('content-encoding', 'gzip')
      reply.raw.setHeader('x-raw', 'kept')
      const stream = reply.sse()
      await stream.send({ data: 'hi' })
      await stream.close()
    })
  })
  const res = await collectSse(`${url}/s`)
  t.equal(res.status, 201)
  t.equal(res.headers['x-stream-id'], 'abc')
  t.equal(res.headers['x-request-tag'], 'hooked')
  t.equal(res.headers['x-raw'], 'kept')
  t.same(res.headers['set-cookie'], ['a=1', 'b=2'])
  t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(res.headers['cache-control'], 'no-cache, no-transform')
  t.notOk('content-length' in res.headers)
  t.notOk('content-encoding' in res.headers)
  t.same(res.retries, [3000], 'the default retry line')
  t.same(res.events.map((e) => e.data), ['hi', '{"reason":"done"}'])
})

t.test('HTTP/1.0: no keep-alive claim on a body delimited by close', async (t) => {
  const { url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse()
      await stream.send({ data: 'one' })
      await stream.close()
    })
  })
  const { port } = new URL(url)
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1')
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => { text += d })
    socket.on('end', () => resolve(text))
    socket.on('error', reject)
    socket.write('GET /s HTTP/1.0\r\nHost: x\r\n\r\n')
  })
  const [head = '', body = ''] = raw.split('\r\n\r\n', 2).length === 2 ? [raw.slice(0, raw.indexOf('\r\n\r\n')), raw.slice(raw.indexOf('\r\n\r\n') + 4)] : []
  t.match(head, /^HTTP\/1\.1 200/)
  t.notMatch(head, /connection: keep-alive/i)
  t.notMatch(head, /transfer-encoding/i)
  t.match(head, /content-type: text\/event-stream; charset=utf-8/i)
  t.equal(body, 'retry: 3000\n\ndata: one\n\nevent: close\ndata: {"reason":"done"}\n\n')
})

t.test('flushHeaders: false holds the headers until the first write, which carries the retry line', async (t) => {
  const { url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse({ flushHeaders: false, heartbeatMs: 20 })
      // Longer than several heartbeats: a held stream sends no ping (that would commit it).
      await new Promise((resolve) => setTimeout(resolve, 150))
      t.notOk(reply.raw.headersSent, 'nothing sent yet')
      await stream.send({ data: 'first' })
      await stream.close()
    })
  })
  const res = await collectSse(`${url}/s`)
  t.ok(res.headersAt >= 100, `headers waited for the first write (${Math.round(res.headersAt)} ms)`)
  t.equal(res.raw.slice(0, 'retry: 3000\n\ndata: first\n\n'.length), 'retry: 3000\n\ndata: first\n\n')
  t.equal(res.comments, 0)
})
