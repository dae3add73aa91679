/**
 * SSE framing (WHATWG HTML, "Server-sent events", §9.2.6 "Interpreting an event stream").
 *
 * Pure functions from events to wire text. Every frame ends with a blank line, so a frame is
 * complete on its own and frames can be concatenated, cached and written to many readers.
 */
import type { CloseReason, SseEvent } from './types.js'

/** The sentinel the OpenAI streaming protocol ends with: `data: [DONE]`. */
export const DONE_DATA = '[DONE]'

/** The heartbeat comment. A comment is not an event: spec parsers skip it. */
export const PING_FRAME = ': ping\n\n'

const LF = 10
const CR = 13
const NUL = 0

/** Index of the first CR or LF in `s`, or -1. A plain loop: faster than a regex on short strings. */
function firstLineBreak (s: string): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === LF || c === CR) return i
  }
  return -1
}

/**
 * `event` and `id` are single-line fields: a CR or LF would end the field early and let the rest
 * be read as new fields (the "SSE injection" several peers shipped). The spec makes parsers ignore
 * an `id` containing NUL, so it would be silently lost: refuse it too.
 */
function assertSingleLine (field: 'event' | 'id', value: string): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c === LF || c === CR || c === NUL) {
      throw new TypeError(`SSE field "${field}" must not contain CR, LF or NUL (found ${JSON.stringify(value[i])} at index ${i})`)
    }
  }
}

/**
 * Writes `value` as one `<prefix><line>\n` per line, splitting on CRLF, CR and LF exactly as a
 * spec parser splits lines. `firstBreak` is the index of the first CR or LF (known by the caller).
 */
function prefixLines (prefix: string, value: string, firstBreak: number): string {
  let out = ''
  let start = 0
  let i = firstBreak
  while (i < value.length) {
    const c = value.charCodeAt(i)
    if (c === LF || c === CR) {
      out += prefix + value.slice(start, i) + '\n'
      // CRLF is one line terminator, not two.
      if (c === CR && value.charCodeAt(i + 1) === LF) i++
      start = i + 1
    }
    i++
  }
  // A trailing terminator leaves an empty last line: it must still be written, or the parser
  // would lose the final newline of the data.
  return out + prefix + value.slice(start) + '\n'
}

function dataText (data: unknown): string {
  if (typeof data === 'string') return data
  const json = JSON.stringify(data)
  if (json === undefined) {
    throw new TypeError(`SSE data must be a string or a JSON-serializable value (got ${typeof data})`)
  }
  return json
}

function assertRetry (retry: unknown, what: string): asserts retry is number {
  if (typeof retry !== 'number' || !Number.isSafeInteger(retry) || retry < 0) {
    throw new TypeError(`${what} must be a non-negative integer (got ${String(retry)})`)
  }
}

/**
 * Serializes one event: `event:`, `id:`, `retry:`, then the `data:` lines and a blank line.
 *
 * - `data`: a string is sent as is; anything else is `JSON.stringify`-ed (so its text never holds
 *   a raw CR or LF and takes a single `data:` line). Text with CR, LF or CRLF is split into one
 *   `data:` line per line, which a spec parser joins back with LF: LF, empty lines and a trailing
 *   LF round-trip exactly, but a CR or CRLF comes back as LF. That is the protocol, not a choice:
 *   CR always ends a line and the parser joins lines with LF. Text that must keep its CRs
 *   byte-exactly is sent as JSON (a non-string `data`, e.g. `{ content }`), where CR is `\r`.
 * - `id: 0`, `retry: 0` and empty data are written, not dropped.
 *
 * @throws {TypeError} when `event` or `id` contains CR, LF or NUL, `retry` is not a non-negative
 *   integer, or `data` is not serializable. Nothing is returned then, so nothing can be written.
 */
export function formatEvent (ev: SseEvent): string {
  let head = ''
  if (ev.event !== undefined) {
    if (typeof ev.event !== 'string') throw new TypeError('SSE field "event" must be a string')
    assertSingleLine('event', ev.event)
    head += `event: ${ev.event}\n`
  }
  if (ev.id !== undefined) {
    let id: string
    if (typeof ev.id === 'number') {
      if (!Number.isFinite(ev.id)) throw new TypeError(`SSE field "id" must be a finite number (got ${ev.id})`)
      id = String(ev.id)
    } else if (typeof ev.id === 'string') {
      assertSingleLine('id', ev.id)
      id = ev.id
    } else {
      throw new TypeError('SSE field "id" must be a string or a number')
    }
    head += `id: ${id}\n`
  }
  if (ev.retry !== undefined) {
    assertRetry(ev.retry, 'SSE field "retry"')
    head += `retry: ${ev.retry}\n`
  }
  const text = dataText(ev.data)
  const firstBreak = firstLineBreak(text)
  // The common case (JSON, or a one-line token): one `data:` line, no splitting.
  // Always "data: " with the space: the parser strips exactly one leading space, so a line that
  // itself starts with a space keeps it.
  if (firstBreak === -1) return `${head}data: ${text}\n\n`
  return head + prefixLines('data: ', text, firstBreak) + '\n'
}

/**
 * The frame of one journaled event: `id:`, the optional `event:`, one `data:` line. For data
 * known to be one line (one-line JSON or `[DONE]`) and fields known to be safe (an integer id,
 * an event name the journal checked), so it skips {@link formatEvent}'s checks: it runs once per
 * token, and its text is shared by every reader of the event.
 */
export function formatEntry (id: number, data: string, event?: string): string {
  return event === undefined ? `id: ${id}\ndata: ${data}\n\n` : `event: ${event}\nid: ${id}\ndata: ${data}\n\n`
}

/** A frame of one-line `data` with no other field (the form of OpenAI's chunks and `[DONE]`). */
export function formatData (data: string): string {
  return `data: ${data}\n\n`
}

/**
 * A comment frame: each line of `text` becomes a `: line`, then a blank line. Readers ignore it;
 * proxies and load balancers see bytes, which keeps idle connections open.
 */
export function formatComment (text: string): string {
  const firstBreak = firstLineBreak(text)
  if (firstBreak === -1) return `: ${text}\n\n`
  return prefixLines(': ', text, firstBreak) + '\n'
}

/** A `retry: ms` frame: the reconnection delay a spec `EventSource` uses after a drop. */
export function formatRetry (ms: number): string {
  assertRetry(ms, 'retry')
  return `retry: ${ms}\n\n`
}

/**
 * The `close` event: `event: close` and `data: {"reason":…, ...extra}`.
 *
 * It always has a data line: a spec parser dispatches no event when the data buffer is empty, so a
 * bare `event: close` (a bug of several peers) would never reach `addEventListener('close')`.
 * `reason` comes first and cannot be overridden by `extra`.
 */
export function formatClose (reason: CloseReason, extra?: Record<string, unknown>): string {
  const payload = extra === undefined ? { reason } : Object.assign({ reason }, extra, { reason })
  return `event: close\ndata: ${JSON.stringify(payload)}\n\n`
}

/** The error payload of an `error` event (README "The wire format"). */
export interface SseErrorPayload {
  type: 'error'
  code: string
  message: string
}

/**
 * The `error` event: `event: error` and `data: {"type":"error","code":…,"message":…}`.
 * `code` defaults to `internal_error` when the error has no string code.
 */
export function formatError (err: { code?: unknown, message: string }): string {
  const payload: SseErrorPayload = {
    type: 'error',
    code: typeof err.code === 'string' && err.code !== '' ? err.code : 'internal_error',
    message: String(err.message)
  }
  return `event: error\ndata: ${JSON.stringify(payload)}\n\n`
}
