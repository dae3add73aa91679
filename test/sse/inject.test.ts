import t from 'tap'
import { createParser } from 'eventsource-parser'
import type { EventSourceMessage } from 'eventsource-parser'
import { startApp } from '../fixtures/sse-server.js'

t.test('fastify.inject: the stream ends, inject resolves with the whole payload', async (t) => {
  const { app } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      reply.header('x-stream-id', 's1')
      const stream = reply.sse()
      await stream.send({ id: 1, data: { type: 'delta', content: 'Hi' } })
      stream.comment('between')
      await stream.done(2)
    })
  }, { listen: false })
  const res = await app.inject({ url: '/s' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(res.headers['x-stream-id'], 's1')
  t.equal(res.payload, [
    'retry: 3000\n\n',
    'id: 1\ndata: {"type":"delta","content":"Hi"}\n\n',
    ': between\n\n',
    'id: 2\ndata: [DONE]\n\n',
    'event: close\ndata: {"reason":"done"}\n\n'
  ].join(''))
  const events: EventSourceMessage[] = []
  createParser({ onEvent: (e) => { events.push(e) } }).feed(res.payload)
  t.same(events.map((e) => e.event ?? 'message'), ['message', 'message', 'close'])
})

t.test('fastify.inject of an endless stream resolves once fastify.close() ends it', async (t) => {
  const { app } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse({ heartbeatMs: 0, retry: undefined })
      await stream.send({ data: 'open' })
    })
  }, { listen: false })
  const pending = app.inject({ url: '/s' })
  await new Promise((resolve) => setTimeout(resolve, 50))
  await app.close()
  const res = await pending
  t.equal(res.payload, 'data: open\n\nevent: close\ndata: {"reason":"shutdown"}\n\n')
})

t.test('HEAD on an SSE route: the headers, then the response ends at once', async (t) => {
  let reason: string | undefined
  const { app } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse()
      stream.onClose((r) => { reason = r })
      await stream.send({ data: 'dropped' })
    })
  }, { listen: false })
  const res = await app.inject({ method: 'HEAD', url: '/s' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(res.payload, '')
  t.equal(reason, 'done')
})
