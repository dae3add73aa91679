// Frames to an HTTP/1.1 response go straight to its socket as ready chunks (lib/sse/stream.ts).
// Here the wire itself is checked: Node's strict client parser decodes stream after stream on
// one kept-alive connection, big frames that fill the socket included, and the connection is
// still good for an ordinary request afterwards.
import http from 'node:http'
import t from 'tap'
import { createParser } from 'eventsource-parser'
import type { EventSourceMessage } from 'eventsource-parser'
import { formatEvent } from '../../lib/sse/index.js'
import { startApp } from '../fixtures/sse-server.js'

const big = 'é'.repeat(300_000) // 600 kB of UTF-8: more than the socket takes at once
const datas = ['first', big, 'línea 1\nlínea 2', '', JSON.stringify({ n: 1, s: '🙂' })]

function get (agent: http.Agent, url: string): Promise<{ status: number, body: string, reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), reused: req.reusedSocket }))
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

function parse (body: string): EventSourceMessage[] {
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (e) => events.push(e) })
  parser.feed(body)
  return events
}

t.test('stream after stream on one keep-alive connection, then a plain request', async (t) => {
  const shared = Buffer.from(formatEvent({ event: 'shared', data: 'one buffer for every reader' }))
  const { url } = await startApp(t, (app) => {
    app.get('/events', async (_req, reply) => {
      const stream = reply.sse({ heartbeatMs: 0 })
      for (const data of datas) await stream.send({ data })
      stream.writeFrame(shared)
      await stream.done()
    })
    app.get('/plain', async () => ({ ok: true }))
  })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())

  const bodies: string[] = []
  for (let i = 0; i < 3; i++) {
    const res = await get(agent, `${url}/events`)
    t.equal(res.status, 200)
    if (i > 0) t.ok(res.reused, `stream ${i + 1} came over the same connection`)
    const events = parse(res.body)
    t.same(events.slice(0, datas.length).map((e) => e.data), datas, 'every data exact, the big one too')
    t.same(events.slice(datas.length).map((e) => [e.event, e.data]), [
      ['shared', 'one buffer for every reader'],
      [undefined, '[DONE]'],
      ['close', '{"reason":"done"}']
    ])
    bodies.push(res.body)
  }
  t.equal(bodies[1], bodies[0], 'the same bytes each time')
  const plain = await get(agent, `${url}/plain`)
  t.ok(plain.reused, 'the connection is still in a clean state')
  t.same(JSON.parse(plain.body), { ok: true })
})

t.test('edge writes keep the body whole: an empty frame, a refilled Buffer, frames under the app\'s cork', async (t) => {
  const { url } = await startApp(t, (app) => {
    app.get('/edges', async (_req, reply) => {
      const stream = reply.sse({ heartbeatMs: 0 })
      stream.writeFrame('data: a\n\n')
      stream.writeFrame('') // an empty HTTP chunk would end the body here
      stream.writeFrame(new Uint8Array(0))
      const buffer = Buffer.from('data: AAAA\n\n')
      stream.writeFrame(buffer)
      buffer.write('data: BBBB\n\n') // the caller reuses its buffer: the next write has the new bytes
      stream.writeFrame(buffer)
      // An application that corks the raw response: its own write and ours stay in order.
      reply.raw.cork()
      reply.raw.write('data: corked\n\n')
      stream.writeFrame('data: after-cork\n\n')
      reply.raw.uncork()
      await stream.close('done')
    })
  })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  for (let i = 0; i < 2; i++) {
    const res = await get(agent, `${url}/edges`)
    t.same(parse(res.body).map((e) => e.data), ['a', 'AAAA', 'BBBB', 'corked', 'after-cork', '{"reason":"done"}'])
  }
})
