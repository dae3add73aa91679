import { RETRY_AFTER_MAX_S, saneRetryAfter } from './retry.js'
import { UpstreamError } from './types.js'
import type { UpstreamErrorCode } from './types.js'

/** Longest upstream message passed on; provider errors can embed whole prompts. */
const MAX_MESSAGE = 500

/**
 * Removes the API key from a message (some providers echo it, e.g. "Incorrect API key provided:
 * sk-…") and caps its length. Every message that leaves this module goes through here.
 */
export function cleanMessage (message: string, apiKey: string | undefined): string {
  let text = message.trim()
  if (apiKey !== undefined && apiKey.length >= 4) text = text.split(apiKey).join('[redacted]')
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text
}

/**
 * Seconds from `retry-after` (delta-seconds or an HTTP date, RFC 9110 §10.2.3) or the
 * non-standard `retry-after-ms` that OpenAI and Azure send, clamped to
 * `RETRY_AFTER_MAX_S` (one hour: a digit string too long for a number, a date in 2099). `undefined`
 * when absent or unusable (`Infinity`, `1e+26`: not delta-seconds, not a date).
 */
export function parseRetryAfter (headers: Record<string, string | string[] | undefined>, now = Date.now()): number | undefined {
  const ms = first(headers['retry-after-ms'])
  // A digit string too long for a double is Infinity: still a (huge) delay, clamped like one.
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) return saneRetryAfter(Math.min(Number(ms) / 1000, RETRY_AFTER_MAX_S))
  const value = first(headers['retry-after'])?.trim()
  if (value === undefined || value === '') return undefined
  if (/^\d+$/.test(value)) return saneRetryAfter(Math.min(Number(value), RETRY_AFTER_MAX_S))
  // An HTTP date names its day and month; anything else (`1.5`, `-5`) is not one, though
  // Date.parse reads many such strings as some date in the past (which would mean "now").
  if (!/[A-Za-z]{3}/.test(value)) return undefined
  const date = Date.parse(value)
  if (Number.isNaN(date)) return undefined
  return saneRetryAfter((date - now) / 1000)
}

