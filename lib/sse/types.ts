/** Public types of the SSE writer. */

/** One server-sent event. */
export interface SseEvent {
  /**
   * A string is sent as is (split into `data:` lines); anything else is `JSON.stringify`-ed.
   * A spec parser rebuilds string data with LF between lines, so CR and CRLF inside a string come
   * back as LF (SSE cannot carry a raw CR); JSON data round-trips exactly, CRs included.
   */
  data: unknown
  /** The `event:` field. CR, LF or NUL → TypeError, nothing written. */
  event?: string | undefined
  /** The `id:` field (numbers are sent as decimal, `0` included). CR, LF or NUL → TypeError. */
  id?: string | number | undefined
  /** The `retry:` field in ms; a non-negative integer (`0` included). */
  retry?: number | undefined
}

/**
 * How a relayed answer's stream ends: the reason its `close` event carries (README, "The wire
 * format"). One list for the journal, the generations and the writer.
 */
export type StreamEndReason =
  | 'done'
  | 'error'
  | 'cancelled'
  | 'abandoned'
  | 'superseded'
  | 'timeout'
  | 'shutdown'

/**
 * Why a stream ended: a {@link StreamEndReason}, or `client` (the reader went away) or
 * `slow_consumer` (the reader fell a whole byte budget behind). Applications may pass their own
 * string to `close()`.
 */
export type CloseReason =
  | StreamEndReason
  | 'client'
  | 'slow_consumer'
  | (string & {})

/** Options of `reply.sse()`. */
export interface SseOptions {
  /** Written first as `retry: N`; `undefined` writes none. @default 3000 */
  retry?: number | undefined
  /** `: ping` comment interval, only between events; 0 = none. @default 15000 */
  heartbeatMs?: number
  /**
   * Max bytes buffered for a reader that does not read: a write that finds more than this still
   * buffered closes the stream with `slow_consumer` instead. @default 1048576
   */
  maxBufferedBytes?: number
  /** Max duration; 0 = none. Past it: close `timeout`. @default 0 */
  timeoutMs?: number
  /**
   * Send the headers at once (the default), so a client or proxy waiting for them is not held.
   * `false` keeps them until the first write: the relay uses it to commit late.
   * @default true
   */
  flushHeaders?: boolean
  /**
   * On HTTP/1.1, write each frame straight to the socket as one ready chunk (lib/sse/direct-write.ts)
   * instead of through `res.write()`: the same bytes, one write instead of four. `false` turns it
   * off, should a Node release disagree with it. @default true
   */
  fastPath?: boolean
}
