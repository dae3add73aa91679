// A text/event-stream parser, written to the WHATWG "event stream interpretation" algorithm
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
// The page reads streams with fetch() instead of EventSource (see stream.js for why), so it
// needs its own parser; this one is push-based and handles chunks split anywhere: mid-line,
// between the \r and \n of a CRLF, or (because the caller decodes with a streaming
// TextDecoder) inside a multi-byte character.

/**
 * @typedef {object} SseMessage
 * @property {string} event  the `event:` field, `message` when none
 * @property {string} data   the `data:` lines joined with \n
 * @property {string | undefined} id  the `id:` field of this event, if it had one
 */

export class SseParser {
  /**
   * @param {object} handlers
   * @param {(message: SseMessage) => void} handlers.onEvent
   * @param {(id: string) => void} [handlers.onId] a block's `id:` field, also when the block
   *   had no data: the spec moves the resume point even then
   * @param {(ms: number) => void} [handlers.onRetry]
   */
  constructor ({ onEvent, onId, onRetry }) {
    this.onEvent = onEvent
    this.onId = onId ?? (() => {})
    this.onRetry = onRetry ?? (() => {})
    this.buffer = ''
    this.data = ''
    this.hasData = false
    this.eventType = ''
    this.eventId = undefined
    this.firstChunk = true
    // A chunk that ended in \r: if the next one starts with \n, that \n belongs to the same
    // line break and must not end a second (empty) line, which would dispatch an event early.
    this.skipLeadingLf = false
  }

  /** @param {string} chunk text already decoded from UTF-8 */
  push (chunk) {
    if (this.firstChunk && chunk.length > 0) {
      this.firstChunk = false
      // The spec strips one leading U+FEFF from the stream.
      if (chunk.charCodeAt(0) === 0xFEFF) chunk = chunk.slice(1)
    }
    if (this.skipLeadingLf && chunk.length > 0) {
      this.skipLeadingLf = false
      if (chunk.charCodeAt(0) === 10) chunk = chunk.slice(1)
    }
    this.buffer += chunk
    let start = 0
    for (let i = 0; i < this.buffer.length; i++) {
      const code = this.buffer.charCodeAt(i)
      if (code !== 10 && code !== 13) continue
      this.line(this.buffer.slice(start, i))
      if (code === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++
        } else {
          this.skipLeadingLf = true
        }
      }
      start = i + 1
    }
    this.buffer = this.buffer.slice(start)
  }

  /** @param {string} line one line without its terminator */
  line (line) {
    if (line === '') {
      this.dispatch()
      return
    }
    if (line.charCodeAt(0) === 58) return // ':' starts a comment (the relay's `: ping`)
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.charCodeAt(0) === 32) value = value.slice(1)
    switch (field) {
      case 'data':
        this.data += value + '\n'
        this.hasData = true
        break
      case 'event':
        this.eventType = value
        break
      case 'id':
        if (!value.includes('\0')) this.eventId = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.onRetry(Number(value))
        break
      default:
        break // unknown fields are ignored, as the spec says
    }
  }

  dispatch () {
    const id = this.eventId
    const hadData = this.hasData
    const data = this.data.slice(0, -1) // drop the \n added after the last data line
    const event = this.eventType || 'message'
    this.data = ''
    this.hasData = false
    this.eventType = ''
    this.eventId = undefined
    if (id !== undefined) this.onId(id)
    if (!hadData) return
    this.onEvent({ event, data, id })
  }
}
