import { saneRetryAfter } from './retry.js'

/**
 * The normalized event stream every provider adapter produces. The relay only ever sees these,
 * whatever `UPSTREAM_FORMAT` is.
 */

/** A piece of answer text for one choice. */
export interface DeltaEvent {
  type: 'delta'
  /** Choice index (`n > 1`); `0` for single-choice answers. */
  choice: number
  /** The text exactly as the upstream sent it (may contain `\n`, `\r`, `[DONE]`, any Unicode). */
  content: string
}

/**
 * A piece of the model's reasoning (its thinking) for one choice, before the answer's deltas.
 * Concatenating them gives the upstream's reasoning text: Chat Completions'
 * `reasoning_content` / `reasoning`, the Responses API's reasoning summary (or reasoning text),
 * Anthropic's thinking. Parts the provider keeps apart (summary parts, thinking blocks) are joined
 * with a blank line (`\n\n`). Signatures and redacted (encrypted) thinking are never events.
 */
export interface ReasoningEvent {
  type: 'reasoning'
  /** Choice index, as for deltas. */
  choice: number
  /** The text exactly as the upstream sent it. */
  content: string
}

/**
 * A fragment of a tool call. `id` and `name` may come only on the first fragment of a call;
 * `arguments` fragments are concatenated in order, per `(choice, index)`.
 */
export interface ToolCallEvent {
  type: 'tool_call'
  choice: number
  /** Tool-call index within the choice (OpenAI's `tool_calls[].index`). */
  index: number
  id?: string
  name?: string
  /** A fragment of the JSON arguments string (may be empty). */
  arguments: string
}

/** A choice has finished. */
export interface FinishEvent {
  type: 'finish'
  choice: number
  /** Provider's reason, normalized to OpenAI's vocabulary where one exists (`stop`, `length`, `tool_calls`, `content_filter`). */
  reason: string
}

/** Token usage for the whole request. */
export interface UsageEvent {
  type: 'usage'
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  /**
   * Of `completion_tokens`, those spent reasoning, when the upstream reports them (Chat
   * Completions `completion_tokens_details.reasoning_tokens`, Responses
   * `output_tokens_details.reasoning_tokens`; Anthropic counts thinking in its output tokens
   * without a separate figure).
   */
  reasoning_tokens?: number
}

/** One event of the normalized upstream stream. */
export type UpstreamEvent = ReasoningEvent | DeltaEvent | ToolCallEvent | FinishEvent | UsageEvent

/**
 * Stable error codes for everything that can go wrong upstream. Callers switch on `code`,
 * never on the message.
 */
export type UpstreamErrorCode =
  /** The upstream refused the relay's key (401/403). Mapped to 502: the client is not at fault. */
  | 'upstream_auth'
  /** Another 4xx from the upstream; the status and the upstream's message are passed on. */
  | 'upstream_bad_request'
  /** 429 from the upstream; `retryAfter` is set when the upstream said. */
  | 'upstream_rate_limited'
  /** 5xx from the upstream. */
  | 'upstream_unavailable'
  /** A non-SSE, non-JSON answer (an HTML error page from a proxy, garbage). */
  | 'upstream_bad_response'
  /** TCP/TLS connection failed (refused, DNS, reset before headers). */
  | 'upstream_connect'
  /** `UPSTREAM_CONNECT_TIMEOUT_MS` passed. */
  | 'upstream_connect_timeout'
  /** `UPSTREAM_HEADERS_TIMEOUT_MS` passed: connected (or connecting), but no response headers. Retried like a connect timeout. */
  | 'upstream_headers_timeout'
  /** `UPSTREAM_FIRST_TOKEN_TIMEOUT_MS` passed before the first token (content or reasoning). */
  | 'upstream_first_token_timeout'
  /** `UPSTREAM_IDLE_TIMEOUT_MS` passed between two tokens (content or reasoning). */
  | 'upstream_idle_timeout'
  /** The total duration limit passed. */
  | 'upstream_total_timeout'
  /** An error reported inside a 200 stream (`data: {"error":…}`, `event: error`, …). */
  | 'upstream_error'
  /** The body ended without a terminal signal (`[DONE]`, finish on every choice, provider end event). */
  | 'upstream_truncated'
  /** The connection was reset or closed mid-body. */
  | 'upstream_reset'

