/**
 * One load-generator "slot": a raw TCP connection that POSTs a streaming chat request, decodes
 * the HTTP/1.1 response (chunked or content-length) and the SSE frames in it, and records for
 * every token the latency from the mock's embedded send timestamp. When a response ends, the
 * next request goes out on the same socket (keep-alive), as a chat client's next question
 * would; a closed socket is reopened.
 *
 * Bytes are decoded as latin1: one char per byte, so chunk sizes are char counts, and every
 * field this parser reads (ids, digits, `[DONE]`) is ASCII.
 */
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { Histogram } from './histogram.js'

/** What every slot of a worker shares. */
export interface SlotContext {
  host: string
  port: number
  /** The full request bytes (request line, headers, body). */
  request: Buffer
  /** Tokens each answer must carry. */
  expectTokens: number
  /**
   * A channel subscriber (GET): the stream never ends by itself, and it joins live, so its first
   * id may be any; ids after it must still be consecutive.
   */
  subscriber: boolean
  /** Epoch ms: only tokens arriving inside [start, end) are counted. */
  windowStart: number
  windowEnd: number
  /** Tokens per `bucketMs` slice of the window, by arrival time (for per-slice CPU/token). */
  buckets: number[]
  bucketMs: number
  latency: Histogram
  /** The same latencies per slice of the window (a steady slice and one where answers restart differ). */
  sliceLatency: Histogram[]
  ttft: Histogram
  stats: SlotStats
  /** Stop opening new requests. */
  stopping: boolean
}

export interface SlotStats {
  tokens: number
  tokensInWindow: number
  streamsStarted: number
  streamsCompleted: number
  /** Answers with fewer or more tokens than expected. */
  shortStreams: number
  longStreams: number
  idGaps: number
  idDuplicates: number
  httpErrors: number
  socketErrors: number
  statuses: Record<string, number>
}

export function emptyStats (): SlotStats {
  return { tokens: 0, tokensInWindow: 0, streamsStarted: 0, streamsCompleted: 0, shortStreams: 0, longStreams: 0, idGaps: 0, idDuplicates: 0, httpErrors: 0, socketErrors: 0, statuses: {} }
}

// A mock token: `"<epoch ms with 3 decimals> ` inside a JSON string (13 digits before the dot until 2286).
const STAMP = /"(\d{13}\.\d{3}) /g
const now = (): number => performance.timeOrigin + performance.now()

const HEAD = 0
const CHUNK_SIZE = 1
const CHUNK_DATA = 2
const CHUNK_CRLF = 3
const FIXED = 4
const LAST_CRLF = 5

export class Slot {
  readonly #ctx: SlotContext
  #socket: Socket | undefined
  #state = HEAD
  #raw = ''
  #chunkLeft = 0
  #sse = ''
  #lastId = 0
  #tokens = 0
  #sentAt = 0
  #firstToken = true
  #responseOpen = false
  #retryTimer: NodeJS.Timeout | undefined

  constructor (ctx: SlotContext) {
    this.#ctx = ctx
  }

