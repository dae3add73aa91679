/**
 * REQUEST_TIMEOUT_MS bounds receiving a request (headers and body), so a client that stalls its
 * body does not hold a connection for ever; a stream answered after the request is in runs as
 * long as it runs.
 */
import net from 'node:net'
import t from 'tap'
import { closeReason, startStack, textOf } from '../fixtures/stack.js'

t.test('a body that stalls is cut after REQUEST_TIMEOUT_MS; a stream longer than it is not', async (t) => {
  const stack = await startStack(t, { REQUEST_TIMEOUT_MS: '500' })
  const { port } = stack.relay

  const started = Date.now()
  const answer = await new Promise<{ text: string, closedAfter: number }>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let text = ''
    const bound = setTimeout(() => { socket.destroy(); reject(new Error('the stalled request was still open after 5 s')) }, 5000)
    socket.on('data', (chunk) => { text += chunk.toString() })
    socket.on('close', () => { clearTimeout(bound); resolve({ text, closedAfter: Date.now() - started }) })
    socket.on('error', () => {})
    // Headers and the start of a 1,000-byte body, then nothing.
    socket.write('POST /v1/chat/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"messages":')
  })
  t.match(answer.text, /^HTTP\/1\.1 408 /, 'answered 408')
  t.ok(answer.closedAfter >= 450, `and closed, after ${answer.closedAfter} ms`)
  t.equal(stack.mock.requests.length, 0, 'nothing reached the upstream')

  const tokens = Array.from({ length: 30 }, (_, i) => `w${i} `)
  const res = await stack.stream({ tokens, tokenDelayMs: 50, firstTokenDelayMs: 0 }, { timeoutMs: 10_000 })
  t.ok((res.events.at(-1)?.at ?? 0) > 1000, 'the stream ran past the request timeout')
  t.equal(textOf(res.events), tokens.join(''), 'whole')
  t.equal(closeReason(res.events), 'done')
})