function first (value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

/** The human message of an error body: OpenAI/anthropic `{"error":{"message"}}`, vLLM's flat form, HTML `<title>`, or text. */
export function messageOfBody (text: string, contentType: string): string {
  const trimmed = text.trim()
  if (trimmed === '') return ''
  if (contentType.includes('html') || /^<(!doctype|html)/i.test(trimmed)) {
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(trimmed)?.[1] ?? /<h1[^>]*>([^<]*)<\/h1>/i.exec(trimmed)?.[1]
    return title === undefined ? 'an HTML page' : `an HTML page: ${title.trim()}`
  }
  try {
    const json: unknown = JSON.parse(trimmed)
    const message = describeErrorObject(json).message
    if (message !== '') return message
  } catch {}
  return trimmed
}

/** The parts of an in-band or body error object that decide its mapping. */
export interface ErrorParts {
  message: string
  /** `code` or `type` strings, lower-cased, e.g. `insufficient_quota`, `invalid_request_error`. */
  kinds: string[]
  /** A numeric HTTP-like code (vLLM `code: 400`, llama.cpp `code: 500`). */
  numeric: number | undefined
}

/** Reads `{"error":{…}}`, `{"error":"text"}`, vLLM's `{"object":"error",…}`, anthropic's `{"type":"error","error":{…}}`, Responses' `response.error`. */
export function describeErrorObject (value: unknown): ErrorParts {
  const parts: ErrorParts = { message: '', kinds: [], numeric: undefined }
  if (typeof value === 'string') {
    parts.message = value
    return parts
  }
  if (value === null || typeof value !== 'object') return parts
  const record = value as Record<string, unknown>
  const inner = record.error
  const source = (inner !== null && typeof inner === 'object') ? inner as Record<string, unknown> : record
  if (typeof inner === 'string') parts.message = inner
  else if (typeof source.message === 'string') parts.message = source.message
  else if (typeof source.detail === 'string') parts.message = source.detail
  for (const key of ['code', 'type'] as const) {
    const v = source[key]
    if (typeof v === 'string' && v !== 'error') parts.kinds.push(v.toLowerCase())
    if (typeof v === 'number') parts.numeric = v
  }
  return parts
}

const CLIENT_KINDS = /invalid_request|context_length|invalid_prompt|badrequest|bad_request|not_found|unsupported|invalid_value|model_not_found|validation/
const AUTH_KINDS = /authentication|invalid_api_key|permission|unauthorized|forbidden/
const RATE_KINDS = /rate_limit|too_many_requests/

/**
 * Maps an error reported inside a 200 stream (or a body of a JSON answer) to an
 * {@link UpstreamError}. Transient-looking errors are retryable before the first event; errors
 * that say the request itself is wrong are not, and keep a 4xx status so the client learns it.
 * `insufficient_quota` becomes a non-retryable 429, as OpenAI itself answers it over HTTP: the
 * quota is the relay operator's, retrying does not help, and clients already know that shape.
 */
export function inBandError (value: unknown, apiKey: string | undefined, fallback = 'the upstream reported an error'): UpstreamError {
  const parts = describeErrorObject(value)
  const message = `upstream error: ${cleanMessage(parts.message === '' ? fallback : parts.message, apiKey)}`
  const kinds = parts.kinds.join(' ')
  const numeric = parts.numeric
  if (kinds.includes('insufficient_quota')) {
    return new UpstreamError('upstream_rate_limited', message, { status: 429, retryable: false })
  }
  if (RATE_KINDS.test(kinds) || numeric === 429) {
    return new UpstreamError('upstream_rate_limited', message, { status: 429, retryable: true })
  }
  if (AUTH_KINDS.test(kinds) || numeric === 401 || numeric === 403) {
    return new UpstreamError('upstream_auth', message, { status: 502 })
  }
  if (CLIENT_KINDS.test(kinds) || (numeric !== undefined && numeric >= 400 && numeric < 500)) {
    const status = numeric !== undefined && numeric >= 400 && numeric < 500 ? numeric : 400
    return new UpstreamError('upstream_bad_request', message, { status })
  }
  return new UpstreamError('upstream_error', message, { status: 502, retryable: true })
}

/** Maps a non-2xx answer to the statuses of README "The wire format" (401/403 → 502, 429 → 429, other 4xx as is, 5xx → 502). */
export function httpError (status: number, headers: Record<string, string | string[] | undefined>, body: string, apiKey: string | undefined): UpstreamError {
  const contentType = first(headers['content-type']) ?? ''
  const detail = cleanMessage(messageOfBody(body, contentType), apiKey)
  const message = `upstream answered ${status}${detail === '' ? '' : `: ${detail}`}`
  const retryAfter = parseRetryAfter(headers)
  if (status === 401 || status === 403) return new UpstreamError('upstream_auth', message, { status: 502 })
  if (status === 429) return new UpstreamError('upstream_rate_limited', message, { status: 429, retryAfter, retryable: true })
  if (status >= 400 && status < 500) return new UpstreamError('upstream_bad_request', message, { status })
  return new UpstreamError('upstream_unavailable', message, { status: 502, retryAfter, retryable: true })
}

/** A successful status with a body that is neither SSE nor JSON (a proxy's HTML page, garbage). */
export function badResponse (message: string, retryable = true): UpstreamError {
  return new UpstreamError('upstream_bad_response', message, { status: 502, retryable })
}

/** undici error codes (`err.code`) that mean "could not reach the upstream". */
const CONNECT_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL',
  'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED'
])

/**
 * Maps a transport error by undici's `err.code`. Before the response headers it is a connect
 * failure (retryable); after them the connection broke mid-body (`upstream_reset`).
 */
export function transportError (err: unknown, afterHeaders: boolean): UpstreamError {
  if (err instanceof UpstreamError) return err
  const code = (err as { code?: unknown } | null)?.code
  const text = typeof code === 'string' ? code : (err as Error | null)?.message ?? String(err)
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new UpstreamError('upstream_connect_timeout', 'upstream connect timed out', { status: 504, retryable: true, cause: err })
  }
  if (afterHeaders) {
    return new UpstreamError('upstream_reset', `upstream connection broke mid-answer (${text})`, { status: 502, retryable: true, cause: err })
  }
  const known = typeof code === 'string' && CONNECT_CODES.has(code)
  return new UpstreamError('upstream_connect', `cannot reach the upstream (${known ? code : text})`, { status: 502, retryable: true, cause: err })
}

/**
 * A timer fired. Timeouts map to 504 and are not retried (the budget is already spent), except
 * the wait for response headers: like a connect timeout, it says nothing about the request, and a
 * new connection may reach a working upstream.
 */
export function timeoutError (code: Extract<UpstreamErrorCode, `${string}_timeout`>, ms: number): UpstreamError {
  const what = {
    upstream_connect_timeout: 'connecting to the upstream',
    upstream_headers_timeout: 'waiting for the response headers',
    upstream_first_token_timeout: 'waiting for the first token',
    upstream_idle_timeout: 'waiting for the next token',
    upstream_total_timeout: 'the whole upstream request'
  }[code]
  return new UpstreamError(code, `upstream timed out after ${ms} ms ${what}`, { status: 504, retryable: code === 'upstream_headers_timeout' })
}

/** The body ended before a terminal signal. */
export function truncatedError (detail: string): UpstreamError {
  return new UpstreamError('upstream_truncated', `upstream answer ended early: ${detail}`, { status: 502, retryable: true })
}
