import Fastify from 'fastify'
import t from 'tap'
import relayPlugin from '../../index.js'
import ssePlugin from '../../sse.js'
import { startRelayCore } from '../fixtures/relay-core.js'
import { startStack } from '../fixtures/stack.js'

// Every /v1/* request is the API's: unknown routes and wrong methods answer in the contract's JSON
// error shape, after the key check; routes outside /v1 keep Fastify's (and the app's) own 404.

interface ErrorBody { error: { code: string, message: string } }

async function call (url: string, init: RequestInit = {}): Promise<{ status: number, type: string | null, text: string }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) })
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
}

function errorOf (text: string): ErrorBody['error'] {
  const body = JSON.parse(text) as Partial<ErrorBody>
  if (body.error === undefined) throw new Error(`not the contract's error shape: ${text}`)
  return body.error
}

t.test('unknown /v1 routes: 404; known paths with another method: 405 with Allow; both in the contract shape', async (t) => {
  const stack = await startStack(t)
  const base = stack.relay.url
  const unknown: Array<[string, string, string]> = [
    ['GET', '/v1/nope', 'GET /v1/nope'],
    ['GET', '/v1', 'GET /v1'],
    ['GET', '/v1/', 'GET /v1/'],
    ['POST', '/v1/chat/stream/abc/more', 'POST /v1/chat/stream/abc/more'],
    ['GET', '/v1/nope?token=secret-in-query', 'GET /v1/nope']
  ]
  for (const [method, path, named] of unknown) {
    const res = await call(`${base}${path}`, { method })
    t.equal(res.status, 404, `${method} ${path}: 404`)
    t.match(res.type, /^application\/json/, `${method} ${path}: JSON`)
    const error = errorOf(res.text)
    t.equal(error.code, 'not_found', `${method} ${path}: code not_found`)
    t.equal(error.message, `no route ${named}`, `${method} ${path}: the message names method and path`)
  }
  // RFC 9110: a resource that exists with other methods is a 405 that lists them.
  const wrongMethod: Array<[string, string, string]> = [
    ['GET', '/v1/chat', 'POST'],
    ['PUT', '/v1/chat/stream/abc', 'GET, HEAD, DELETE'],
    ['DELETE', '/v1/chat/completions', 'POST'],
    ['POST', '/v1/channels/jobs/stream', 'GET, HEAD'],
    ['POST', '/v1/models', 'GET, HEAD']
  ]
  for (const [method, path, allow] of wrongMethod) {
    const res = await fetch(`${base}${path}`, { method, signal: AbortSignal.timeout(5000) })
    t.equal(res.status, 405, `${method} ${path}: 405`)
    t.equal(res.headers.get('allow'), allow, `${method} ${path}: Allow: ${allow}`)
    t.same(errorOf(await res.text()), { code: 'method_not_allowed', message: `${method} is not allowed on ${path}; allowed: ${allow}` })
  }
  t.notMatch((await call(`${base}/v1/nope?token=secret-in-query`)).text, /secret/, 'the query is not echoed')

  // The body of a request to no route is not read: no 400/415 for it, the route is what is wrong.
  const bodies: Array<[string, Record<string, string>]> = [
    ['{"messages":', { 'content-type': 'application/json' }],
    ['hello', { 'content-type': 'text/plain' }],
    ['{"messages":[{"role":"user","content":"x"}]}', { 'content-type': 'application/json' }]
  ]
  for (const [body, headers] of bodies) {
    const res = await call(`${base}/v1/chat/nope`, { method: 'POST', headers, body })
    t.equal(res.status, 404, `POST with ${headers['content-type']} ${body}: 404`)
    t.equal(errorOf(res.text).code, 'not_found')
  }
  t.equal(stack.mock.requests.length, 0, 'nothing reached the upstream')

  // The known routes still answer.
  const created = await call(`${base}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], mock: { text: 'ok' } })
  })
  t.equal(created.status, 201, 'POST /v1/chat still creates')
})

t.test('with RELAY_API_KEYS, the key is checked first on unknown /v1 routes too', async (t) => {
  const stack = await startStack(t, { RELAY_API_KEYS: 'key-a' })
  const base = stack.relay.url
  const cases: Array<[string, string, number, string]> = [
    ['GET', '/v1/nope', 404, 'not_found'],
    ['GET', '/v1/chat', 405, 'method_not_allowed'],
    ['PUT', '/v1/chat/stream/abc', 405, 'method_not_allowed'],
    ['POST', '/v1', 404, 'not_found']
  ]
  for (const [method, path, status, code] of cases) {
    const none = await call(`${base}${path}`, { method })
    t.equal(none.status, 401, `${method} ${path} without a key: 401`)
    t.same(errorOf(none.text), { code: 'unauthorized', message: 'missing bearer token' })
    const wrong = await call(`${base}${path}`, { method, headers: { authorization: 'Bearer key-z' } })
    t.equal(wrong.status, 401, `${method} ${path} with a wrong key: 401`)
    t.same(errorOf(wrong.text), { code: 'unauthorized', message: 'invalid bearer token' })
    const good = await call(`${base}${path}`, { method, headers: { authorization: 'Bearer key-a' } })
    t.equal(good.status, status, `${method} ${path} with a good key: ${status}`)
    t.equal(errorOf(good.text).code, code)
  }
  // Without a key, a broken body on no route is still a 401, not a 400.
  const broken = await call(`${base}/v1/nope`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":' })
  t.equal(broken.status, 401, 'authentication comes before the body')
})

t.test('routes outside /v1 are unchanged: no key, Fastify\'s own 404', async (t) => {
  const stack = await startStack(t, { RELAY_API_KEYS: 'key-a' })
  const base = stack.relay.url
  for (const path of ['/healthz', '/readyz', '/metrics', '/', '/index.html']) {
    t.equal((await call(`${base}${path}`)).status, 200, `GET ${path}: 200 without a key`)
  }
  for (const path of ['/nope', '/v1x', '/demo/nope', '/v2/chat']) {
    const res = await call(`${base}${path}`)
    t.equal(res.status, 404, `GET ${path}: 404 without a key`)
    t.same(JSON.parse(res.text), { message: `Route GET:${path} not found`, error: 'Not Found', statusCode: 404 }, `GET ${path}: Fastify's shape`)
  }
})

