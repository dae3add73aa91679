// Incremental delivery through a real nginx: with the mock sending a token every 100 ms, the
// client must see the first token long before the last, one arrival per token — over HTTP/1.1
// and HTTP/2 (TLS) through our config, and over HTTP/1.1 through an nginx left at its defaults,
// where only the relay's X-Accel-Buffering header keeps nginx from buffering. A control stream
// without that header proves the unconfigured nginx really buffers: the test can fail.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { Test } from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startNginx } from '../fixtures/nginx.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse, type CollectedEvent } from '../fixtures/sse-client.js'
import { arrivalGroups, collectSseH2, connectH2, deltaArrivals, pacedBody, textOf } from './sse-reader.js'

const TOKENS = Array.from({ length: 10 }, (_, i) => `tok${i} `)
const DELAY_MS = 100

const mock = await startMockUpstream()
t.teardown(() => mock.close())
// Several concurrent streams from one address in the HTTP/2 test: above the per-client default.
const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, MAX_STREAMS_PER_CLIENT: '32' } })
t.teardown(() => relay.close())
const relayAddr = `127.0.0.1:${relay.port}`

/** The assertions every path shares: exact text, complete ending, and arrivals spread out. */
function assertIncremental (t: Test, label: string, events: CollectedEvent[]): void {
  t.equal(textOf(events), TOKENS.join(''), 'exact text')
  t.same(events.slice(-2).map((e) => [e.event, e.data]), [[undefined, '[DONE]'], ['close', '{"reason":"done"}']], 'ends with [DONE] and close')
  const arrivals = deltaArrivals(events)
  const first = arrivals[0] ?? NaN
  const last = arrivals.at(-1) ?? NaN
  const groups = arrivalGroups(arrivals)
  t.comment(`${label}: first token at ${first.toFixed(0)} ms, last at ${last.toFixed(0)} ms, ${groups} arrival groups of ${arrivals.length} tokens`)
  // 10 tokens 100 ms apart: the last comes ~900 ms after the first. A buffering hop collapses that.
  t.ok(last - first >= 700, `first token ${(last - first).toFixed(0)} ms before the last (>= 700)`)
  // One group per token when it streams (10), one when buffered; >= 7 leaves room for a busy CI.
  t.ok(groups >= 7, `${groups} arrival groups >= 7 (gaps of >= 50 ms)`)
}

t.test('HTTP/1.1 through the relay config: token by token', async (t) => {
  const nginx = await startNginx({ relays: [relayAddr] })
  t.teardown(() => nginx.stop())
  const res = await collectSse(`${nginx.httpUrl}/v1/chat/stream`, { method: 'POST', body: pacedBody(TOKENS, DELAY_MS) })
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  t.equal(res.headers['content-encoding'], undefined, 'not compressed')
  t.equal(res.headers['x-accel-buffering'], undefined, 'nginx consumes X-Accel-Buffering')
  t.ok(res.headers['x-stream-id'], 'x-stream-id passes through')
  assertIncremental(t, 'HTTP/1.1 via relay.conf', res.events)
})

t.test('HTTP/2 over TLS through the relay config: token by token, many streams on one connection', async (t) => {
  const nginx = await startNginx({ relays: [relayAddr] })
  t.teardown(() => nginx.stop())
  const session = await connectH2(nginx.httpsUrl as string, nginx.ca)
  t.teardown(() => session.close())
  t.equal(session.alpnProtocol, 'h2')

  const res = await collectSseH2(session, '/v1/chat/stream', pacedBody(TOKENS, DELAY_MS))
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/event-stream/)
  assertIncremental(t, 'HTTP/2 via relay.conf', res.events)

  // The reason for HTTP/2: a browser allows six HTTP/1.1 connections per origin, and each open
  // stream holds one. Over one HTTP/2 connection, eight concurrent streams all flow.
  const results = await Promise.all(Array.from({ length: 8 }, () =>
    collectSseH2(session, '/v1/chat/stream', pacedBody(TOKENS, DELAY_MS))))
  for (const r of results) t.equal(textOf(r.events), TOKENS.join(''))
  const lastArrivals = results.map((r) => deltaArrivals(r.events).at(-1) ?? Infinity)
  t.ok(Math.max(...lastArrivals) < 2500, `8 concurrent streams done in ${Math.max(...lastArrivals).toFixed(0)} ms, not one after another`)
})

t.test('HTTP/1.1 through an nginx with default buffering: still token by token', async (t) => {
  const nginx = await startNginx({ relays: [relayAddr], template: 'unconfigured' })
  t.teardown(() => nginx.stop())
  const res = await collectSse(`${nginx.httpUrl}/v1/chat/stream`, { method: 'POST', body: pacedBody(TOKENS, DELAY_MS) })
  t.equal(res.status, 200)
  assertIncremental(t, 'HTTP/1.1 via unconfigured nginx', res.events)
})

t.test('control: without X-Accel-Buffering the unconfigured nginx buffers the same stream', async (t) => {
  // A bare SSE server that paces events exactly like the mock but sends no X-Accel-Buffering:
  // what the relay would be without that header. If this arrived spread out too, the test above
  // would prove nothing.
  const bare: Server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    let i = 0
    const timer = setInterval(() => {
      res.write(`data: {"type":"delta","content":"${TOKENS[i]}"}\n\n`)
      if (++i === TOKENS.length) { clearInterval(timer); res.end() }
    }, DELAY_MS)
    req.on('close', () => clearInterval(timer))
  })
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => bare.close(resolve)))
  const nginx = await startNginx({ relays: [`127.0.0.1:${(bare.address() as AddressInfo).port}`], template: 'unconfigured' })
  t.teardown(() => nginx.stop())
  const res = await collectSse(nginx.httpUrl)
  t.equal(textOf(res.events), TOKENS.join(''))
  const arrivals = deltaArrivals(res.events)
  const groups = arrivalGroups(arrivals)
  t.comment(`control (no X-Accel-Buffering) via unconfigured nginx: first at ${arrivals[0]?.toFixed(0)} ms, last at ${arrivals.at(-1)?.toFixed(0)} ms, ${groups} arrival groups`)
  t.ok(groups <= 2, `buffered: ${groups} arrival groups`)
})
