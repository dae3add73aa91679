import t from 'tap'
import { startStack } from '../fixtures/stack.js'

// The auth scheme is case-insensitive (RFC 9110 §11.1): `bearer k1` and `BEARER k1` are the same
// credentials as `Bearer k1`, for API keys and publish keys alike. Other schemes stay refused.

const body = JSON.stringify({ messages: [{ role: 'user', content: 'x' }], mock: { text: 'ok', tokenDelayMs: 1 } })

async function createWith (url: string, authorization: string): Promise<{ status: number, json: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization },
    body,
    signal: AbortSignal.timeout(5000)
  })
  return { status: res.status, json: await res.json() as Record<string, unknown> }
}

t.test('any case of "Bearer" carries an API key; other schemes get 401', async (t) => {
  const stack = await startStack(t, { RELAY_API_KEYS: 'k1' })
  const url = stack.relay.url
  for (const authorization of ['Bearer k1', 'bearer k1', 'BEARER k1', 'bEaReR k1', 'bearer   k1']) {
    const res = await createWith(url, authorization)
    t.equal(res.status, 201, `${JSON.stringify(authorization)}: 201`)
  }
  for (const authorization of ['Basic k1', 'Token k1', 'Bearerk1', 'bearerk1', 'k1', 'bearer', 'Bearer', 'Bearer-k1 k1', 'xbearer k1']) {
    const res = await createWith(url, authorization)
    t.equal(res.status, 401, `${JSON.stringify(authorization)}: 401`)
    t.same(res.json, { error: { code: 'unauthorized', message: 'missing bearer token' } }, `${JSON.stringify(authorization)}: no bearer token`)
  }
  const wrong = await createWith(url, 'bearer k2')
  t.equal(wrong.status, 401, 'a lowercase scheme with a wrong key: 401')
  t.equal((wrong.json.error as { message: string }).message, 'invalid bearer token')

  // The same key whatever the case of the scheme: the stream is visible to it.
  const created = await createWith(url, 'BEARER k1')
  const streamId = created.json.streamId as string
  const read = await stack.read(streamId, { headers: { authorization: 'Bearer k1' }, until: (e) => e.event === 'close', timeoutMs: 5000 })
  t.equal(read.status, 200, 'created with "BEARER k1", read with "Bearer k1"')
})

t.test('publish keys accept any case of "Bearer" too', async (t) => {
  const stack = await startStack(t, { RELAY_PUBLISH_KEYS: 'p1' })
  const publish = async (authorization: string): Promise<number> => (await fetch(`${stack.relay.url}/v1/channels/jobs/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization },
    body: JSON.stringify({ data: { n: 1 } }),
    signal: AbortSignal.timeout(5000)
  })).status
  t.equal(await publish('bearer p1'), 202, 'bearer p1: 202')
  t.equal(await publish('BEARER p1'), 202, 'BEARER p1: 202')
  t.equal(await publish('Basic p1'), 401, 'Basic p1: 401')
})
