import t from 'tap'
import type { MemoryStore } from '../../lib/relay/stores/memory.js'
import { startStack, untilClose } from '../fixtures/stack.js'

interface ErrorBody { error: { code: string, message: string } }

const post = async (url: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number, json: ErrorBody, headers: Headers }> => {
  const res = await fetch(url, { method: 'POST', headers, body })
  return { status: res.status, json: await res.json() as ErrorBody, headers: res.headers }
}

t.test('bad bodies get a 4xx JSON error naming what is wrong, never a stream', async (t) => {
  const stack = await startStack(t, { MAX_BODY_BYTES: '2000' })
  const url = `${stack.relay.url}/v1/chat/stream`
  const cases: Array<[string, string, number, string, RegExp]> = [
    ['no messages', '{}', 400, 'invalid_request', /messages/],
    ['empty messages', '{"messages":[]}', 400, 'invalid_request', /messages/],
    ['a message without role', '{"messages":[{"content":"x"}]}', 400, 'invalid_request', /role/],
    ['messages not an array', '{"messages":"hi"}', 400, 'invalid_request', /messages/],
    ['a bad conversationId', '{"messages":[{"role":"user","content":"x"}],"conversationId":"a b\\n"}', 400, 'invalid_request', /conversationId/],
    ['a bad model', '{"messages":[{"role":"user","content":"x"}],"model":""}', 400, 'invalid_request', /model/],
    ['n over 128', '{"messages":[{"role":"user","content":"x"}],"n":1000000000}', 400, 'invalid_request', /\bn\b/],
    ['n below 1', '{"messages":[{"role":"user","content":"x"}],"n":0}', 400, 'invalid_request', /\bn\b/],
    ['a body nested 150 deep', `{"messages":[{"role":"user","content":"x"}],"tools":${'{"a":'.repeat(150)}1${'}'.repeat(150)}}`, 400, 'invalid_request', /nests deeper than 100/],
    ['n not a whole number', '{"messages":[{"role":"user","content":"x"}],"n":1.5}', 400, 'invalid_request', /\bn\b/],
    ['broken JSON', '{"messages":', 400, 'invalid_json', /JSON/i],
    ['a body over MAX_BODY_BYTES', JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(3000) }] }), 413, 'body_too_large', /large/i]
  ]
  for (const [name, body, status, code, message] of cases) {
    const res = await post(url, body)
    t.equal(res.status, status, `${name}: ${status}`)
    t.equal(res.json.error.code, code, `${name}: ${code}`)
    t.match(res.json.error.message, message, `${name}: the message names it`)
  }
  const wrongType = await post(url, 'messages=hi', { 'content-type': 'text/plain' })
  t.equal(wrongType.status, 415)
  t.equal(wrongType.json.error.code, 'unsupported_media_type')
  t.equal(stack.mock.requests.length, 0, 'nothing reached the upstream')
})

t.test('RELAY_API_KEYS: 401 first, then streams are visible only to their key', async (t) => {
  const stack = await startStack(t, { RELAY_API_KEYS: 'key-a, key-b', UPSTREAM_API_KEY: 'sk-upstream-secret' })
  const url = `${stack.relay.url}/v1/chat/stream`
  const none = await post(url, '{}')
  t.equal(none.status, 401, 'authentication is checked before the body')
  t.equal(none.json.error.code, 'unauthorized')
  const wrong = await post(url, '{}', { 'content-type': 'application/json', authorization: 'Bearer nope' })
  t.equal(wrong.status, 401)

  const a = { authorization: 'Bearer key-a' }
  const b = { authorization: 'Bearer key-b' }
  const streamId = await stack.create({ tokens: ['x', 'y'], firstTokenDelayMs: 0 }, { conversationId: 'shared-name' }, a)
  const mine = await stack.read(streamId, { until: untilClose, headers: a })
  t.equal(mine.status, 200)
  t.notOk(mine.raw.includes('sk-upstream-secret'))
  const theirs = await fetch(`${stack.relay.url}/v1/chat/stream/${streamId}`, { headers: b })
  t.equal(theirs.status, 404, 'another key gets 404, not 403: no existence leak')
  const del = await fetch(`${stack.relay.url}/v1/chat/stream/${streamId}`, { method: 'DELETE', headers: b })
  t.equal(del.status, 404)
  const conv = await fetch(`${stack.relay.url}/v1/conversations/shared-name/stream`, { headers: b })
  t.equal(conv.status, 204, 'conversations are per key')
  const health = await fetch(`${stack.relay.url}/healthz`)
  t.equal(health.status, 200, 'health needs no key')
})

t.test('MAX_STREAMS_PER_CLIENT → 429 with retry-after; MAX_STREAMS → 503', async (t) => {
  const perClient = await startStack(t, { MAX_STREAMS_PER_CLIENT: '2' })
  const long = { tokens: Array.from({ length: 100 }, () => 'z'), tokenDelayMs: 50, firstTokenDelayMs: 0 }
  const ids = [await perClient.create(long), await perClient.create(long)]
  const journals = (perClient.relay.app.relay.store as MemoryStore).size
  const third = await post(`${perClient.relay.url}/v1/chat`, JSON.stringify({ messages: [{ role: 'user', content: 'x' }] }))
  t.equal(third.status, 429)
  t.equal(third.json.error.code, 'too_many_streams')
  t.equal((perClient.relay.app.relay.store as MemoryStore).size, journals, 'the refused start left no journal behind')
  t.ok(Number(third.headers.get('retry-after')) >= 1, 'retry-after is set')
  const bad = await post(`${perClient.relay.url}/v1/chat`, '{}')
  t.equal(bad.status, 400, 'the body is checked before the limits')
  await fetch(`${perClient.relay.url}/v1/chat/stream/${ids[0] as string}`, { method: 'DELETE' })
  const after = await post(`${perClient.relay.url}/v1/chat`, JSON.stringify({ messages: [{ role: 'user', content: 'x' }], mock: long }))
  t.equal(after.status, 201, 'a slot frees when a generation ends')
  const completions = await post(`${perClient.relay.url}/v1/chat/completions`, JSON.stringify({ messages: [{ role: 'user', content: 'x' }], stream: true }))
  t.equal(completions.status, 429, 'completions streams count toward the per-client limit too')
  t.equal(completions.json.error.code, 'too_many_streams')

  const total = await startStack(t, { MAX_STREAMS: '1' })
  await total.create(long)
  const busy = await post(`${total.relay.url}/v1/chat/completions`, JSON.stringify({ messages: [{ role: 'user', content: 'x' }], stream: true }))
  t.equal(busy.status, 503, 'completions streams count toward the limits too')
  t.equal(busy.json.error.code, 'server_busy')
})
