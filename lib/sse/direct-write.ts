/**
 * The HTTP/1.1 fast path: an SSE frame written straight to the response's socket as one ready
 * HTTP chunk. What `res.write()` does in four writes under a cork, with a `nextTick` to uncork
 * and a four-buffer `writev`, becomes one write of one buffer (README "Benchmarks": the relay's
 * cost per token).
 *
 * It is only safe while the response would itself write the same bytes to the socket next, and
 * Node says so partly through two fields that are not documented: `_headerSent` (the head is on
 * the socket: `headersSent` is already true when it is only stored) and `chunkedEncoding`.
 * Everything else is read from public fields (`writableEnded`, `writableLength`). This module is
 * the one place that knows them, so that a Node release which renames or drops either turns the
 * fast path off (every frame then goes through `res.write()`, correct and slower) instead of
 * breaking streams; test/sse/fast-path.test.ts fails when that happens, on every Node in CI.
 * The `fastPath` SSE option (`SSE_FAST_PATH=false` in the service) turns it off by hand.
 */
import type { ServerResponse } from 'node:http'
import { Socket } from 'node:net'

const CRLF = Buffer.from('\r\n')

/**
 * The socket of an HTTP/1.1 chunked response whose headers are out and which holds nothing back
 * of its own, else `undefined`. The response's own later writes (the end, `0\r\n\r\n`) follow on
 * the same socket, in order; its `writableLength` counts the socket's buffer, so a byte budget
 * read from the response still holds.
 */
export function directSocket (res: ServerResponse): Socket | undefined {
  if (res.writableEnded) return undefined
  // Each must be exactly `true`: `undefined` on a Node that no longer has the field means "not
  // known", and the response writes. `chunkedEncoding`: the body is framed as chunks (HTTP/1.1,
  // no content-length). `_headerSent`: the head went out (a frame before it would be garbage).
  const internals = res as { _headerSent?: unknown, chunkedEncoding?: unknown }
  if (internals._headerSent !== true || internals.chunkedEncoding !== true) return undefined
  const socket = res.socket
  // A fake socket (light-my-request's inject) is not a stream to write to.
  if (!(socket instanceof Socket) || !socket.writable) return undefined
  // Anything the response holds back itself (bytes written before it had a socket; on Node 22+
  // chunks written under the application's cork()) counts in its writableLength and not in the
  // socket's: it must go first, so the response writes, in order.
  if (res.writableLength !== socket.writableLength) return undefined
  return socket
}

/**
 * Frames that leave together. The events of one upstream read (an answer's last token, its
 * finish, its usage) are written in one turn (one synchronous run, up to its microtasks), then
 * `[DONE]`, `close` and the response's end once the upstream request has settled, a few
 * microtasks later. The first frame a socket gets in a turn is written at once; a second one in
 * the same turn corks the socket until the loop's next check phase (`setImmediate`), so it and
 * everything written after it by then (the end of the answer) leave in one write instead of one
 * each. A turn with one frame a socket, the usual token, costs one microtask a turn and no more.
 */
let turn = 0
let turnOpen = false
const corked: Socket[] = []
/** (A reaction on a settled promise is the cheapest microtask: `queueMicrotask` makes an AsyncResource each call.) */
const SETTLED = Promise.resolve()

/** The number of the turn a frame is written in. */
export function currentTurn (): number {
  if (!turnOpen) {
    turnOpen = true
    void SETTLED.then(endTurn)
  }
  return turn
}

function endTurn (): void {
  turnOpen = false
  turn++
}

/** Holds `socket`'s writes until the loop's next check phase (unless it is corked already). */
export function corkAwhile (socket: Socket): void {
  if (socket.writableCorked > 0) return
  socket.cork()
  if (corked.push(socket) === 1) setImmediate(uncorkAll)
}

function uncorkAll (): void {
  for (const socket of corked) socket.uncork()
  corked.length = 0
}

/**
 * The last string frame framed as an HTTP/1.1 chunk (`<hex length>\r\n<frame>\r\n`). One event
 * written to many readers in a row (a channel broadcast, a token to several tabs) is encoded and
 * framed once and the same bytes go to every socket; only the newest is kept. Strings only: a
 * caller may refill a Buffer it wrote, so a byte frame is framed anew each time.
 */
let chunkedFrom: string | undefined
let chunkedBytes: Buffer = Buffer.alloc(0)

/** `frame` as one HTTP/1.1 chunk, ready for {@link directSocket}'s socket. `frame` is not empty. */
export function asChunk (frame: string | Uint8Array): Buffer {
  if (typeof frame === 'string') {
    if (frame !== chunkedFrom) {
      chunkedBytes = Buffer.from(`${Buffer.byteLength(frame).toString(16)}\r\n${frame}\r\n`)
      chunkedFrom = frame
    }
    return chunkedBytes
  }
  const head = Buffer.from(`${frame.byteLength.toString(16)}\r\n`)
  const chunk = Buffer.allocUnsafe(head.length + frame.byteLength + 2)
  head.copy(chunk, 0)
  chunk.set(frame, head.length)
  CRLF.copy(chunk, head.length + frame.byteLength)
  return chunk
}
