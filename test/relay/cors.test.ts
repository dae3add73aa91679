// CORS_ORIGINS over real sockets: what a listed origin gets (preflight, streams, errors, resume),
// and that any other origin, or a relay without CORS_ORIGINS, gets no CORS header at all. What
// a browser does with these headers is test/browser/cors.test.ts.
import t from 'tap'
import type { Test } from 'tap'
import { ConfigError, readConfig } from '../../lib/config.js'
import { collectSse } from '../fixtures/sse-client.js'
import { startRelay } from '../fixtures/relay.js'
import { startMockUpstream } from '../../lib/mock/index.js'

const ALLOWED = 'http://app.example:8080'
const OTHER = 'http://evil.example'

const mock = await startMockUpstream()
t.teardown(() => mock.close())

async function relayWith (t: Test, env: Record<string, string>): Promise<string> {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, ...env } })
  t.teardown(() => relay.close())
  return relay.url
}

const corsHeaders = (headers: Headers | Record<string, unknown>): string[] => {
  const names = headers instanceof Headers ? [...headers.keys()] : Object.keys(headers)
  return names.filter((name) => name.startsWith('access-control-')).sort()
}

const preflight = async (url: string, origin: string, method = 'POST', headers = 'content-type,authorization,last-event-id'): Promise<Response> =>
  await fetch(url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers } })

const chat = { messages: [{ role: 'user', content: 'hi' }], mock: { tokens: ['a', 'b', 'c'], tokenDelayMs: 1 } }

t.test('a listed origin: preflight, the stream, a resume and the JSON errors all carry its CORS headers', async (t) => {
  const url = await relayWith(t, { CORS_ORIGINS: `https://other.example, ${ALLOWED}/`, RELAY_API_KEYS: 'k1' })

  const pre = await preflight(`${url}/v1/chat/stream`, ALLOWED)
  t.equal(pre.status, 204, 'the preflight is answered, without the key (browsers send none)')
  t.equal(pre.headers.get('access-control-allow-origin'), ALLOWED)
  t.same(pre.headers.get('access-control-allow-headers')?.split(/, */).sort(), ['authorization', 'content-type', 'last-event-id'])
  t.same(pre.headers.get('access-control-allow-methods')?.split(/, */).sort(), ['DELETE', 'GET', 'HEAD', 'POST'])
  t.equal(pre.headers.get('access-control-max-age'), '600')
  t.equal(pre.headers.get('access-control-allow-credentials'), null, 'no credentials unless CORS_CREDENTIALS=true')
  t.match(pre.headers.get('vary'), /Origin/i, 'caches keep answers per origin')

  const stream = await collectSse(`${url}/v1/chat/stream`, { method: 'POST', headers: { origin: ALLOWED, authorization: 'Bearer k1' }, body: chat })
  t.equal(stream.status, 200)
  t.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8', 'an SSE answer (the reply was hijacked by reply.sse())')
  t.equal(stream.headers['access-control-allow-origin'], ALLOWED, 'the stream carries the origin')
  t.same(String(stream.headers['access-control-expose-headers']).split(/, */).sort(), ['retry-after', 'x-stream-id'], 'x-stream-id and retry-after are readable')
  t.match(stream.headers.vary, /Origin/i)
  const streamId = stream.headers['x-stream-id'] as string
  t.ok(streamId, 'x-stream-id is there to read')

  const resumed = await collectSse(`${url}/v1/chat/stream/${streamId}`, { headers: { origin: ALLOWED, authorization: 'Bearer k1', 'last-event-id': '1' } })
  t.equal(resumed.status, 200)
  t.equal(resumed.headers['access-control-allow-origin'], ALLOWED, 'a resume too')
  t.equal(resumed.events[0]?.id, '2', 'from after Last-Event-ID')

  const denied = await fetch(`${url}/v1/chat/stream`, { method: 'POST', headers: { origin: ALLOWED, 'content-type': 'application/json' }, body: JSON.stringify(chat) })
  t.equal(denied.status, 401)
  t.equal(denied.headers.get('access-control-allow-origin'), ALLOWED, 'a 401 is readable by the page, so it can say why')
  t.match(await denied.json(), { error: { code: String } })
})

