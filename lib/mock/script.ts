/** Wire formats the mock speaks, chosen by the path (`/chat/completions`, `/responses`, `/messages`). */
export type MockFormat = 'openai' | 'openai-responses' | 'anthropic'

/**
 * Failures the mock can inject. Stream faults happen after `faultAfterTokens` tokens (reasoning
 * tokens, then answer tokens).
 * - `status`: a non-2xx answer (`status`, default 500) with an OpenAI-style JSON error body
 *   (`retryAfter` / `retryAfterMs` become headers)
 * - `html`: a proxy's HTML error page (`status`, default 502)
 * - `error-data`: `data: {"error":{…}}` inside the 200 stream (OpenAI, llama.cpp)
 * - `error-event`: `event: error` with a JSON message
 * - `llamacpp-error`: llama.cpp's `error: {…}` SSE field
 * - `vllm-error`: vLLM's flat `data: {"object":"error",…}`
 * - `responses-error`, `responses-failed`: Responses API `error` event / `response.failed`
 * - `anthropic-error`: Messages API `event: error` (`overloaded_error` unless `errorType`)
 * - `truncate`: the body ends cleanly with no finish and no terminal event
 * - `reset`: the socket is destroyed mid-body
 * - `stall`: nothing more is sent (pings go on when `pingEveryMs` is set) until the client leaves
 * - `json`: a whole non-stream JSON completion, as from a server that ignored `stream: true`
 */
export type MockFault =
  | 'status' | 'html' | 'error-data' | 'error-event' | 'llamacpp-error' | 'vllm-error'
  | 'responses-error' | 'responses-failed' | 'anthropic-error' | 'truncate' | 'reset' | 'stall' | 'json'

/**
 * Harmless wire quirks real servers have, applied to a normal answer.
 * `crlf`/`cr`: line ends; `bom`: a UTF-8 BOM first; `no-space`: `data:x`; `event-message`:
 * `event: message` before each event; `split-json`: one JSON object over several `data:` lines;
 * `done-no-blank`: the body ends in `data: [DONE]` with no line end; `no-done`: finish reasons
 * but no `[DONE]`; `comments`: `: keep-alive` comments between events.
 */
export type MockQuirk = 'crlf' | 'cr' | 'bom' | 'no-space' | 'event-message' | 'split-json' | 'done-no-blank' | 'no-done' | 'comments'

/** A tool call the mock answers with; `arguments` objects are JSON-encoded. */
export interface MockToolCall {
  name: string
  arguments: string | Record<string, unknown>
  id?: string
}

/** Benchmark mode: pre-rendered OpenAI chunks, one token per chunk. */
export interface MockFast {
  /** @default 1000 */
  tokens?: number
  /** 0 = as fast as the socket takes them. @default 0 */
  tokensPerSecond?: number
  /** Each token is the send time (`performance.timeOrigin + performance.now()`, ms, 3 decimals) plus a space. */
  timestamps?: boolean
}

/**
 * How the mock answers one request: the server defaults with the request body's `mock` object
 * merged over them. The relay forwards unknown parameters, so tests drive the mock through it.
 */
export interface MockScript {
  /** The answer; default: a few friendly sentences echoing the user's last message. */
  text?: string
  /** The answer as exact tokens (wins over `text`). */
  tokens?: string[]
  /** Pause between tokens. @default 40 */
  tokenDelayMs?: number
  /**
   * Pause before the first token (of reasoning, when there is any); default: random 200–600 ms.
   * A model that thinks without showing it (o1-style: nothing for a long time, then the answer)
   * is a long `firstTokenDelayMs`, with `pingEveryMs` for the keep-alive comments servers send.
   */
  firstTokenDelayMs?: number
  /**
   * Reasoning (thinking) sent before the answer, tokenized like `text`: `reasoning_content` or
   * `reasoning` deltas (openai, see `reasoningField`), a reasoning summary (openai-responses), a
   * thinking block ending in a `signature_delta` (anthropic). Counted in the usage's completion
   * tokens and reported as reasoning tokens where the format has the field.
   */
  reasoning?: string
  /** The reasoning as exact tokens (wins over `reasoning`). */
  reasoningTokens?: string[]
  /** Pause between the last reasoning token and the first answer token; default: `tokenDelayMs` (± `jitterMs`). */
  thinkingMs?: number
  /** openai: the delta field that carries reasoning: DeepSeek's, vLLM's and SGLang's, or OpenRouter's and Ollama's. @default 'reasoning_content' */
  reasoningField?: 'reasoning_content' | 'reasoning'
  /** anthropic: a `redacted_thinking` block follows the thinking block. @default false */
  redactedThinking?: boolean
  /** ± random spread on each pause. @default 25 */
  jitterMs?: number
  /** Delay before the response headers are sent. @default 0 */
  headersDelayMs?: number
  toolCalls?: MockToolCall[]
  /** Choices (OpenAI `n`); every choice gets the same tokens. @default the request's `n` or 1 */
  n?: number
  /** Send a usage chunk; default: what the request asked (`stream_options.include_usage`; always for other formats). */
  usage?: boolean
  /** @default 'stop', or 'tool_calls' with toolCalls */
  finishReason?: string
  fault?: MockFault
  /** Tokens (reasoning, then answer) sent before a stream fault. @default 0 */
  faultAfterTokens?: number
  /** HTTP status for `status`/`html` faults. A `status` with no `fault` means the `status` fault. */
  status?: number
  /** `retry-after` header value (seconds or an HTTP date) on a `status` fault. */
  retryAfter?: number | string
  /** `retry-after-ms` header value on a `status` fault. */
  retryAfterMs?: number
  /** Error message / type for faults. */
  errorMessage?: string
  errorType?: string
  quirks?: MockQuirk[]
  /** `: ping` comment interval while the response is open; 0 = none. @default 0 */
  pingEveryMs?: number
  /**
   * Exact body chunks, sent as is (with `rawDelayMs` between them) as `text/event-stream`; the
   * body then ends, unless `fault` is `stall`. `tokensSent` counts chunks.
   */
  raw?: string[]
  /** The same as exact bytes, base64-encoded per write: for splits inside a UTF-8 sequence. */
  rawBase64?: string[]
  /**
   * Pause between raw writes. With 0 the mock still yields to the event loop between writes,
   * so on loopback each write reaches the client as its own read. @default 0
   */
  rawDelayMs?: number
  /** Groups requests for `requests`, `waitFor` and `failTimes`. */
  tag?: string
  /** Apply `fault` (default `status` 500) to the first N requests with this `tag`, then answer normally. */
  failTimes?: number
  fast?: MockFast
}

/** The defaults of a lifelike stream: tens of tokens per second, a variable first-token delay. */
export const LIFELIKE: MockScript = { tokenDelayMs: 40, jitterMs: 25 }

/** Pause before a step, with jitter, never negative. */
export function pause (base: number, jitter: number): number {
  if (jitter <= 0) return base
  return Math.max(0, Math.round(base + (Math.random() * 2 - 1) * jitter))
}
