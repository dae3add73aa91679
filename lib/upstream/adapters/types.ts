import { badResponse, inBandError } from '../errors.js'
import type { UpstreamError, UpstreamEvent, UsageEvent } from '../types.js'

/** Where an adapter delivers what it reads. Implemented by the attempt that owns the request. */
export interface EventSink {
  /** A normalized event (delta, tool call fragment, finish, usage). */
  emit (event: UpstreamEvent): void
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

/** Builds a usage event from counts that may be missing. */
export function usageEvent (prompt: unknown, completion: unknown, total?: unknown): UsageEvent {
  const p = wholeNumber(prompt) ?? 0
  const c = wholeNumber(completion) ?? 0
  return { type: 'usage', prompt_tokens: p, completion_tokens: c, total_tokens: wholeNumber(total) ?? p + c }
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
