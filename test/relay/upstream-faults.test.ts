import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { MemoryStore } from '../../lib/relay/stores/memory.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, payloads, startStack, textOf, untilClose } from '../fixtures/stack.js'

const env = { UPSTREAM_MAX_RETRIES: '0' }

t.test('before the first token, upstream failures are real statuses, not streams', async (t) => {
  const stack = await startStack(t, { ...env, UPSTREAM_FIRST_TOKEN_TIMEOUT_MS: '300', UPSTREAM_HEADERS_TIMEOUT_MS: '200' })
  const cases: Array<[string, Record<string, unknown>, number, string]> = [
    ['429 with retry-after', { status: 429, retryAfter: 7 }, 429, 'upstream_rate_limited'],
    ['429 without retry-after', { status: 429 }, 429, 'upstream_rate_limited'],
    ['an in-band rate-limit error', { fault: 'error-data', errorType: 'rate_limit_exceeded' }, 429, 'upstream_rate_limited'],
    ['401 from the upstream', { status: 401 }, 502, 'upstream_auth'],
    ['403 from the upstream', { status: 403 }, 502, 'upstream_auth'],
    ['other 4xx', { status: 400, errorMessage: 'max_tokens is too large' }, 400, 'upstream_bad_request'],
    ['5xx', { status: 503 }, 502, 'upstream_unavailable'],
    ['a proxy\'s HTML error page', { fault: 'html', status: 502 }, 502, 'upstream_unavailable'],
    ['an HTML page with status 200', { fault: 'html', status: 200 }, 502, 'upstream_bad_response'],
    ['no first token in time', { firstTokenDelayMs: 3000, pingEveryMs: 50 }, 504, 'upstream_first_token_timeout'],
    ['no response headers in time', { headersDelayMs: 3000 }, 504, 'upstream_headers_timeout'],
    ['an in-band error before any token', { fault: 'error-data' }, 502, 'upstream_error'],
    ['a reset before any token', { fault: 'reset' }, 502, 'upstream_reset']
  ]
  for (const [name, script, status, code] of cases) {
    const res = await stack.stream({ tokens: ['x'], firstTokenDelayMs: 0, ...script })
    t.equal(res.status, status, `${name}: ${status}`)
    t.match(res.headers['content-type'], /^application\/json/, `${name}: JSON, not a stream`)
    const body = JSON.parse(res.raw) as { error: { code: string, message: string } }
    t.equal(body.error.code, code, `${name}: ${code}`)
    t.type(body.error.message, 'string')
    // Every 429 says when to retry: the upstream's own figure, else the relay's default of 1 s.
    if (status === 429) t.equal(res.headers['retry-after'], 'retryAfter' in script ? '7' : '1', `${name}: retry-after`)
    else t.equal(res.headers['retry-after'], undefined, `${name}: no retry-after`)
  }
  t.match(JSON.parse((await stack.stream({ status: 400, errorMessage: 'max_tokens is too large' })).raw), { error: { message: /max_tokens is too large/ } }, 'the upstream message is passed on for a 4xx')
})

t.test('an upstream retry-after reaches the client only when sane: at most an hour', async (t) => {
  const stack = await startStack(t, env)
  const cases: Array<[string, string, string]> = [
    ['a digit string of 27 digits (1e+26)', '1' + '0'.repeat(26), '3600'],
    ['a date in 2099', 'Thu, 01 Jan 2099 00:00:00 GMT', '3600'],
    ['Infinity: not a figure, the default second', 'Infinity', '1'],
    ['1e+26 written so: not delta-seconds', '1e+26', '1']
  ]
  for (const [name, retryAfter, expected] of cases) {
    const res = await stack.stream({ status: 429, retryAfter })
    t.equal(res.status, 429, `${name}: 429`)
    t.equal(res.headers['retry-after'], expected, `${name}: retry-after ${expected}`)
  }
})

t.test('after the first token, failures are an error event then close, never [DONE]', async (t) => {
  const stack = await startStack(t, { ...env, UPSTREAM_IDLE_TIMEOUT_MS: '300' })
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['reset mid-body', { fault: 'reset', faultAfterTokens: 2 }, 'upstream_reset'],
    ['truncated body', { fault: 'truncate', faultAfterTokens: 2 }, 'upstream_truncated'],
    ['in-band error', { fault: 'error-data', faultAfterTokens: 2 }, 'upstream_error'],
    ['vLLM flat error', { fault: 'vllm-error', faultAfterTokens: 2 }, 'upstream_error'],
    ['stall mid-answer', { fault: 'stall', faultAfterTokens: 2, pingEveryMs: 50 }, 'upstream_idle_timeout']
  ]
  for (const [name, script, code] of cases) {
    const res = await stack.stream({ tokens: ['a', 'b', 'c', 'd'], firstTokenDelayMs: 0, tokenDelayMs: 40, ...script }, { until: untilClose })
    t.equal(res.status, 200, `${name}: the stream had started`)
    // A reset can take the last chunk before it with it (the socket's unread bytes are dropped).
    t.ok(['a', 'ab'].includes(textOf(res.events)), `${name}: the text so far`)
    const error = res.events.find((e) => e.event === 'error')
    t.ok(error, `${name}: an error event`)
    t.equal((JSON.parse(error?.data ?? '{}') as { code?: string }).code, code, `${name}: ${code}`)
    t.ok(error?.id !== undefined, `${name}: the error is journaled (resumable)`)
    t.equal(closeReason(res.events), 'error', `${name}: close error`)
    t.notOk(res.events.some((e) => e.data === '[DONE]'), `${name}: no [DONE]`)
  }
})

