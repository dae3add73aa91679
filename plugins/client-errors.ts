/**
 * Answers for the requests that never reach a route, because Node's HTTP server refuses them
 * before Fastify sees them: a malformed request (the parser's `clientError`), `CONNECT` (Node
 * closes the socket without a word when nobody listens for it) and an `Expect` other than
 * `100-continue` (Node answers an empty 417). Each gets the relay's JSON error
 * `{"error":{"code","message"}}` (README "Endpoints") instead of Fastify's
 * `{"error":"Bad Request","message":"Client Error"}` or nothing.
 *
 * ```ts
 * const app = Fastify({ clientErrorHandler: answerClientError })
 * answerRefusedRequests(app.server)       // CONNECT and Expect
 * ```
 */
import { STATUS_CODES } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { FastifyInstance } from 'fastify'

/** What a refused request is answered with. */
interface Refusal {
  status: number
  code: string
  message: string
}

const INVALID_HEADER: Refusal = {
  status: 400,
  code: 'invalid_header',
  message: 'a header has a character HTTP does not allow (NUL, a bare CR or LF, a control character)'
}
const INVALID_FRAMING: Refusal = {
  status: 400,
  code: 'invalid_body_framing',
  message: 'the body\'s length is malformed (Content-Length or chunked Transfer-Encoding)'
}
const UNSUPPORTED_VERSION: Refusal = {
  status: 505,
  code: 'http_version_not_supported',
  message: 'this port serves HTTP/1.0 and HTTP/1.1 (HTTP/2 needs TLS)'
}

/** Node's error codes (llhttp's `HPE_*`, Node's own `ERR_*`) → the answer. */
const REFUSALS: Record<string, Refusal> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: 'request_timeout', message: 'the whole request did not arrive in time' },
  HPE_HEADER_OVERFLOW: { status: 431, code: 'headers_too_large', message: 'the request\'s headers are larger than this server accepts' },
  HPE_INVALID_METHOD: { status: 501, code: 'method_not_implemented', message: 'the request method is not one this server implements' },
  HPE_INVALID_URL: {
    status: 400,
    code: 'invalid_url',
    message: 'the request target has a character HTTP does not allow (non-ASCII bytes must be percent-encoded)'
  },
  HPE_INVALID_HEADER_TOKEN: INVALID_HEADER,
  HPE_LF_EXPECTED: INVALID_HEADER,
  HPE_CR_EXPECTED: INVALID_HEADER,
  HPE_INVALID_CONTENT_LENGTH: INVALID_FRAMING,
  HPE_UNEXPECTED_CONTENT_LENGTH: INVALID_FRAMING,
  HPE_INVALID_TRANSFER_ENCODING: INVALID_FRAMING,
  HPE_INVALID_CHUNK_SIZE: INVALID_FRAMING,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: INVALID_FRAMING,
  HPE_INVALID_VERSION: UNSUPPORTED_VERSION,
  // The HTTP/2 preface ("PRI * HTTP/2.0") sent in clear to this HTTP/1 server.
  HPE_PAUSED_H2_UPGRADE: UNSUPPORTED_VERSION
}

const CONNECT_REFUSED: Refusal = { status: 501, code: 'method_not_implemented', message: 'CONNECT is not supported: this server is not a proxy' }
const EXPECTATION_FAILED: Refusal = { status: 417, code: 'expectation_failed', message: 'the only Expect this server meets is 100-continue' }

/**
 * The refusal for a parser error. An unknown code gets a 400 with llhttp's reason: a fixed text
 * of the parser (`Invalid header value char`), never a piece of the request.
 */
export function refusalOf (err: NodeJS.ErrnoException & { reason?: unknown }): Refusal {
  const known = err.code === undefined ? undefined : REFUSALS[err.code]
  if (known !== undefined) return known
  const reason = typeof err.reason === 'string' && /^[\w ,.'/-]{1,100}$/.test(err.reason) ? ` (${err.reason.toLowerCase()})` : ''
  return { status: 400, code: 'bad_request', message: `the request is not valid HTTP/1.1${reason}` }
}

const bodyOf = ({ code, message }: Refusal): string => JSON.stringify({ error: { code, message } })

/** The whole HTTP/1.1 answer, written straight to a socket (there is no response object yet). */
function rawAnswer (refusal: Refusal): string {
  const body = bodyOf(refusal)
  return `HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? ''}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'connection: close\r\n\r\n' + body
}

/**
 * Fastify's `clientErrorHandler`: the parser refused what came on `socket`. Answered, then the
 * connection closed (after a parse error nothing more on it can be read). Logged at debug with
 * the code only: the error also holds the raw bytes, headers and keys included.
 */
export function answerClientError (this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
  // A reset connection has nobody to answer; a second error on a socket we ended needs nothing.
  if (err.code === 'ECONNRESET' || socket.destroyed || socket.writableEnded) return
  this.log.debug({ code: err.code }, 'refused a malformed request')
  // Node's own rule (lib/_http_server.js, socketOnError): no answer in the middle of a response
  // already under way on this connection (a pipelined request after a stream), or the client
  // would read our bytes as part of it.
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage
  if (!socket.writable || inFlight?.headersSent === true) {
    socket.destroy()
    return
  }
  endWith(socket, refusalOf(err))
}

/**
 * Half-closes after the answer, so it is read before the connection goes (closing at once could
 * reset it with the answer unread); a peer that never closes its side is cut after a second.
 */
function endWith (socket: Duplex, refusal: Refusal): void {
  socket.end(rawAnswer(refusal))
  setTimeout(() => socket.destroy(), 1000).unref()
}

/** Answers `CONNECT` and unmet `Expect` headers on `server` with the JSON error too. */
export function answerRefusedRequests (server: Server): void {
  server.on('connect', (_request: IncomingMessage, socket: Duplex) => {
    if (!socket.destroyed) endWith(socket, CONNECT_REFUSED)
  })
  server.on('checkExpectation', (_request: IncomingMessage, response: ServerResponse) => {
    const body = bodyOf(EXPECTATION_FAILED)
    response.writeHead(EXPECTATION_FAILED.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
    response.end(body)
  })
}