  start (): void {
    if (this.#ctx.stopping) return
    if (this.#socket === undefined || this.#socket.destroyed) this.#connect()
    else this.#send()
  }

  stop (): void {
    clearTimeout(this.#retryTimer)
    this.#socket?.destroy()
    this.#socket = undefined
  }

  #connect (): void {
    const socket = connect({ host: this.#ctx.host, port: this.#ctx.port, noDelay: true })
    this.#socket = socket
    socket.on('connect', () => this.#send())
    socket.on('data', (data: Buffer) => this.#onData(data))
    socket.on('error', () => { this.#ctx.stats.socketErrors++ })
    socket.on('close', () => {
      if (this.#socket !== socket) return
      this.#socket = undefined
      if (this.#responseOpen) this.#endResponse(false)
      // Reconnect after a pause: a refusing server must not be hammered in a tight loop.
      if (!this.#ctx.stopping) this.#retryTimer = setTimeout(() => this.start(), 100)
    })
  }

  #send (): void {
    this.#state = HEAD
    this.#raw = ''
    this.#sse = ''
    this.#lastId = 0
    this.#tokens = 0
    this.#firstToken = true
    this.#responseOpen = true
    this.#ctx.stats.streamsStarted++
    this.#sentAt = now()
    this.#socket?.write(this.#ctx.request)
  }

  #onData (data: Buffer): void {
    const at = now()
    this.#raw += data.toString('latin1')
    for (;;) {
      if (this.#state === HEAD) {
        const end = this.#raw.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = this.#raw.slice(0, end)
        this.#raw = this.#raw.slice(end + 4)
        const status = head.slice(9, 12)
        const stats = this.#ctx.stats
        stats.statuses[status] = (stats.statuses[status] ?? 0) + 1
        if (status !== '200') stats.httpErrors++
        const lower = head.toLowerCase()
        const length = /\r\ncontent-length: *(\d+)/.exec(lower)
        if (/\r\ntransfer-encoding: *chunked/.test(lower)) this.#state = CHUNK_SIZE
        else if (length !== null) {
          this.#state = FIXED
          this.#chunkLeft = Number(length[1])
        } else {
          // Delimited by close: read until the socket ends.
          this.#state = FIXED
          this.#chunkLeft = Infinity
        }
      } else if (this.#state === CHUNK_SIZE) {
        const eol = this.#raw.indexOf('\r\n')
        if (eol === -1) return
        this.#chunkLeft = parseInt(this.#raw.slice(0, eol), 16)
        this.#raw = this.#raw.slice(eol + 2)
        // The last chunk (no trailers from these servers): its blank line ends the response.
        this.#state = this.#chunkLeft === 0 ? LAST_CRLF : CHUNK_DATA
      } else if (this.#state === CHUNK_DATA) {
        if (this.#raw.length === 0) return
        const take = Math.min(this.#chunkLeft, this.#raw.length)
        this.#body(this.#raw.slice(0, take), at)
        this.#raw = this.#raw.slice(take)
        this.#chunkLeft -= take
        if (this.#chunkLeft === 0) this.#state = CHUNK_CRLF
      } else if (this.#state === CHUNK_CRLF || this.#state === LAST_CRLF) {
        if (this.#raw.length < 2) return
        this.#raw = this.#raw.slice(2)
        if (this.#state === CHUNK_CRLF) {
          this.#state = CHUNK_SIZE
        } else {
          this.#endResponse(true)
          if (this.#raw.length === 0) return
        }
      } else {
        if (this.#raw.length === 0) return
        const take = Math.min(this.#chunkLeft, this.#raw.length)
        this.#body(this.#raw.slice(0, take), at)
        this.#raw = this.#raw.slice(take)
        this.#chunkLeft -= take
        if (this.#chunkLeft === 0) {
          this.#endResponse(true)
          if (this.#raw.length === 0) return
        }
      }
    }
  }

  /** SSE frames: `id:` lines are checked for gaps, `data:` lines scanned for token stamps. */
  #body (text: string, at: number): void {
    this.#sse += text
    const last = this.#sse.lastIndexOf('\n\n')
    if (last === -1) return
    const frames = this.#sse.slice(0, last)
    this.#sse = this.#sse.slice(last + 2)
    const ctx = this.#ctx
    const inWindow = at >= ctx.windowStart && at < ctx.windowEnd
    let start = 0
    while (start < frames.length) {
      let end = frames.indexOf('\n', start)
      if (end === -1) end = frames.length
      const c = frames.charCodeAt(start)
      if (c === 105 /* i */ && frames.startsWith('id:', start)) {
        const id = Number(frames.slice(start + 3, end).trim())
        if (this.#lastId === 0 && ctx.subscriber) this.#lastId = id - 1
        if (id <= this.#lastId) ctx.stats.idDuplicates++
        else if (id !== this.#lastId + 1) ctx.stats.idGaps++
        this.#lastId = id
      } else if (c === 100 /* d */) {
        STAMP.lastIndex = start
        for (;;) {
          const m = STAMP.exec(frames)
          if (m === null || m.index >= end) break
          const sentAt = Number(m[1])
          this.#tokens++
          ctx.stats.tokens++
          if (this.#firstToken) {
            this.#firstToken = false
            if (inWindow) ctx.ttft.record((at - this.#sentAt) * 1000)
          }
          if (inWindow) {
            ctx.stats.tokensInWindow++
            const slice = Math.floor((at - ctx.windowStart) / ctx.bucketMs)
            const us = (at - sentAt) * 1000
            ctx.buckets[slice]! += 1
            ctx.latency.record(us)
            ctx.sliceLatency[slice]!.record(us)
          }
        }
      }
      start = end + 1
    }
  }

  #endResponse (complete: boolean): void {
    this.#responseOpen = false
    const stats = this.#ctx.stats
    // Answers cut by the end of the run are not the server's fault.
    if (!complete && this.#ctx.stopping) return
    if (complete) stats.streamsCompleted++
    if (this.#tokens < this.#ctx.expectTokens) stats.shortStreams++
    else if (this.#tokens > this.#ctx.expectTokens) stats.longStreams++
    this.#state = HEAD
    if (!complete) return
    // Next question on the same connection, as soon as this answer ended.
    if (!this.#ctx.stopping) queueMicrotask(() => this.start())
  }
}
