import t from 'tap'
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { EventSource } from 'eventsource'
import { createParser } from 'eventsource-parser'
import type { EventSourceMessage } from 'eventsource-parser'
import { collectSse } from '../fixtures/sse-client.js'
import { startApp } from '../fixtures/sse-server.js'

// What an LLM answer looks like on the wire (README "The wire format"), plus awkward text in a raw string event.
const TEXT = 'line 1\nline 2\r\n[DONE]\u2028😀'

async function app (t: Test): Promise<string> {
  const { url } = await startApp(t, (app) => {
    app.get('/answer', async (_req, reply) => {
      const stream = reply.sse()
      await stream.send({ id: 1, data: { type: 'delta', content: TEXT } })
      await stream.send({ id: 2, event: 'note', data: 'multi\nline' })
      await stream.done(3)
    })
  })
  return url
}

function expectAnswer (t: Test, events: Array<Pick<EventSourceMessage, 'id' | 'event' | 'data'>>): void {
  t.same(events.map((e) => ({ id: e.id, event: e.event, data: e.data })), [
    { id: '1', event: undefined, data: JSON.stringify({ type: 'delta', content: TEXT }) },
    { id: '2', event: 'note', data: 'multi\nline' },
    { id: '3', event: undefined, data: '[DONE]' },
    { id: undefined, event: 'close', data: '{"reason":"done"}' }
  ])
  t.equal(JSON.parse(events[0]?.data ?? '{}').content, TEXT, 'the delta text round-trips byte-exactly')
}

t.test('eventsource-parser over a real socket (collectSse)', async (t) => {
  const url = await app(t)
  const res = await collectSse(`${url}/answer`)
  t.ok(res.ended, 'the server ended the response')
  t.same(res.retries, [3000])
  expectAnswer(t, res.events)
  t.ok(res.events.every((e, i) => i === 0 || e.at >= (res.events[i - 1]?.at ?? 0)), 'timestamps are ordered')
})

t.test('the eventsource package (spec EventSource): close is an event, [DONE] is a literal message', async (t) => {
  const url = await app(t)
  const es = new EventSource(`${url}/answer`, { fetch: (input, init) => fetch(input, init) })
  t.teardown(() => { es.close() })
  const received: Array<{ type: string, data: string, lastEventId: string }> = []
  await new Promise<void>((resolve, reject) => {
    es.onerror = (err) => { reject(new Error(`EventSource error before close: ${err.message ?? ''}`)) }
    es.onmessage = (e) => { received.push({ type: e.type, data: e.data, lastEventId: e.lastEventId }) }
    es.addEventListener('note', (e) => { received.push({ type: e.type, data: e.data, lastEventId: e.lastEventId }) })
    es.addEventListener('close', (e) => {
      received.push({ type: e.type, data: e.data, lastEventId: e.lastEventId })
      // A client that got `close` stops here instead of reconnecting.
      es.close()
      resolve()
    })
  })
  t.same(received, [
    { type: 'message', data: JSON.stringify({ type: 'delta', content: TEXT }), lastEventId: '1' },
    { type: 'note', data: 'multi\nline', lastEventId: '2' },
    { type: 'message', data: '[DONE]', lastEventId: '3' },
    // close carries no id. (The spec would report the stream's last id, '3', here; this package
    // reports the event's own, '' — its reconnect still sends Last-Event-ID: 3.)
    { type: 'close', data: '{"reason":"done"}', lastEventId: received[3]?.lastEventId ?? '' }
  ])
  t.ok(['', '3'].includes(received[3]?.lastEventId ?? 'missing'))
})

t.test('curl -N: the bytes as sent, close and [DONE] included', async (t) => {
  const url = await app(t)
  const out = await new Promise<string>((resolve, reject) => {
    const curl = spawn('/usr/bin/curl', ['-N', '-s', '--max-time', '20', '-H', 'accept: text/event-stream', `${url}/answer`])
    let stdout = ''
    curl.stdout.setEncoding('utf8')
    curl.stdout.on('data', (d: string) => { stdout += d })
    curl.on('error', reject)
    curl.on('close', (code) => { code === 0 ? resolve(stdout) : reject(new Error(`curl exited with ${code}`)) })
  })
  t.ok(out.startsWith('retry: 3000\n\nid: 1\ndata: {"type":"delta"'), 'retry first, then the first event')
  t.ok(out.endsWith('id: 3\ndata: [DONE]\n\nevent: close\ndata: {"reason":"done"}\n\n'), '[DONE] then close, each ending in a blank line')
  const events: EventSourceMessage[] = []
  const parser = createParser({ onEvent: (e) => { events.push(e) } })
  parser.feed(out)
  expectAnswer(t, events)
})
