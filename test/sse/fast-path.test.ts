/**
 * The HTTP/1.1 fast path (lib/sse/direct-write.ts) writes each frame to the socket as one ready
 * chunk. It leans on Node fields that are not documented, and falls back to `res.write()` when
 * they look different: correct, but the relay's cost per token goes up and nothing else would
 * notice. These tests watch the server's socket writes, so they fail on any Node (CI runs 20 and
 * 24) where the fast path is no longer taken; the `fastPath: false` switch is checked the same way.
 */
import t from 'tap'
import type { Test } from 'tap'
import type { Socket } from 'node:net'
import { formatEvent } from '../../lib/sse/index.js'
import type { SseOptions, SseStream } from '../../lib/sse/index.js'
import { startApp } from '../fixtures/sse-server.js'

const EVENTS = [
  { id: 1, data: 'alpha' },
  { id: 2, event: 'token', data: { text: 'é und ü: bytes, not UTF-16 units' } },
  { id: 3, data: 'gamma\nwith two lines' }
]

/** The chunk `res.write()` would make of `frame`, as one buffer: what the fast path writes. */
function chunkOf (frame: string): Buffer {
  return Buffer.from(`${Buffer.byteLength(frame).toString(16)}\r\n${frame}\r\n`)
}

/** Every buffer the server wrote to its sockets, in order; and the body a client read. */
async function run (t: Test, options: SseOptions): Promise<{ writes: Buffer[], body: string }> {
  const writes: Buffer[] = []
  const { app, url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      const stream = reply.sse({ heartbeatMs: 0, ...options })
      for (const ev of EVENTS) await stream.send(ev)
      stream.close('done')
    })
  })
  app.server.on('connection', (socket: Socket) => {
    const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      writes.push(Buffer.from(chunk as Buffer | string))
      return write(chunk, ...rest)
    }) as Socket['write']
  })
  const res = await fetch(`${url}/s`)
  const body = await res.text()
  return { writes, body }
}

t.test('on HTTP/1.1 each frame leaves in one socket write, as one ready chunk', async (t) => {
  const { writes, body } = await run(t, {})
  for (const ev of EVENTS) {
    const chunk = chunkOf(formatEvent(ev))
    t.equal(writes.filter((w) => w.equals(chunk)).length, 1, `event ${ev.id}: one write of exactly its chunk`)
  }
  for (const ev of EVENTS) t.ok(body.includes(formatEvent(ev)), `event ${ev.id} reached the client`)
})

t.test('fastPath: false writes through the response: the same bytes reach the client, in several writes', async (t) => {
  const fast = await run(t, {})
  const slow = await run(t, { fastPath: false })
  for (const ev of EVENTS) {
    const chunk = chunkOf(formatEvent(ev))
    t.notOk(slow.writes.some((w) => w.equals(chunk)), `event ${ev.id}: not written as one ready chunk`)
    t.ok(slow.writes.some((w) => w.toString() === formatEvent(ev)), `event ${ev.id}: its frame was written by the response`)
  }
  t.equal(slow.body, fast.body, 'the client reads the same stream either way')
})

t.test('fastPath must be a boolean', async (t) => {
  const { url } = await startApp(t, (app) => {
    app.get('/bad', async (_req, reply) => {
      try {
        reply.sse({ fastPath: 'yes' as unknown as boolean })
      } catch (err) {
        return reply.code(500).send({ message: (err as Error).message })
      }
    })
  })
  const res = await fetch(`${url}/bad`)
  t.match(await res.json(), { message: /fastPath must be a boolean \(got "yes"\)/ })
})

/** What the server's sockets handed to the kernel: each flush (`_write` or `_writev`) as the frames it carried. */
async function flushes (t: Test, route: (stream: SseStream) => Promise<void>): Promise<{ flushes: string[][], body: string }> {
  const seen: string[][] = []
  const { app, url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => { await route(reply.sse({ heartbeatMs: 0 })) })
  })
  app.server.on('connection', (socket: Socket) => {
    const internals = socket as unknown as { _write: (...args: unknown[]) => void, _writev: (chunks: Array<{ chunk: Buffer }>, cb: unknown) => void }
    const one = internals._write.bind(socket)
    const many = internals._writev.bind(socket)
    internals._write = (chunk: unknown, ...rest: unknown[]) => { seen.push([String(chunk)]); one(chunk, ...rest) }
    internals._writev = (chunks, cb) => { seen.push(chunks.map((c) => String(c.chunk))); many(chunks, cb) }
  })
  const res = await fetch(`${url}/s`)
  return { flushes: seen, body: await res.text() }
}

t.test('frames written in one turn after the first (an answer\'s finish, usage, [DONE], close) leave in one write; frames in turns apart are not held', async (t) => {
  const tail = [{ id: 2, data: 'finish' }, { id: 3, data: 'usage' }]
  const { flushes: together, body } = await flushes(t, async (stream) => {
    await stream.send({ id: 1, data: 'first' })
    await new Promise((resolve) => setImmediate(resolve))
    stream.writeFrame(formatEvent({ id: 'last', data: 'last token' }))
    for (const ev of tail) stream.writeFrame(formatEvent(ev))
    // The end comes a few microtasks later, as after the upstream request settles.
    await Promise.resolve()
    await stream.done(4)
  })
  const last = together.at(-1) ?? []
  t.equal(together.at(-2)?.length, 1, 'the first frame of the turn went out at once, alone')
  t.match(together.at(-2)?.[0], /last token/)
  t.ok(last.length >= 4 && /finish/.test(last.join('')) && /usage/.test(last.join('')) && /\[DONE\]/.test(last.join('')) && /event: close/.test(last.join('')) && last.join('').endsWith('0\r\n\r\n'), 'the rest, with [DONE], close and the end of the body, in one write', { flushes: together })
  t.ok(body.includes('data: finish') && body.includes('data: [DONE]') && body.includes('event: close'), 'all of it reached the client, in order')
  t.ok(body.indexOf('last token') < body.indexOf('data: finish') && body.indexOf('data: usage') < body.indexOf('data: [DONE]'), 'in order')

  const { flushes: apart } = await flushes(t, async (stream) => {
    for (let i = 1; i <= 3; i++) {
      await stream.send({ id: i, data: `token ${i}` })
      await new Promise((resolve) => setImmediate(resolve))
    }
    stream.close('done')
  })
  const tokens = apart.filter((flush) => flush.some((chunk) => chunk.includes('token ')))
  t.same(tokens.map((flush) => flush.filter((chunk) => chunk.includes('token ')).length), [1, 1, 1], 'one token a turn: each leaves on its own, at once', { flushes: apart })
})
