// Unit checks of the mapping helpers: retry-after parsing, error bodies, backoff.
import t from 'tap'
import { cleanMessage, describeErrorObject, inBandError, messageOfBody, parseRetryAfter } from '../../lib/upstream/errors.js'
import { BACKOFF_BASE_MS, BACKOFF_MAX_MS, RETRY_AFTER_MAX_S, retryDelay } from '../../lib/upstream/retry.js'
import { UpstreamError } from '../../lib/upstream/index.js'

t.test('parseRetryAfter', async t => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  t.equal(parseRetryAfter({ 'retry-after': '7' }, now), 7)
  t.equal(parseRetryAfter({ 'retry-after': 'Thu, 01 Jan 2026 00:00:30 GMT' }, now), 30)
  t.equal(parseRetryAfter({ 'retry-after': 'Wed, 31 Dec 2025 23:00:00 GMT' }, now), 0, 'a past date: now')
  t.equal(parseRetryAfter({ 'retry-after-ms': '250' }, now), 1, 'ms round up to whole seconds')
  t.equal(parseRetryAfter({ 'retry-after-ms': '2000', 'retry-after': '9' }, now), 2, 'retry-after-ms wins (more precise)')
  t.equal(parseRetryAfter({ 'retry-after': 'soon' }, now), undefined)
  for (const odd of ['1.5', '-5', '+3', '1e3', '12 34']) t.equal(parseRetryAfter({ 'retry-after': odd }, now), undefined, `${odd}: not delta-seconds, not a date`)
  t.equal(parseRetryAfter({}, now), undefined)
})

t.test('parseRetryAfter passes on only sane figures: at most an hour', async t => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  t.equal(RETRY_AFTER_MAX_S, 3600)
  t.equal(parseRetryAfter({ 'retry-after': '3600' }, now), 3600, 'an hour is passed on')
  t.equal(parseRetryAfter({ 'retry-after': '3601' }, now), 3600, 'longer is clamped')
  t.equal(parseRetryAfter({ 'retry-after': '1' + '0'.repeat(26) }, now), 3600, 'a digit string past Number precision (1e+26)')
  t.equal(parseRetryAfter({ 'retry-after': '9'.repeat(400) }, now), 3600, 'a digit string that parses to Infinity')
  t.equal(parseRetryAfter({ 'retry-after': 'Thu, 01 Jan 2099 00:00:00 GMT' }, now), 3600, 'a date in 2099')
  t.equal(parseRetryAfter({ 'retry-after': 'Thu, 01 Jan 2026 02:00:00 GMT' }, now), 3600, 'a date two hours off')
  t.equal(parseRetryAfter({ 'retry-after-ms': '1' + '0'.repeat(30) }, now), 3600, 'retry-after-ms too')
  for (const odd of ['Infinity', '1e+26', '-Infinity', 'NaN']) t.equal(parseRetryAfter({ 'retry-after': odd }, now), undefined, `${odd}: unusable`)
})

t.test('an UpstreamError built by anyone carries a sane retryAfter', async t => {
  const make = (retryAfter: number): number | undefined => new UpstreamError('upstream_rate_limited', 'x', { status: 429, retryAfter }).retryAfter
  t.equal(make(7), 7)
  t.equal(make(1.2), 2, 'whole seconds, rounded up')
  t.equal(make(2_300_019_455), 3600, 'clamped')
  t.equal(make(Infinity), undefined)
  t.equal(make(Number.NaN), undefined)
  t.equal(make(-5), 0)
})

t.test('messageOfBody', async t => {
  t.equal(messageOfBody('{"error":{"message":"nope","type":"x"}}', 'application/json'), 'nope')
  t.equal(messageOfBody('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}', 'application/json'), 'Overloaded')
  t.equal(messageOfBody('{"object":"error","message":"flat","code":400}', 'application/json'), 'flat')
  t.equal(messageOfBody('{"detail":"FastAPI style"}', 'application/json'), 'FastAPI style')
  t.equal(messageOfBody('<html><head><title>504 Gateway Time-out</title></head></html>', 'text/html'), 'an HTML page: 504 Gateway Time-out')
  t.equal(messageOfBody('plain words', 'text/plain'), 'plain words')
  t.equal(messageOfBody('', ''), '')
})

t.test('describeErrorObject and inBandError', async t => {
  t.same(describeErrorObject({ error: 'a string' }), { message: 'a string', kinds: [], numeric: undefined })
  t.match(inBandError({ error: { code: 401, message: 'x' } }, undefined), { code: 'upstream_auth', status: 502 })
  t.match(inBandError({ error: { type: 'invalid_request_error', message: 'x' } }, undefined), { code: 'upstream_bad_request', status: 400, retryable: false })
  t.match(inBandError({ object: 'error', message: 'x', code: 422 }, undefined), { code: 'upstream_bad_request', status: 422 })
  t.match(inBandError({ error: { type: 'server_error' } }, undefined), { code: 'upstream_error', status: 502, retryable: true, message: /the upstream reported an error/ })
  t.match(inBandError('plain text', undefined), { code: 'upstream_error', message: 'upstream error: plain text' })
})

t.test('cleanMessage redacts the key and caps the length', async t => {
  t.equal(cleanMessage('key sk-abc123 leaked, sk-abc123 twice', 'sk-abc123'), 'key [redacted] leaked, [redacted] twice')
  t.equal(cleanMessage('x'.repeat(600), undefined).length, 501)
})

t.test('retryDelay: full jitter, capped, retry-after honoured', async t => {
  const error = new UpstreamError('upstream_unavailable', 'x', { status: 502, retryable: true })
  t.equal(retryDelay(0, error, () => 0.999), Math.floor(0.999 * BACKOFF_BASE_MS))
  t.equal(retryDelay(3, error, () => 0.5), Math.floor(0.5 * BACKOFF_BASE_MS * 8))
  t.equal(retryDelay(20, error, () => 0.999), Math.floor(0.999 * BACKOFF_MAX_MS), 'capped')
  t.equal(retryDelay(0, error, () => 0), 0)
  t.equal(retryDelay(0, new UpstreamError('upstream_rate_limited', 'x', { status: 429, retryAfter: 2 })), 2000)
  t.equal(retryDelay(0, new UpstreamError('upstream_rate_limited', 'x', { status: 429, retryAfter: 11 })), undefined)
})
