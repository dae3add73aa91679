// Requests Node's HTTP parser refuses before any route sees them, sent byte for byte on a raw
// socket: each is answered with the contract's JSON error and a fitting status, then the
// connection closes. Before, they got Fastify's `{"error":"Bad Request","message":"Client Error"}`,
// and CONNECT got nothing at all.
import { connect } from 'node:net'
import t from 'tap'
import { startRelay } from '../fixtures/relay.js'

const relay = await startRelay({ env: { REQUEST_TIMEOUT_MS: '400' } })
t.teardown(() => relay.close())

interface RawAnswer {
  status: number
  headers: Record<string, string>
  body: string
  /** Everything received, as latin1 (byte for byte). */
  raw: string
  /** The server closed the connection (within the deadline). */
  closed: boolean
}

/** Writes `bytes` (in pieces, with `pauseMs` between them) and reads until the server closes (or 10 s). */
async function send (pieces: Array<string | Buffer>, pauseMs = 0): Promise<RawAnswer> {
  const socket = connect(relay.port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  const ended = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => { socket.destroy(); resolve(false) }, 10_000)
    socket.once('close', () => { clearTimeout(timer); resolve(true) })
    socket.on('error', () => {})
  })
  await new Promise((resolve) => socket.once('connect', resolve))
  for (const piece of pieces) {
    if (socket.destroyed) break
    socket.write(piece)
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs))
  }
  const closed = await ended
  const raw = Buffer.concat(chunks).toString('latin1')
  const [head = '', ...rest] = raw.split('\r\n\r\n')
  const [statusLine = '', ...headerLines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: Buffer.from(rest.join('\r\n\r\n'), 'latin1').toString('utf8'), raw, closed }
}

const cases: Array<{ name: string, request: Array<string | Buffer>, pauseMs?: number, status: number, code: string }> = [
  { name: 'a NUL in a header value', request: ['GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\0b\r\n\r\n'], status: 400, code: 'invalid_header' },
  { name: 'a bare CR in a header value', request: ['GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\rb\r\n\r\n'], status: 400, code: 'invalid_header' },
  {
    name: 'non-ASCII bytes in the path',
    request: [Buffer.concat([Buffer.from('GET /v1/chat/stream/'), Buffer.from('ä€', 'utf8'), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')])],
    status: 400,
    code: 'invalid_url'
  },
  { name: 'an unknown method', request: ['FROB /healthz HTTP/1.1\r\nHost: x\r\n\r\n'], status: 501, code: 'method_not_implemented' },
  { name: 'headers over Node\'s 16 KiB', request: [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`], status: 431, code: 'headers_too_large' },
  { name: 'CONNECT', request: ['CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'], status: 501, code: 'method_not_implemented' },
  { name: 'an HTTP version that is not 1.x', request: ['GET /healthz HTTP/3.7\r\nHost: x\r\n\r\n'], status: 505, code: 'http_version_not_supported' },
  { name: 'the HTTP/2 preface in clear', request: ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'], status: 505, code: 'http_version_not_supported' },
  {
    name: 'a malformed Content-Length',
    request: ['POST /v1/chat/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 12a\r\n\r\n{}'],
    status: 400,
    code: 'invalid_body_framing'
  },
  { name: 'an Expect other than 100-continue', request: ['GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nConnection: close\r\n\r\n'], status: 417, code: 'expectation_failed' },
  {
    name: 'a request whose body stalls past REQUEST_TIMEOUT_MS',
    request: ['POST /v1/chat/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mes', 'sages"'],
    pauseMs: 1500,
    status: 408,
    code: 'request_timeout'
  }
]

for (const c of cases) {
  t.test(`${c.name}: ${c.status} ${c.code} as the contract's JSON error`, async (t) => {
    const answer = await send(c.request, c.pauseMs)
    t.equal(answer.status, c.status, `status (got ${JSON.stringify(answer.raw.slice(0, 200))})`)
    t.equal(answer.headers['content-type'], 'application/json; charset=utf-8')
    t.equal(Number(answer.headers['content-length']), Buffer.byteLength(answer.body), 'content-length is the body\'s')
    const body = JSON.parse(answer.body) as { error: { code: string, message: string } }
    t.same(Object.keys(body), ['error'], 'only `error` at the top')
    t.same(Object.keys(body.error), ['code', 'message'])
    t.equal(body.error.code, c.code)
    t.match(body.error.message, /\w{3,}/, `a message: ${body.error.message}`)
    t.notMatch(answer.raw, /Client Error|statusCode/, 'not Fastify\'s default shape')
    t.ok(answer.closed, 'the connection is closed after the answer')
  })
}

t.test('an unknown parser error gets a 400 bad_request with the parser\'s reason, never the request\'s bytes', async (t) => {
  const { refusalOf } = await import('../../plugins/client-errors.js')
  t.same(refusalOf(Object.assign(new Error('x'), { code: 'HPE_STRICT', reason: 'Some strict rule' })),
    { status: 400, code: 'bad_request', message: 'the request is not valid HTTP/1.1 (some strict rule)' })
  t.same(refusalOf(Object.assign(new Error('x'), { code: 'HPE_X', reason: 'Bearer sk-\u0000secret' })),
    { status: 400, code: 'bad_request', message: 'the request is not valid HTTP/1.1' }, 'a reason that is not plain text is left out')
})

t.test('a malformed request pipelined behind a stream cuts the connection without writing into the stream', async (t) => {
  // The stream's bytes are on the wire already: an error answer there would be read as part of it.
  const answer = await send(['GET /demo/clock HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\0b\r\n\r\n'], 300)
  t.equal(answer.status, 200, 'the stream had started')
  t.match(answer.raw, /event: time/, 'and sent events')
  t.notMatch(answer.raw, /invalid_header|HTTP\/1\.1 400/, 'no error answer inside the stream')
  t.ok(answer.closed, 'the connection is closed')
})

t.test('a good request on the same server still works', async (t) => {
  const answer = await send(['GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'])
  t.equal(answer.status, 200)
  t.same(JSON.parse(answer.body), { status: 'ok' })
})
