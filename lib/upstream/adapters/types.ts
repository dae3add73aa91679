import { badResponse, inBandError } from '../errors.js'
import type { UpstreamError, UpstreamEvent, UsageEvent } from '../types.js'

/** Where an adapter delivers what it reads. Implemented by the attempt that owns the request. */
export interface EventSink {
  /** A normalized event (reasoning, delta, tool call fragment, finish, usage). */
  emit (event: UpstreamEvent): void
  /**
   * The model's own output that is no event: a thinking block's signature, a redacted
   * (encrypted) thinking block. It shows the model is working, so it counts for the first-token
   * and idle timers as a token does; it is never shown, so nothing is delivered.
   */
  progress (): void
  /** An error reported by the upstream; the attempt stops reading. */
  fail (error: UpstreamError): void
  /** The provider's terminal signal was seen (`[DONE]`, `message_stop`, `response.completed`…). */
  end (): void
}

/**
 * Reads one provider's stream into normalized events. One instance per request attempt: it keeps
 * the per-answer state (choices seen and finished, tool-call indexes, usage).
 */
export interface Adapter {
  /** One parsed SSE event; `event` is the `event:` field, if any. */
  onEvent (event: string | undefined, data: string): void
  /** An SSE field line the parser does not know (llama.cpp sends `error: {…}`). */
  onUnknownField (field: string, value: string): void
  /**
   * The body ended. Completes the stream when the provider's end condition holds (then calls
   * `sink.end()` and returns `undefined`); otherwise returns what was missing, for the
   * truncation error.
   */
  onBodyEnd (): string | undefined
  /** A whole JSON answer from a server that ignored `stream: true`. */
  onWhole (json: unknown): void
}

/** How to send a request in one format. */
export interface RequestShape {
  /** Appended to the base URL's path, e.g. `/chat/completions`. */
  path: string
  headers: Record<string, string>
  body: Record<string, unknown>
}

/**
 * Builds a usage event from counts that may be missing; `details` is the record that holds
 * `reasoning_tokens` (`completion_tokens_details`, `output_tokens_details`), when there is one.
 */
export function usageEvent (prompt: unknown, completion: unknown, total?: unknown, details?: unknown): UsageEvent {
  const p = wholeNumber(prompt) ?? 0
  const c = wholeNumber(completion) ?? 0
  const usage: UsageEvent = { type: 'usage', prompt_tokens: p, completion_tokens: c, total_tokens: wholeNumber(total) ?? p + c }
  const reasoning = wholeNumber(asRecord(details)?.reasoning_tokens)
  if (reasoning !== undefined) usage.reasoning_tokens = reasoning
  return usage
}

/**
 * Reasoning that a provider sends in parts it keeps apart (the Responses API's summary parts,
 * Anthropic's thinking blocks) as one text: a part that follows another starts with a blank line
 * (`\n\n`), as they are paragraphs of their own. Remembers how much of each part was sent, so a
 * `.done` event that repeats the whole part adds only what its deltas did not carry.
 */
export class ReasoningParts {
  readonly #sent = new Map<string, number>()

  /** What to emit for `text` arriving in part `key`: a fragment, or with `whole`, the part so far. */
  next (key: string, text: string, whole: boolean): string {
    const sent = this.#sent.get(key)
    const fragment = whole ? text.slice(sent ?? 0) : text
    if (fragment === '') return ''
    const gap = sent === undefined && this.#sent.size > 0
    this.#sent.set(key, (sent ?? 0) + fragment.length)
    return gap ? `\n\n${fragment}` : fragment
  }
}

/**
 * A count or an index from the upstream: a whole number from 0 that JSON can carry, else
 * `undefined`. (`1e400` parses to Infinity, which the relay's hand-built event JSON would write
 * as `Infinity`: not JSON.)
 */
export function wholeNumber (value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined
}

/** `value` as a plain object, or `undefined`. */
export function asRecord (value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined
}

/**
 * Reads one event of an API whose events carry a `type` (Responses, Anthropic Messages): the JSON
 * record and its type (the payload's `type`, else the SSE `event:` name). A data line that is not
 * JSON fails the stream (as the upstream's own error when the event is `error`); a JSON value
 * that is not an object is skipped (`undefined`).
 */
export function typedRecord (event: string | undefined, data: string, sink: EventSink, apiKey: string | undefined): { record: Record<string, unknown>, type: string | undefined } | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    sink.fail(event === 'error' ? inBandError(data, apiKey) : badResponse(`upstream sent a data line that is not JSON: ${JSON.stringify(data.slice(0, 80))}`))
    return undefined
  }
  const record = asRecord(parsed)
  if (record === undefined) return undefined
  return { record, type: typeof record.type === 'string' ? record.type : event }
}
