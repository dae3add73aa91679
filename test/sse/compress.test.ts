import t from 'tap'
import compress from '@fastify/compress'
import { collectSse } from '../fixtures/sse-client.js'
import { startApp } from '../fixtures/sse-server.js'

t.test('never compressed, also with @fastify/compress global and accept-encoding: gzip', async (t) => {
  const { app, url } = await startApp(t, async (app) => {
    await app.register(compress, { global: true, threshold: 0 })
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse()
      for (let i = 0; i < 20; i++) await stream.send({ id: i, data: { text: 'compressible '.repeat(50) } })
      await stream.done()
    })
    app.get('/json', async () => ({ text: 'compressible '.repeat(50) }))
  })

  const json = await app.inject({ url: '/json', headers: { 'accept-encoding': 'gzip' } })
  t.equal(json.headers['content-encoding'], 'gzip', 'compression is active for ordinary routes')

  for (const encoding of ['gzip', 'gzip, deflate, br', 'br']) {
    const res = await collectSse(`${url}/s`, { headers: { 'accept-encoding': encoding } })
    t.notOk('content-encoding' in res.headers, `no content-encoding for ${encoding}`)
    t.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8')
    t.equal(res.events.length, 22, 'every event readable as plain text')
    t.equal(res.events.at(-1)?.event, 'close')
  }
})
