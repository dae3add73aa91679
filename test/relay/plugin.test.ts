// The one-call plugin: it makes what it is not given and closes it with the app (no handle left
// open), leaves what it was given to the application, serves its routes where and as configured,
// and lets an application's own routes start generations with reply.relay().
import Fastify from 'fastify'
import t from 'tap'
import llmRelay, { MemoryStore, RelayError, UpstreamClient } from '../../index.js'
import { startMockUpstream } from '../../mock.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, payloads, textOf, untilClose, waitUntil } from '../fixtures/stack.js'

const mock = await startMockUpstream({ defaults: { firstTokenDelayMs: 0, tokenDelayMs: 2, jitterMs: 0 } })
t.teardown(() => mock.close())
const messages = [{ role: 'user', content: 'Hello' }]

async function listen (app: ReturnType<typeof Fastify>): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

/** Sockets, servers and timers alive now, by kind (Node's own count of what keeps a process up). */
function handles (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

t.test('one call: everything made, decorated, served; app.close() leaves no handle open', async (t) => {
  const before = handles()
  const app = Fastify()
  await app.register(llmRelay, { upstream: { url: mock.url, apiKey: 'sk-one-call' } })
  t.ok(app.hasDecorator('relay') && app.hasDecorator('channels') && app.hasDecorator('relayMetrics'), 'app.relay, app.channels, app.relayMetrics')
  t.ok(app.hasReplyDecorator('sse') && app.hasReplyDecorator('relay'), 'reply.sse() and reply.relay()')
  const url = await listen(app)
  const res = await collectSse(`${url}/v1/chat/stream`, { method: 'POST', body: { messages, mock: { tokens: ['one ', 'call'] } }, until: untilClose })
  t.equal(textOf(res.events), 'one call')
  t.equal(mock.requests.at(-1)?.headers.authorization, 'Bearer sk-one-call')
  // A channel and a resumable stream leave timers (retention) and a pooled upstream socket behind.
  await app.channels.publish('news', { data: { n: 1 } })
  await app.close()
  // Sockets close asynchronously after their close() resolved.
  await waitUntil(() => (handles().TCPSocketWrap ?? 0) <= (before.TCPSocketWrap ?? 0), 3000, 'the upstream sockets closed')
  const after = handles()
  for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout']) {
    t.ok((after[kind] ?? 0) <= (before[kind] ?? 0), `${kind}: ${after[kind] ?? 0} after close, ${before[kind] ?? 0} before`)
  }
})

t.test('what the application passes in is used as is and left open', async (t) => {
  const upstream = new UpstreamClient({ url: mock.url, apiKey: 'sk-given', model: 'given-model' })
  const store = new MemoryStore()
  t.teardown(async () => {
    await upstream.close()
    await store.close()
  })
  const app = Fastify()
  await app.register(llmRelay, { upstream, store })
  t.equal(app.relay.store, store, 'the given store')
  const url = await listen(app)
  const res = await collectSse(`${url}/v1/chat/stream`, { method: 'POST', body: { messages, mock: { tokens: ['given'] } }, until: untilClose })
  t.equal(mock.requests.at(-1)?.headers.authorization, 'Bearer sk-given', 'the given client')
  const streamId = res.headers['x-stream-id'] as string
  await app.close()
  t.ok(await store.state(streamId), 'the store still answers after app.close()')
  const events: string[] = []
  await upstream.consume({ messages, mock: { tokens: ['still'] } }, { signal: AbortSignal.timeout(5000) }, (event) => { if (event.type === 'delta') events.push(event.content) })
  t.same(events, ['still'], 'the upstream client still streams after app.close()')
})

t.test('routes: a prefix of its own, groups off, or none (reply.relay only)', async (t) => {
  const app = Fastify()
  await app.register(llmRelay, { upstream: { url: mock.url }, routes: { prefix: '/api/llm', completions: false, channels: false } })
  const url = await listen(app)
  t.teardown(() => app.close())
  const created = await fetch(`${url}/api/llm/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages, mock: { tokens: ['p'] } }) })
  t.equal(created.status, 201)
  const { streamUrl } = await created.json() as { streamUrl: string }
  t.match(streamUrl, /^\/api\/llm\/chat\/stream\/[A-Za-z0-9_-]{22}$/, 'streamUrl under the prefix')
  const stream = await collectSse(`${url}${streamUrl}`, { until: untilClose })
  t.equal(textOf(stream.events), 'p')
  const off = await fetch(`${url}/api/llm/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) })
  t.equal(off.status, 404, 'completions off')
  t.match(await off.json(), { error: { code: 'not_found' } })
  t.equal((await fetch(`${url}/api/llm/channels/x/stream`)).status, 404, 'channels off')
  t.equal((await fetch(`${url}/v1/chat/stream`, { method: 'POST' })).status, 404, 'nothing under /v1')

  const bare = Fastify()
  await bare.register(llmRelay, { upstream: { url: mock.url }, routes: false })
  bare.post('/ask', async (request, reply) => reply.relay({ messages, mock: { tokens: ['only ', 'mine'] } }))
  const bareUrl = await listen(bare)
  t.teardown(() => bare.close())
  t.equal((await fetch(`${bareUrl}/v1/models`)).status, 404, 'no built-in route')
  const own = await collectSse(`${bareUrl}/ask`, { method: 'POST', until: untilClose })
  t.equal(textOf(own.events), 'only mine', 'reply.relay() from the application\'s route')
})

