// Non-2xx answers map to the statuses README "The wire format" names, with the body read (the socket is reused or
// closed, never leaked) and the API key never in a message.
import t from 'tap'
import { UpstreamError } from '../../lib/upstream/index.js'
import type { MockScript } from '../../lib/mock/index.js'
import { ask, assertNoOpenSockets, harness } from '../fixtures/mock.js'

interface Case {
  name: string
  mock: MockScript
  expect: { code: string, status: number, retryAfter?: number | undefined, retryable: boolean, message?: RegExp }
}

const future = new Date(Date.now() + 30_000).toUTCString()

const cases: Case[] = [
  { name: '401', mock: { status: 401, errorMessage: 'Incorrect API key provided: sk-test-secret-key.' }, expect: { code: 'upstream_auth', status: 502, retryable: false, message: /^upstream answered 401: Incorrect API key provided: \[redacted\]\.$/ } },
  { name: '403', mock: { status: 403 }, expect: { code: 'upstream_auth', status: 502, retryable: false } },
  { name: '404 passes the upstream message on', mock: { status: 404, errorMessage: 'The model `nope` does not exist' }, expect: { code: 'upstream_bad_request', status: 404, retryable: false, message: /The model `nope` does not exist/ } },
  { name: '400', mock: { status: 400, errorMessage: 'messages is required' }, expect: { code: 'upstream_bad_request', status: 400, retryable: false, message: /messages is required/ } },
  { name: '429 with retry-after seconds', mock: { status: 429, retryAfter: 42 }, expect: { code: 'upstream_rate_limited', status: 429, retryAfter: 42, retryable: true } },
  { name: '429 with retry-after as an HTTP date', mock: { status: 429, retryAfter: future }, expect: { code: 'upstream_rate_limited', status: 429, retryable: true } },
  { name: '429 with retry-after-ms', mock: { status: 429, retryAfterMs: 1500 }, expect: { code: 'upstream_rate_limited', status: 429, retryAfter: 2, retryable: true } },
  { name: '429 without retry-after', mock: { status: 429 }, expect: { code: 'upstream_rate_limited', status: 429, retryAfter: undefined, retryable: true } },
  { name: '500', mock: { status: 500 }, expect: { code: 'upstream_unavailable', status: 502, retryable: true } },
  { name: '503 with retry-after', mock: { status: 503, retryAfter: 3 }, expect: { code: 'upstream_unavailable', status: 502, retryAfter: 3, retryable: true } },
  { name: 'an HTML 502 page from a proxy', mock: { fault: 'html', status: 502 }, expect: { code: 'upstream_unavailable', status: 502, retryable: true, message: /HTML page: 502 Bad Gateway/ } },
  { name: 'an HTML page with status 200', mock: { fault: 'html', status: 200 }, expect: { code: 'upstream_bad_response', status: 502, retryable: true, message: /HTML page/ } }
]

for (const { name, mock: script, expect } of cases) {
  t.test(name, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ maxRetries: 0 })
    const { events, error } = await ask(upstream, script)
    t.same(events, [])
    t.type(error, UpstreamError)
    t.match(error, expect)
    if (name.includes('HTTP date')) t.ok((error as UpstreamError).retryAfter! >= 28 && (error as UpstreamError).retryAfter! <= 30, 'date → seconds from now')
    t.notMatch((error as Error).message, /sk-test-secret-key/, 'no API key in the message')
    t.equal(mock.requests.length, 1, 'not retried with maxRetries 0')
    await assertNoOpenSockets(t, upstream, mock)
  })
}

t.test('anthropic-shaped error body', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ format: 'anthropic', maxRetries: 0 })
  const { error } = await ask(upstream, { status: 400, errorType: 'invalid_request_error', errorMessage: 'max_tokens: too large' })
  t.match(error, { code: 'upstream_bad_request', status: 400, message: /max_tokens: too large/ })
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('connection refused → upstream_connect 502', async t => {
  const { mock } = await harness(t)
  const { UpstreamClient } = await import('../../lib/upstream/index.js')
  const port = mock.port
  await mock.close()
  const upstream = new UpstreamClient({ url: `http://127.0.0.1:${port}/v1`, maxRetries: 0 })
  const { error } = await ask(upstream, {})
  t.match(error, { code: 'upstream_connect', status: 502, retryable: true, message: /ECONNREFUSED/ })
  await upstream.close()
})
