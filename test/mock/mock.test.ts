// The mock upstream itself: records, its HTTP control routes, scripting, pacing, fast mode.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { QUICK } from '../fixtures/mock.js'

const post = (url: string, body: unknown, signal?: AbortSignal): Promise<Response> =>
  fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal === undefined ? {} : { signal }) })

t.test('records a request and serves them over HTTP', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  t.match(mock.url, /^http:\/\/127\.0\.0\.1:\d+\/v1$/)
  const res = await post(mock.url, { stream: true, messages: [{ role: 'user', content: 'x' }], mock: { tokens: ['a', 'b'], tag: 'one' } })
  t.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  const text = await res.text()
  t.match(text, /data: \[DONE\]\n\n$/)
  const record = await mock.waitFor('one')
  t.match(record, { tag: 'one', path: '/v1/chat/completions', format: 'openai', tokensSent: 2, aborted: false, abortedAt: undefined, status: 200 })
  t.ok(record.startedAt <= record.firstTokenAt! && record.firstTokenAt! <= record.completedAt!)
  await post(mock.url, { stream: true, mock: { tag: 'two' } }).then(r => r.text())
  const all = await (await fetch(mock.url.replace(/\/v1$/, '/__mock/requests'))).json() as unknown[]
  t.equal(all.length, 2)
  const tagged = await (await fetch(mock.url.replace(/\/v1$/, '/__mock/requests?tag=two'))).json() as Array<{ tag: string }>
  t.same(tagged.map(r => r.tag), ['two'])
  t.equal((await fetch(mock.url.replace(/\/v1$/, '/__mock/requests'), { method: 'DELETE' })).status, 204)
  t.equal(mock.requests.length, 0)
  await t.rejects(mock.waitFor('never', undefined, 50), /no request tagged "never"/)
})

t.test('records a client that goes away, and logs it', async t => {
  const lines: string[] = []
  const mock = await startMockUpstream({ defaults: { ...QUICK, tokenDelayMs: 20 }, log: line => lines.push(line) })
  t.teardown(() => mock.close())
  const controller = new AbortController()
  const res = await post(mock.url, { stream: true, mock: { tokens: Array.from({ length: 50 }, () => 'x'), tag: 'gone' } }, controller.signal)
  const reader = res.body!.getReader()
  await reader.read()
  controller.abort()
  const record = await mock.waitFor('gone')
  t.equal(record.aborted, true)
  t.ok(record.abortedAt! >= record.startedAt)
  t.match(lines.join('\n'), /#1 \[gone\] client went away after \d+ tokens/)
})

t.test('failTimes fails the first N requests of a tag', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) {
    const res = await post(mock.url, { stream: true, mock: { tag: 'f', failTimes: 2, status: 503 } })
    statuses.push(res.status)
    await res.text()
  }
  t.same(statuses, [503, 503, 200])
  t.same(mock.requests.map(r => r.fault), ['status', 'status', undefined])
})

t.test('lifelike defaults: a variable first-token delay and an answer that echoes the user', async t => {
  const mock = await startMockUpstream({ defaults: { tokenDelayMs: 1, jitterMs: 0 } })
  t.teardown(() => mock.close())
  const res = await post(mock.url, { stream: true, messages: [{ role: 'user', content: 'What is SSE?' }], mock: { tag: 'life' } })
  const text = await res.text()
  const record = await mock.waitFor('life')
  const wait = record.firstTokenAt! - record.startedAt
  t.ok(wait >= 190 && wait <= 700, `first token after ${wait} ms`)
  const answer = text.split('\n\n').filter(f => f.startsWith('data: {')).map(f => (JSON.parse(f.slice(6)) as { choices: Array<{ delta?: { content?: string } }> }).choices[0]?.delta?.content ?? '').join('')
  t.match(answer, /^You asked: “What is SSE\?” /)
  t.match(answer, /visible in the mock's log/)
})

t.test('a request without stream: true gets a whole completion', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const res = await post(mock.url, { messages: [], mock: { text: 'Hi there.' } })
  t.equal(res.headers.get('content-type'), 'application/json')
  t.match(await res.json(), { object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'Hi there.' }, finish_reason: 'stop' }] })
})

t.test('pings while stalled', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const controller = new AbortController()
  const res = await post(mock.url, { stream: true, mock: { fault: 'stall', pingEveryMs: 10 } }, controller.signal)
  const reader = res.body!.getReader()
  let seen = ''
  while (!seen.includes(': ping\n\n')) seen += new TextDecoder().decode((await reader.read()).value)
  controller.abort()
  t.pass('a ping comment came')
})

t.test('fast mode: one token per chunk, with send timestamps', async t => {
  const mock = await startMockUpstream()
  t.teardown(() => mock.close())
  const before = performance.timeOrigin + performance.now()
  const res = await post(mock.url, { stream: true, mock: { fast: { tokens: 500, timestamps: true }, tag: 'fast' } })
  const text = await res.text()
  const after = performance.timeOrigin + performance.now()
  const tokens = [...text.matchAll(/"content":"([0-9.]+) "/g)].map(m => Number(m[1]))
  t.equal(tokens.length, 500)
  t.ok(tokens.every(ts => ts >= before - 1 && ts <= after + 1), 'timestamps are send times')
  t.match(text, /"completion_tokens":500/)
  t.match(text, /data: \[DONE\]\n\n$/)
  t.equal((await mock.waitFor('fast')).tokensSent, 500)
})

t.test('fast mode with a rate', async t => {
  const mock = await startMockUpstream()
  t.teardown(() => mock.close())
  const started = Date.now()
  await (await post(mock.url, { stream: true, mock: { fast: { tokens: 100, tokensPerSecond: 500 } } })).text()
  const took = Date.now() - started
  t.ok(took >= 180 && took < 1000, `100 tokens at 500/s took ${took} ms`)
})

t.test('bad requests', async t => {
  const mock = await startMockUpstream({ defaults: QUICK })
  t.teardown(() => mock.close())
  const notJson = await fetch(`${mock.url}/chat/completions`, { method: 'POST', body: 'nope' })
  t.equal(notJson.status, 400)
  t.match(await notJson.json(), { error: { type: 'invalid_request_error' } })
  const unknown = await fetch(`${mock.url}/embeddings`, { method: 'POST', body: '{}' })
  t.equal(unknown.status, 404)
  t.match(await (await fetch(`${mock.url}/models`)).json(), { object: 'list' })
})

t.test('lib/mock/main.ts runs standalone and stops on SIGTERM', async t => {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('../../lib/mock/main.ts', import.meta.url).pathname], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MOCK_TOKEN_DELAY_MS: '0', MOCK_FIRST_TOKEN_DELAY_MS: '0', MOCK_JITTER_MS: '0' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  while (!/listening on (\S+)/.test(out)) await once(child.stdout, 'data')
  const url = /listening on (\S+)/.exec(out)![1]!
  const res = await post(url, { stream: true, mock: { tokens: ['x'] } })
  t.match(await res.text(), /"content":"x"/)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0)
})