t.test('an application keeps its own not-found handler beside the relay\'s', async (t) => {
  const { relay } = await startRelayCore(t)
  const app = Fastify()
  await app.register(ssePlugin)
  await app.register(relayPlugin, { relay, apiKeys: ['key-a'] })
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ app: 'not here', url: request.url }))
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const own = await call(`${base}/elsewhere`)
  t.equal(own.status, 404)
  t.same(JSON.parse(own.text), { app: 'not here', url: '/elsewhere' }, 'the application\'s handler, no key needed')
  const api = await call(`${base}/v1/elsewhere`)
  t.equal(api.status, 401, 'the relay\'s scope checks the key')
  const keyed = await call(`${base}/v1/elsewhere`, { headers: { authorization: 'Bearer key-a' } })
  t.same(errorOf(keyed.text), { code: 'not_found', message: 'no route GET /v1/elsewhere' })
})

t.test('ids of up to 128 characters work in paths; a URL the router cannot take gets the contract\'s JSON error', async (t) => {
  const stack = await startStack(t)
  const base = stack.relay.url
  const long = 'c'.repeat(128)
  await stack.create({ tokens: ['a'], firstTokenDelayMs: 0 }, { conversationId: long })
  const conversation = await call(`${base}/v1/conversations/${long}/stream`)
  t.ok(conversation.status === 200 || conversation.status === 204, `a 128-character conversation id is served (${conversation.status})`)
  const channel = await fetch(`${base}/v1/channels/${long}/stream`, { signal: AbortSignal.timeout(5000) })
  t.equal(channel.status, 200, 'a 128-character channel name too')
  await channel.body?.cancel()

  const badUrl = await call(`${base}/v1/chat/stream/%E0%A4%A`)
  t.equal(badUrl.status, 400)
  t.match(badUrl.type, /^application\/json/)
  t.equal(errorOf(badUrl.text).code, 'invalid_url')
  const tooLong = await call(`${base}/v1/chat/stream/${'x'.repeat(3000)}`)
  t.equal(tooLong.status, 414)
  t.equal(errorOf(tooLong.text).code, 'uri_too_long')
  t.notMatch(tooLong.text, /xxxxxxxx/, 'the path is not echoed')
})
