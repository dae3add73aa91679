import t from 'tap'
import { collectSse } from '../fixtures/sse-client.js'
import { startApp } from '../fixtures/sse-server.js'

t.test('heartbeat: `: ping` comments while idle, none while events flow', async (t) => {
  const { url } = await startApp(t, (app) => {
    app.get('/idle', async (_req, reply) => {
      const stream = reply.sse({ heartbeatMs: 40 })
      setTimeout(() => { stream.close() }, 400)
    })
    app.get('/busy', async (_req, reply) => {
      const stream = reply.sse({ heartbeatMs: 150 })
      const timer = setInterval(() => { stream.send({ data: 'tick' }).catch(() => {}) }, 5)
      stream.onClose(() => { clearInterval(timer) })
      setTimeout(() => { stream.close() }, 600)
    })
  })
  const idle = await collectSse(`${url}/idle`)
  t.ok(idle.comments >= 3, `idle stream got pings (${idle.comments})`)
  t.match(idle.raw, /^retry: 3000\n\n(: ping\n\n)+event: close\n/, 'pings are comments between frames')
  t.same(idle.events.map((e) => e.event), ['close'], 'pings are not events')

  const busy = await collectSse(`${url}/busy`)
  t.ok(busy.events.length > 20, `events flowed (${busy.events.length})`)
  // Writes every 5 ms against a 150 ms heartbeat: a ping would need a 150 ms stall of the loop.
  t.ok(busy.comments <= 1, `no pings between frequent events (${busy.comments})`)
})

t.test('heartbeatMs: 0 sends no pings', async (t) => {
  const { url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse({ heartbeatMs: 0 })
      setTimeout(() => { stream.close() }, 200)
    })
  })
  const res = await collectSse(`${url}/s`)
  t.equal(res.comments, 0)
})

t.test('timeoutMs closes the stream with reason timeout', async (t) => {
  let reason: string | undefined
  const { url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse({ timeoutMs: 150, heartbeatMs: 0 })
      stream.onClose((r) => { reason = r })
      await stream.send({ data: 'started' })
    })
  })
  const res = await collectSse(`${url}/s`)
  t.ok(res.ended)
  t.same(res.events.map((e) => [e.event, e.data]), [[undefined, 'started'], ['close', '{"reason":"timeout"}']])
  t.ok((res.events.at(-1)?.at ?? 0) >= 100, 'not before its time')
  t.equal(reason, 'timeout')
})