t.test('reply.relay(): commit late, limits per owner, the OpenAI format, supersede, identify', async (t) => {
  const app = Fastify()
  await app.register(llmRelay, {
    upstream: { url: mock.url, maxRetries: 0 },
    maxStreamsPerClient: 1,
    // The application's identity: a header set by its (imaginary) session layer; one user is refused.
    identify: async (request) => {
      const user = request.headers['x-user']
      if (user === 'mallory') throw Object.assign(new Error('this account is suspended'), { statusCode: 403 })
      if (typeof user !== 'string') throw new RelayError('unauthorized', 401, 'log in first')
      return `user:${user}`
    }
  })
  app.post<{ Body: { script?: Record<string, unknown>, conversation?: string, openai?: boolean } }>('/ask', async (request, reply) => {
    const { script, conversation, openai } = request.body
    return reply.relay({ model: 'app-model', messages, mock: script }, { conversationId: conversation, format: openai === true ? 'openai' : 'relay' })
  })
  const url = await listen(app)
  t.teardown(() => app.close())
  const ask = (user: string, body: Record<string, unknown>): Promise<Response> =>
    fetch(`${url}/ask`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-user': user }, body: JSON.stringify(body) })

  const failed = await ask('ann', { script: { status: 503, errorMessage: 'overloaded' } })
  t.equal(failed.status, 502, 'an upstream failure before the first token is a JSON status')
  t.match(await failed.json(), { error: { code: 'upstream_unavailable' } })

  const refused = await ask('mallory', { script: { tokens: ['x'] } })
  t.equal(refused.status, 403, 'identify() refusing with a status: that status')
  t.same(await refused.json(), { error: { code: 'forbidden', message: 'this account is suspended' } })

  const chunks = await collectSse(`${url}/ask`, { method: 'POST', headers: { 'x-user': 'ann' }, body: { script: { tokens: ['o', 'k'] }, openai: true } })
  t.equal(chunks.events.at(-1)?.data, '[DONE]', 'the OpenAI format ends with [DONE]')
  t.same(chunks.events.slice(0, -1).map((e) => (JSON.parse(e.data) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content).join(''), 'ok')
  t.match(JSON.parse(chunks.events[0]?.data ?? '{}'), { object: 'chat.completion.chunk', model: 'app-model' })

  // One running generation per owner (maxStreamsPerClient 1): a second is a 429; another owner is not limited by it.
  let first = 0
  const running = collectSse(`${url}/ask`, {
    method: 'POST',
    headers: { 'x-user': 'ann' },
    body: { script: { tokens: Array.from({ length: 40 }, () => 'w '), tokenDelayMs: 40 }, conversation: 'talk' },
    onEvent: () => { first++ },
    until: untilClose,
    timeoutMs: 15_000
  })
  await waitUntil(() => first > 0, 5000, 'the first answer is running')
  const second = await ask('ann', { script: { tokens: ['y'] } })
  t.equal(second.status, 429, 'ann\'s second generation is over her limit')
  t.ok(second.headers.get('retry-after') !== null, 'with retry-after')
  await second.body?.cancel()
  const other = await collectSse(`${url}/ask`, { method: 'POST', headers: { 'x-user': 'bob' }, body: { script: { tokens: ['b'] }, conversation: 'talk' }, until: untilClose })
  t.equal(textOf(other.events), 'b', 'bob has his own limit, and his own conversation "talk"')
  t.equal(closeReason((await running).events), 'done', 'bob\'s conversation of the same name superseded nothing of ann\'s')
})

t.test('drain on close: running answers finish within shutdownGraceMs; with 0 they end with shutdown', async (t) => {
  for (const [graceMs, reason] of [[5000, 'done'], [0, 'shutdown']] as const) {
    const app = Fastify()
    await app.register(llmRelay, { upstream: { url: mock.url }, shutdownGraceMs: graceMs })
    const url = await listen(app)
    let seen = 0
    const running = collectSse(`${url}/v1/chat/stream`, {
      method: 'POST',
      body: { messages, mock: { tokens: Array.from({ length: 20 }, (_, i) => `t${i} `), tokenDelayMs: 30 } },
      onEvent: () => { seen++ },
      until: untilClose,
      timeoutMs: 15_000
    })
    await waitUntil(() => seen >= 2, 5000, 'under way')
    await app.close()
    const res = await running
    t.equal(closeReason(res.events), reason, `shutdownGraceMs ${graceMs}: close ${reason}`)
    if (reason === 'done') t.equal(payloads(res.events).filter((p) => p.type === 'delta').length, 20, 'the whole answer')
  }
})

t.test('an upstream of the application\'s own that names no model: its generations are counted under the default model', async (t) => {
  const upstream = {
    async * stream () {
      yield { type: 'delta' as const, choice: 0, content: 'own' }
      yield { type: 'usage' as const, prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }
    }
  }
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(llmRelay, { upstream, defaultModel: 'house-model' })
  const url = await listen(app)
  const res = await collectSse(`${url}/v1/chat/stream`, { method: 'POST', body: { messages }, until: untilClose })
  t.equal(textOf(res.events), 'own')
  await waitUntil(async () => (await app.relayMetrics.registry.metrics()).includes('relay_usage_tokens_total{model="house-model",kind="prompt",estimated="false"} 3'), 3000, 'usage counted under the default model')
})
