// A key sent by mistake in a query string (`?api_key=…`) never reaches a log line: the real
// server entry runs at LOG_LEVEL=trace (every line Fastify and the relay write), and its whole
// output is searched after requests of every kind carried the key in their URL.
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import t from 'tap'
import { loggableUrl } from '../../plugins/request-log.js'
import { startRelayProcess } from '../fixtures/relay-process.js'
import { waitUntil } from '../fixtures/wait.js'

t.test('loggableUrl keeps the path and a numeric lastEventId, nothing else of the query', async (t) => {
  t.equal(loggableUrl('/v1/chat/stream/abc'), '/v1/chat/stream/abc')
  t.equal(loggableUrl('/healthz?api_key=k'), '/healthz')
  t.equal(loggableUrl('/x?'), '/x')
  t.equal(loggableUrl('/v1/chat/stream/abc?lastEventId=12&api_key=k'), '/v1/chat/stream/abc?lastEventId=12')
  t.equal(loggableUrl('/v1/chat/stream/abc?api_key=k&lastEventId=7'), '/v1/chat/stream/abc?lastEventId=7')
  t.equal(loggableUrl('/v1/chat/stream/abc?lastEventId=sk-secret'), '/v1/chat/stream/abc', 'a lastEventId that is no number is dropped')
  t.equal(loggableUrl('/a?lastEventId'), '/a', 'a name without a value is dropped')
  t.equal(loggableUrl('/a?sk-bare-token'), '/a', 'a bare token is dropped')
})

t.test('?api_key=… in any request never reaches the log of the running server', async (t) => {
  const secret = `sk-test-${randomBytes(12).toString('hex')}`
  const relay = await startRelayProcess(t, { LOG_LEVEL: 'trace' })
  const q = `api_key=${secret}`
  const requests: Array<[string, string, unknown?]> = [
    ['GET', `/healthz?${q}`],
    ['GET', `/nope?${q}`],
    ['GET', `/v1/nope?${q}`],
    ['GET', `/v1/chat/stream/no-such-stream?lastEventId=3&${q}`],
    ['GET', `/%zz?${q}`],
    ['GET', `/demo/orders/bad!id/progress?${q}`],
    ['POST', `/v1/chat/stream?${q}`, { messages: 'not a list' }],
    ['POST', `/v1/chat/stream?${q}`, { messages: [{ role: 'user', content: 'hi' }], mock: { tokens: ['a', 'b'], tokenDelayMs: 1 } }],
    ['POST', `/v1/chat/completions?${q}`, { messages: [{ role: 'user', content: 'hi' }], mock: { tokens: ['a'] } }]
  ]
  for (const [method, path, body] of requests) {
    const res = await fetch(`${relay.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    await res.text()
  }
  // And one that Node's parser refuses (a NUL in a header), with the key in its URL and a header.
  await new Promise<void>((resolve) => {
    const socket = connect(relay.port, '127.0.0.1', () => {
      socket.end(`GET /healthz?${q} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${secret}\r\nX-Note: a\0b\r\n\r\n`)
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve())
    socket.resume()
  })
  await waitUntil(() => relay.output().includes('refused a malformed request'), 10_000, 'the parser error logged')

  const output = relay.output()
  t.match(output, /"url":"\/healthz"/, 'request URLs are logged (without their query)')
  t.match(output, /"url":"\/v1\/chat\/stream\/no-such-stream\?lastEventId=3"/, 'a numeric lastEventId is kept')
  t.match(output, /Route GET:\/nope not found/, 'the not-found line names the path')
  t.match(output, /"code":"HPE_INVALID_HEADER_TOKEN"/, 'the parser error is logged by its code')
  t.notOk(output.includes(secret), 'the key is in no log line')
  t.notOk(output.includes('api_key'), 'nor is the parameter\'s name')
})
