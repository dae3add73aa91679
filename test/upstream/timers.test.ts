// The five timers: connect, response headers, first token (pings do not count), idle between
// tokens (pings do not count), total. Each fails with its own code and 504, and frees its socket:
// the mock (or the silent server) sees the connection close.
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import t from 'tap'
import { UpstreamClient, UpstreamError } from '../../lib/upstream/index.js'
import { ask, assertNoOpenSockets, harness, summarize } from '../fixtures/mock.js'

t.test('connect timeout: a TCP server that never completes the TLS handshake', async t => {
  // Connect means TCP *and* TLS: a local server that accepts TCP and then stays silent is an
  // honest, local-only way to make the connect phase hang.
  const sockets: Socket[] = []
  const closed: Array<Promise<unknown>> = []
  const server = createServer(socket => {
    socket.resume() // read, or the FIN from the client would go unnoticed
    sockets.push(socket)
    closed.push(once(socket, 'close'))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { port } = server.address() as { port: number }
  const upstream = new UpstreamClient({ url: `https://127.0.0.1:${port}/v1`, connectTimeoutMs: 200, maxRetries: 0 })
  const started = Date.now()
  const { error } = await ask(upstream, {})
  const took = Date.now() - started
  t.type(error, UpstreamError)
  t.match(error, { code: 'upstream_connect_timeout', status: 504 })
  // undici runs connect timers on its coarse "fast timers" (~0.5 s ticks).
  t.ok(took >= 190 && took < 2500, `fired after ~200 ms, give or take undici's timer tick (${took})`)
  t.equal(sockets.length, 1, 'one connection attempt')
  await Promise.all(closed)
  t.pass('the half-open connection was closed by the client')
  await upstream.close()
})

t.test('connect timeout is retried like any connect error', async t => {
  const server = createServer(() => {})
  let connections = 0
  server.on('connection', () => { connections++ })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { port } = server.address() as { port: number }
  const upstream = new UpstreamClient({ url: `https://127.0.0.1:${port}/v1`, connectTimeoutMs: 100, maxRetries: 1 })
  const { error } = await ask(upstream, {})
  t.match(error, { code: 'upstream_connect_timeout' })
  t.equal(connections, 2, 'two attempts')
  await upstream.close()
})

t.test('first-token timeout with pings flowing', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ firstTokenTimeoutMs: 300, maxRetries: 2 })
  const started = Date.now()
  const { events, error } = await ask(upstream, { fault: 'stall', pingEveryMs: 50, tag: 'ft' })
  const took = Date.now() - started
  t.same(events, [])
  t.match(error, { code: 'upstream_first_token_timeout', status: 504, retryable: false })
  t.ok(took >= 290 && took < 1500, `pings did not reset it (${took} ms)`)
  const record = await mock.waitFor('ft')
  t.equal(record.aborted, true, 'the mock saw the client go away')
  t.equal(mock.requests.length, 1, 'timeouts are not retried')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('headers timeout: a server that accepts the request and never answers', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ headersTimeoutMs: 200, firstTokenTimeoutMs: 5000, maxRetries: 0 })
  const started = Date.now()
  const { events, error } = await ask(upstream, { headersDelayMs: 5000, tag: 'silent' })
  const took = Date.now() - started
  t.same(events, [])
  t.type(error, UpstreamError)
  t.match(error, { code: 'upstream_headers_timeout', status: 504, retryable: true, message: 'upstream timed out after 200 ms waiting for the response headers' })
  t.ok(took >= 190 && took < 1500, `its own shorter timer, not the first-token one (${took} ms)`)
  t.equal((await mock.waitFor('silent')).aborted, true, 'the request was closed')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('headers timeout is retried like a connect timeout', async t => {
  // A plain TCP server that reads requests and never answers one.
  let connections = 0
  const requests: string[] = []
  const server = createServer(socket => {
    connections++
    socket.on('data', (chunk: Buffer) => { if (chunk.toString('latin1').startsWith('POST ')) requests.push(chunk.toString('latin1').split('\r\n')[0] as string) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const { port } = server.address() as { port: number }
  const upstream = new UpstreamClient({ url: `http://127.0.0.1:${port}/v1`, headersTimeoutMs: 150, maxRetries: 1 })
  const { error } = await ask(upstream, {})
  t.match(error, { code: 'upstream_headers_timeout', status: 504 })
  t.same(requests, ['POST /v1/chat/completions HTTP/1.1', 'POST /v1/chat/completions HTTP/1.1'], 'two attempts')
  t.equal(connections, 2, 'the silent connection was closed, the retry made a new one')
  await upstream.close()
})

t.test('the headers timer stops at the headers: a slow first token is the first-token timer\'s', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ headersTimeoutMs: 150, maxRetries: 0 })
  const { events, error } = await ask(upstream, { firstTokenDelayMs: 500, tokens: ['late'] })
  t.equal(error, undefined, 'headers at once, the first token 500 ms later: no headers timeout')
  t.equal(summarize(events).text[0], 'late')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('first-token timeout also covers a server that never sends headers', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ firstTokenTimeoutMs: 200, maxRetries: 0 })
  const { error } = await ask(upstream, { headersDelayMs: 5000, tag: 'nohead' })
  t.match(error, { code: 'upstream_first_token_timeout', status: 504 })
  t.equal((await mock.waitFor('nohead')).aborted, true)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('idle timeout between tokens, pings flowing', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ idleTimeoutMs: 250, maxRetries: 2 })
  const started = Date.now()
  const { events, error } = await ask(upstream, { tokens: ['a', 'b', 'c'], fault: 'stall', faultAfterTokens: 2, pingEveryMs: 40, tag: 'idle' })
  const took = Date.now() - started
  t.equal(summarize(events).text[0], 'ab')
  t.match(error, { code: 'upstream_idle_timeout', status: 504 })
  t.ok(took >= 240 && took < 1500, `fired after ~250 ms of silence (${took})`)
  t.equal((await mock.waitFor('idle')).aborted, true)
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('idle timer does not fire while tokens keep coming', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ idleTimeoutMs: 150 })
  const { events, error } = await ask(upstream, { tokens: Array.from({ length: 10 }, (_, i) => `${i} `), tokenDelayMs: 60 })
  t.equal(error, undefined, '10 tokens 60 ms apart over 600 ms, idle limit 150 ms')
  t.equal(summarize(events).text[0], '0 1 2 3 4 5 6 7 8 9 ')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('every choice finished, then silence: the answer is whole, the socket is freed', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ idleTimeoutMs: 200, maxRetries: 0 })
  const { events, error } = await ask(upstream, {
    raw: ['data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}\n\n'],
    fault: 'stall',
    tag: 'late-done'
  })
  t.equal(error, undefined)
  t.same(summarize(events).finish, { 0: 'stop' })
  t.equal((await mock.waitFor('late-done')).aborted, true, 'the request was closed')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('total timeout', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ totalTimeoutMs: 300 })
  const started = Date.now()
  const { events, error } = await ask(upstream, { tokens: Array.from({ length: 50 }, () => 'x'), tokenDelayMs: 50, tag: 'total' })
  const took = Date.now() - started
  t.ok(events.length > 0 && events.length < 50, `some tokens first (${events.length})`)
  t.match(error, { code: 'upstream_total_timeout', status: 504 })
  t.ok(took >= 290 && took < 1500, `after ~300 ms (${took})`)
  t.equal((await mock.waitFor('total')).aborted, true)
  await assertNoOpenSockets(t, upstream, mock)
})