/** An upstream failure with a stable code and the HTTP status a client should see. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError'
  /** Stable, switchable code. */
  readonly code: UpstreamErrorCode
  /** The HTTP status the relay answers with when nothing has been sent yet. */
  readonly status: number
  /**
   * Seconds to wait before retrying, when known (429, some 503): whole seconds from 0 to an
   * hour (`RETRY_AFTER_MAX_S`; a larger figure given to the constructor is clamped to it).
   */
  readonly retryAfter: number | undefined
  /** Whether a retry before the first event may succeed. */
  readonly retryable: boolean

  constructor (code: UpstreamErrorCode, message: string, options: {
    status: number
    retryAfter?: number | undefined
    retryable?: boolean
    cause?: unknown
  }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.status = options.status
    // Whoever built the error, what reaches a client's `retry-after` header is a sane figure.
    this.retryAfter = saneRetryAfter(options.retryAfter)
    this.retryable = options.retryable ?? false
  }
}

/**
 * What the client tells about one request while it runs, for the relay's log line and metrics:
 * pass an object as `report` and read it once the request settled.
 */
export interface UpstreamReport {
  /** Attempts made (1 + retries). */
  attempts: number
  /** HTTP status of the last attempt's response; `undefined` when none came (connect failure, DNS). */
  status: number | undefined
  /** The model the request named upstream (the body's, or the client's default). */
  model: string | undefined
}

/** Options of one streamed request. */
export interface StreamOptions {
  signal: AbortSignal
  /** Filled in as the request runs (attempts, status, model). */
  report?: UpstreamReport | undefined
}

/** Wire formats the client can read. */
export type UpstreamFormat = 'openai' | 'openai-responses' | 'anthropic'

/** Options of {@link UpstreamClient}; each maps to a `UPSTREAM_*` environment variable. */
export interface UpstreamClientOptions {
  /** Base URL of the API, e.g. `https://api.openai.com/v1`. */
  url: string
  /** Sent as `Authorization: Bearer …` (or `x-api-key` for anthropic). Never logged. */
  apiKey?: string | undefined
  /** Model used when a request names none. @default 'gpt-4o-mini' */
  model?: string
  /** @default 'openai' */
  format?: UpstreamFormat
  /** TCP + TLS connect. undici times it on coarse timers (about 0.5 s resolution). @default 10000 */
  connectTimeoutMs?: number
  /**
   * Request sent → response headers; 0 = none. Streaming APIs send their headers as soon as
   * they accept a request, before the model writes (or thinks) anything, so an upstream that
   * accepts the connection and stays silent is told apart from a slow model, and reported
   * (and retried) well before the first-token timeout. @default 30000
   */
  headersTimeoutMs?: number
  /**
   * Request sent → first token. Reasoning counts as a token (a model that is thinking is not
   * stalled), and so do a thinking block's signature and a redacted thinking block (the model's
   * own output, though never shown); keep-alive comments, pings and role-only chunks do not.
   * @default 60000
   */
  firstTokenTimeoutMs?: number
  /** Longest gap between two tokens, counted as for {@link firstTokenTimeoutMs}. @default 30000 */
  idleTimeoutMs?: number
  /** Whole request; 0 = none. @default 0 */
  totalTimeoutMs?: number
  /** Retries before the first event (content or reasoning) is delivered. @default 2 */
  maxRetries?: number
  /** Most connections to the upstream origin: one per concurrent streamed answer. @default 10000 */
  connections?: number
  /** Largest upstream event (eventsource-parser's buffer, in characters), and largest non-streamed JSON answer (in bytes). @default 1048576 */
  maxEventSize?: number
}

/** The request body the relay sends: OpenAI Chat Completions parameters (`messages`, `model`, …). */
export type ChatRequestBody = Record<string, unknown>

/** The model a request names (its `model`), or `fallback` (the configured default) when it names none. */
export function modelOf (body: ChatRequestBody, fallback: string): string {
  return typeof body.model === 'string' ? body.model : fallback
}