t.test('a POST /v1/chat generation that fails early shows the error to its reader', async (t) => {
  const stack = await startStack(t, env)
  const streamId = await stack.create({ status: 500 })
  const res = await stack.read(streamId, { until: untilClose })
  t.same(payloads(res.events), [{ type: 'error', code: 'upstream_unavailable', message: payloads(res.events)[0]?.message }])
  t.equal(closeReason(res.events), 'error')
})

t.test('an answer over the journal cap ends with an answer_too_large error event, then close', async (t) => {
  const mock = await startMockUpstream()
  t.teardown(async () => { await mock.close() })
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url }, store: new MemoryStore({ maxJournalBytes: 2000 }) })
  t.teardown(async () => { await relay.close() })
  const tokens = Array.from({ length: 200 }, (_, i) => `w${i} `)
  const res = await collectSse(`${relay.url}/v1/chat/stream`, {
    method: 'POST',
    body: { messages: [{ role: 'user', content: 'Hi' }], mock: { tokens, tokenDelayMs: 0, firstTokenDelayMs: 0, tag: 'too-large' } },
    until: untilClose
  })
  t.equal(res.status, 200)
  const text = textOf(res.events)
  t.ok(text.length > 0 && tokens.join('').startsWith(text) && text.length < tokens.join('').length, 'a prefix of the answer came first')
  const last = res.events.slice(-2)
  t.equal(last[0]?.event, 'error', 'then an error event')
  t.match(JSON.parse(last[0]?.data ?? '{}'), { type: 'error', code: 'answer_too_large' })
  t.equal(closeReason(res.events), 'error', 'then close')
  t.notOk(res.events.some((e) => e.data === '[DONE]'), 'never [DONE]')
  t.ok((await mock.waitFor('too-large', (r) => r.aborted, 3000)).aborted, 'the upstream was stopped')
})

t.test('retries before the first token recover from a 5xx', async (t) => {
  const stack = await startStack(t, { UPSTREAM_MAX_RETRIES: '2' })
  const res = await stack.stream({ tokens: ['ok'], firstTokenDelayMs: 0, tag: 'flaky', failTimes: 1, status: 503 }, { until: untilClose })
  t.equal(res.status, 200)
  t.equal(textOf(res.events), 'ok')
  t.equal(stack.mock.requests.filter((r) => r.tag === 'flaky').length, 2, 'one failure, one retry')
})

t.test('numbers no JSON can carry (1e400, -1, 2.5) in the upstream\'s chunks: skipped or zeroed, every event stays one line of JSON', async (t) => {
  const stack = await startStack(t)
  const chunk = (body: object): string => `data: ${JSON.stringify(body).replace('"BIG"', '1e400').replace('"NEG"', '-1e400')}\n\n`
  const raw = [
    chunk({ choices: [{ index: 0, delta: { content: 'a' } }] }),
    chunk({ choices: [{ index: 'BIG', delta: { content: 'lost' } }] }),
    chunk({ choices: [{ index: 2.5, delta: { content: 'lost' } }] }),
    chunk({ choices: [{ index: 0, delta: { tool_calls: [{ index: 'NEG', id: 'c1', function: { name: 'f', arguments: '{}' } }] } }] }),
    chunk({ choices: [{ index: 0, delta: { content: 'b' }, finish_reason: 'stop' }] }),
    chunk({ choices: [], usage: { prompt_tokens: -1, completion_tokens: 'BIG', total_tokens: 'BIG' } }),
    'data: [DONE]\n\n'
  ]
  const res = await stack.stream({ raw })
  t.equal(res.status, 200)
  const data = res.events.filter((e) => e.data !== '[DONE]' && e.event !== 'close').map((e) => e.data)
  for (const d of data) t.doesNotThrow(() => JSON.parse(d), `JSON: ${d}`)
  t.equal(textOf(res.events), 'ab', 'the garbage choices are skipped')
  t.notOk(payloads(res.events).some((p) => p.type === 'tool_call'), 'so is the tool call with no usable index')
  t.match(payloads(res.events).find((p) => p.type === 'usage'), { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 })
  t.equal(closeReason(res.events), 'done')

  // The OpenAI format reads the journal back: it must end, not hang on a chunk it cannot parse.
  const completions = await fetch(`${stack.relay.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true }, mock: { raw } }),
    signal: AbortSignal.timeout(5000)
  })
  t.ok((await completions.text()).endsWith('data: [DONE]\n\n'), 'the OpenAI-format stream ends with [DONE]')
})

t.test('stream: false: a failure after the first token keeps its status (a stall is 504, a reset 502)', async (t) => {
  const stack = await startStack(t, { ...env, UPSTREAM_IDLE_TIMEOUT_MS: '300' })
  const cases: Array<[string, Record<string, unknown>, number, string]> = [
    ['a stall mid-answer', { fault: 'stall', faultAfterTokens: 2 }, 504, 'upstream_idle_timeout'],
    ['a reset mid-answer', { fault: 'reset', faultAfterTokens: 2 }, 502, 'upstream_reset']
  ]
  for (const [name, script, status, code] of cases) {
    const res = await fetch(`${stack.relay.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], mock: { tokens: ['a', 'b', 'c', 'd'], tokenDelayMs: 5, firstTokenDelayMs: 0, ...script } }),
      signal: AbortSignal.timeout(5000)
    })
    t.equal(res.status, status, `${name}: ${status}`)
    t.match(await res.json(), { error: { code } }, `${name}: ${code}`)
  }
})