t.test('another origin, or a request with no Origin, gets no CORS header at all', async (t) => {
  const url = await relayWith(t, { CORS_ORIGINS: ALLOWED })
  const pre = await preflight(`${url}/v1/chat/stream`, OTHER)
  t.same(corsHeaders(pre.headers), [], `preflight: none (${pre.status})`)
  const stream = await collectSse(`${url}/v1/chat/stream`, { method: 'POST', headers: { origin: OTHER }, body: chat })
  t.equal(stream.status, 200, 'the request itself is served: refusing to share is the browser\'s part')
  t.same(corsHeaders(stream.headers), [], 'stream: none')
  const plain = await fetch(`${url}/healthz`)
  t.same(corsHeaders(plain.headers), [], 'no Origin (same origin, curl): none')
  const lookalike = await fetch(`${url}/healthz`, { headers: { origin: `${ALLOWED}.evil.example` } })
  t.same(corsHeaders(lookalike.headers), [], 'an origin that only starts like a listed one: none')
})

t.test('CORS_ORIGINS unset: no CORS headers, and preflights are not answered as such', async (t) => {
  const url = await relayWith(t, {})
  const pre = await preflight(`${url}/v1/chat/stream`, ALLOWED)
  t.same(corsHeaders(pre.headers), [])
  t.equal(pre.status, 405, 'no OPTIONS route: the path has other methods')
  const res = await fetch(`${url}/healthz`, { headers: { origin: ALLOWED } })
  t.same(corsHeaders(res.headers), [])
})

t.test('CORS_CREDENTIALS=true: listed origins may send cookies', async (t) => {
  const url = await relayWith(t, { CORS_ORIGINS: ALLOWED, CORS_CREDENTIALS: 'true' })
  const pre = await preflight(`${url}/v1/chat/stream`, ALLOWED)
  t.equal(pre.headers.get('access-control-allow-credentials'), 'true')
  t.equal(pre.headers.get('access-control-allow-origin'), ALLOWED, 'the origin itself, never * with credentials')
  const other = await preflight(`${url}/v1/chat/stream`, OTHER)
  t.same(corsHeaders(other.headers), [], 'another origin still gets nothing')
})

t.test('CORS_ORIGINS=*: any origin, without credentials', async (t) => {
  const url = await relayWith(t, { CORS_ORIGINS: '*' })
  const res = await fetch(`${url}/healthz`, { headers: { origin: OTHER } })
  t.equal(res.headers.get('access-control-allow-origin'), '*')
})

t.test('bad CORS settings stop the boot naming the variable', async (t) => {
  const message = (env: Record<string, string>): string => {
    try {
      readConfig(env)
    } catch (err) {
      t.ok(err instanceof ConfigError, 'a ConfigError')
      return (err as Error).message
    }
    return 'accepted'
  }
  t.same(readConfig({ CORS_ORIGINS: 'https://App.Example.com:443/, http://127.0.0.1:5173' }).corsOrigins, ['https://app.example.com', 'http://127.0.0.1:5173'], 'normalized as browsers send Origin')
  t.same(readConfig({}).corsOrigins, [], 'unset: none')
  t.equal(readConfig({}).corsCredentials, false)
  for (const bad of ['app.example.com', 'https://app.example.com/chat', 'ftp://x.example', 'https://user@x.example']) {
    t.match(message({ CORS_ORIGINS: bad }), /^CORS_ORIGINS entries must be origins like https:\/\/app\.example\.com/, bad)
  }
  t.equal(message({ CORS_CREDENTIALS: 'yes' }), 'CORS_CREDENTIALS must be true or false, got "yes"')
  t.match(message({ CORS_ORIGINS: '*', CORS_CREDENTIALS: 'true' }), /^CORS_CREDENTIALS=true needs the origins listed/)
})
