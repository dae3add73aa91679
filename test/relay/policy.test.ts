// An open or keyed service is not a free proxy: UPSTREAM_MODELS, MAX_OUTPUT_TOKENS, SYSTEM_PROMPT
// and MAX_CHOICES bound what a client may ask of the operator's upstream, refused requests never
// reach it, and GET /v1/models serves the list (what model pickers and the SDKs' models.list() read).
import OpenAI from 'openai'
import t from 'tap'
import { startMockUpstream } from '../../mock.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, untilClose } from '../fixtures/stack.js'

const mock = await startMockUpstream({ defaults: { tokens: ['ok'], firstTokenDelayMs: 0, tokenDelayMs: 1 } })
t.teardown(() => mock.close())
const messages = [{ role: 'user', content: 'Hi' }]
/** The body of the last request the upstream received. */
const lastSent = (): Record<string, unknown> => mock.requests.at(-1)?.body as Record<string, unknown>

async function post (url: string, body: unknown): Promise<{ status: number, body: { error?: { code: string, message: string } } }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, body: await res.json() as { error?: { code: string, message: string } } }
}

t.test('models and output tokens outside the policy are refused before the upstream is called', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, UPSTREAM_MODELS: 'small-model,big-model', MAX_OUTPUT_TOKENS: '500' } })
  t.teardown(() => relay.close())
  const before = mock.requests.length
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['another model', { model: 'gpt-5-pro' }, 'model_not_allowed', /^model "gpt-5-pro" is not allowed; allowed: small-model, big-model$/],
    ['max_tokens over the cap', { max_tokens: 501 }, 'invalid_request', /^max_tokens must be at most 500$/],
    ['max_completion_tokens over the cap', { max_completion_tokens: 100_000 }, 'invalid_request', /^max_completion_tokens must be at most 500$/],
    ['a token count that is no count', { max_tokens: 'lots' }, 'invalid_request', /^max_tokens must be a positive whole number$/],
    ['two choices', { n: 2 }, 'invalid_request', /^n must be 1/]
  ]
  for (const path of ['/v1/chat/stream', '/v1/chat', '/v1/chat/completions']) {
    for (const [name, extra, code, message] of cases) {
      const res = await post(`${relay.url}${path}`, { messages, ...extra })
      t.equal(res.status, 400, `${path}, ${name}: 400`)
      t.equal(res.body.error?.code, code)
      t.match(res.body.error?.message, message)
    }
  }
  t.equal(mock.requests.length, before, 'the upstream saw none of them')

  // Within the policy: the cap is filled in when absent, kept when lower; no model: the first allowed.
  await collectSse(`${relay.url}/v1/chat/stream`, { method: 'POST', body: { messages }, until: untilClose })
  t.equal(lastSent().max_completion_tokens, 500, 'the cap is filled in')
  t.equal(lastSent().model, 'small-model', 'a request naming no model gets the first allowed one')
  await collectSse(`${relay.url}/v1/chat/stream`, { method: 'POST', body: { messages, model: 'big-model', max_tokens: 20 }, until: untilClose })
  t.equal(lastSent().max_tokens, 20, 'a lower limit is kept')
  t.equal(lastSent().model, 'big-model')
})

t.test('SYSTEM_PROMPT comes first; MAX_CHOICES allows n', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, SYSTEM_PROMPT: 'You are terse.', MAX_CHOICES: '3' } })
  t.teardown(() => relay.close())
  const res = await collectSse(`${relay.url}/v1/chat/stream`, { method: 'POST', body: { messages, n: 3 }, until: untilClose })
  t.equal(closeReason(res.events), 'done')
  const sent = lastSent()
  t.same(sent.messages, [{ role: 'system', content: 'You are terse.' }, ...messages], 'the operator\'s system message first, the client\'s after')
  t.equal(sent.n, 3, 'n up to MAX_CHOICES')
  t.equal((await post(`${relay.url}/v1/chat/stream`, { messages, n: 4 })).status, 400, 'n over MAX_CHOICES')
})

t.test('GET /v1/models: the allowed models in OpenAI\'s shape, read by the OpenAI SDK', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, UPSTREAM_MODELS: 'small-model,big-model', RELAY_API_KEYS: 'k1' } })
  t.teardown(() => relay.close())
  const client = new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: 'k1', maxRetries: 0 })
  const ids: string[] = []
  for await (const model of client.models.list()) {
    t.equal(model.object, 'model')
    t.type(model.created, 'number')
    ids.push(model.id)
  }
  t.same(ids, ['small-model', 'big-model'])
  const anonymous = await fetch(`${relay.url}/v1/models`)
  t.equal(anonymous.status, 401, 'the list is behind the key like every /v1 route')

  // No list configured: the upstream's own.
  const open = await startRelay({ env: { UPSTREAM_URL: mock.url } })
  t.teardown(() => open.close())
  const upstreamList = await (await fetch(`${open.url}/v1/models`)).json() as { object: string, data: Array<{ id: string }> }
  t.equal(upstreamList.object, 'list')
  t.same(upstreamList.data.map((m) => m.id), ['mock-model'], 'the upstream\'s models')
})

t.test('prepareRequest rewrites or refuses the body of the built-in start routes', async (t) => {
  const relay = await startRelay({
    env: { UPSTREAM_URL: mock.url },
    prepareRequest: async (request, body) => {
      if (request.headers['x-plan'] !== 'pro') {
        throw Object.assign(new Error('upgrade to use this relay'), { statusCode: 402 })
      }
      return { ...body, user: 'from-the-app', tools: undefined }
    }
  })
  t.teardown(() => relay.close())
  const before = mock.requests.length
  const refused = await fetch(`${relay.url}/v1/chat/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) })
  t.equal(refused.status, 402)
  t.same(await refused.json(), { error: { code: 'invalid_request', message: 'upgrade to use this relay' } })
  t.equal(mock.requests.length, before, 'refused before the upstream')
  await collectSse(`${relay.url}/v1/chat/stream`, { method: 'POST', headers: { 'x-plan': 'pro' }, body: { messages, tools: [{ type: 'function', function: { name: 'f' } }] }, until: untilClose })
  t.equal(lastSent().user, 'from-the-app', 'the rewritten body went upstream')
  t.notOk('tools' in lastSent(), 'without what the application removed')
})
