/**
 * Two readers of one generation, one of which never reads: its byte budget (the relay plugin's
 * `maxBufferedBytes`, 1 MiB by default) is exceeded, it is closed with `slow_consumer` and its
 * connection destroyed, while the other reader gets every token promptly and the generation runs
 * to its end.
 */
import net from 'node:net'
import { createParser } from 'eventsource-parser'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { MemoryStore } from '../../lib/relay/stores/memory.js'
import { closeReason, textOf, waitUntil } from '../fixtures/stack.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'

interface Family { name: string, metrics: Array<{ value?: string, labels?: Record<string, string> }> }

async function metric (url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const res = await fetch(`${url}/metrics`)
  const family = (parsePrometheusTextFormat(await res.text()) as Family[]).find((f) => f.name === name)
  const sample = family?.metrics.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v))
  return Number(sample?.value ?? 0)
}

/**
 * The body of a chunked HTTP/1.1 response, as far as it arrived: a connection cut mid-chunk
 * gives the complete chunks and the part of the last one that came.
 */
function dechunk (body: Buffer): Buffer {
  const parts: Buffer[] = []
  let at = 0
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at)
    if (lineEnd < 0) break
    const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16)
    if (!Number.isFinite(size) || size === 0) break
    const start = lineEnd + 2
    parts.push(body.subarray(start, Math.min(start + size, body.length)))
    at = start + size + 2
    if (at > body.length) break
  }
  return Buffer.concat(parts)
}

// Big tokens, so the reader that does not read falls behind by more than the kernel's socket
// buffers (several MiB on loopback) plus the 1 MiB budget well before the answer ends.
const TOKEN_CHARS = 32 * 1024
const TOKENS = Array.from({ length: 384 }, (_, i) => `<${i}>${'x'.repeat(TOKEN_CHARS - 8)}\n`)
const FULL = TOKENS.join('')

t.test('a reader that never reads is dropped with slow_consumer; the other reader and the generation go on', async (t) => {
  const mock = await startMockUpstream()
  t.teardown(async () => { await mock.close() })
  const logs: Array<{ msg?: string, streamId?: string, time?: number }> = []
  const relay = await startRelay({
    // The mock is scripted through the request body, and this one carries the whole answer.
    env: { UPSTREAM_URL: mock.url, HEARTBEAT_MS: '0', MAX_BODY_BYTES: String(32 * 1024 * 1024) },
    // The journal must hold the whole 12 MiB answer (its default cap is 8 MiB of bookkeeping).
    store: new MemoryStore({ maxJournalBytes: 128 * 1024 * 1024 }),
    logger: { level: 'warn', stream: { write: (line: string) => { logs.push(JSON.parse(line) as typeof logs[number]) } } }
  })
  t.teardown(async () => { await relay.close() })

  // The fast reader starts the generation with POST /v1/chat/stream and reads everything.
  const fastAt: number[] = []
  let started = false
  const fast = collectSse(`${relay.url}/v1/chat/stream`, {
    method: 'POST',
    body: { messages: [{ role: 'user', content: 'Hi' }], mock: { tokens: TOKENS, tokenDelayMs: 3, firstTokenDelayMs: 0, jitterMs: 0, tag: 'slow-consumer' } },
    onEvent: () => {
      fastAt.push(Date.now())
      started = true
    },
    timeoutMs: 30_000
  })
  await waitUntil(() => started, 5000, 'the first token at the fast reader')
  const [streamId] = [...relay.app.relay.local.keys()]
  t.ok(streamId !== undefined, 'the generation runs on this relay')

  // The slow reader: a raw socket that sends its GET and then never reads a byte.
  const slow = net.connect(relay.port, '127.0.0.1')
  t.teardown(() => { slow.destroy() })
  slow.pause()
  const received: Buffer[] = []
  const slowClosed = new Promise<void>((resolve) => {
    slow.on('data', (chunk: Buffer) => { received.push(chunk) })
    slow.on('error', () => {})
    slow.on('close', () => resolve())
  })
  slow.write(`GET /v1/chat/stream/${streamId as string} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`)

  await waitUntil(async () => await metric(relay.url, 'relay_slow_consumer_drops_total') >= 1, 20_000, 'the slow reader to be dropped')
  const res = await fast

  // The fast reader: every token, in order, on time, and the generation's normal end.
  t.equal(res.status, 200)
  t.equal(closeReason(res.events), 'done', 'the fast reader got the normal end')
  t.ok(textOf(res.events) === FULL, `the fast reader got the exact full text (${FULL.length} chars)`)
  const ids = res.events.filter((e) => e.id !== undefined).map((e) => Number(e.id))
  t.same(ids, ids.map((_, i) => i + 1), 'ids 1..n, none lost, none twice')
  let maxGap = 0
  for (let i = 1; i < fastAt.length; i++) maxGap = Math.max(maxGap, (fastAt[i] as number) - (fastAt[i - 1] as number))
  t.ok(maxGap < 1000, `no stall while the other reader did not read: largest gap between events ${maxGap} ms`)

  const record = await mock.waitFor('slow-consumer', undefined, 5000)
  t.ok(record.completedAt !== undefined && !record.aborted, 'the upstream answer ran to its end, not aborted')
  t.equal(record.tokensSent, TOKENS.length)
  const dropLog = logs.find((l) => l.msg === 'slow reader dropped')
  const droppedAt = dropLog?.time ?? Infinity
  t.ok(droppedAt < (record.completedAt as number), `the slow reader was dropped while the answer was being produced (${(record.completedAt as number) - droppedAt} ms before its end)`)
  t.ok(fastAt.filter((at) => at > droppedAt).length > 10, 'and the fast reader kept getting events after the drop')

  // Server side: counted once, logged with the stream id, the connection gone.
  t.equal(await metric(relay.url, 'relay_slow_consumer_drops_total'), 1, 'one slow-consumer drop counted')
  t.equal(await metric(relay.url, 'relay_stream_closes_total', { reason: 'slow_consumer' }), 1, 'closes by reason: one slow_consumer')
  t.equal(await metric(relay.url, 'relay_stream_closes_total', { reason: 'done' }), 1, 'the fast reader closed with done')
  t.equal(await metric(relay.url, 'relay_generations_total', { reason: 'done' }), 1, 'the generation ended done')
  t.equal(await metric(relay.url, 'relay_active_connections'), 0, 'no stream left open')
  t.ok(logs.some((l) => l.msg === 'slow reader dropped' && l.streamId === streamId), 'a warning names the dropped stream')

  // The slow reader: the server destroyed its connection. Reading what is left in the kernel
  // buffers ends in EOF or a reset, without the client ever closing.
  slow.resume()
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    slowClosed,
    new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('the dropped connection was not closed by the server')), 10_000) })
  ]).finally(() => clearTimeout(timer))
  t.pass('the server closed the slow reader\'s connection')
  const raw = Buffer.concat(received)
  const headerEnd = raw.indexOf('\r\n\r\n')
  t.match(raw.subarray(0, headerEnd).toString('latin1'), /^HTTP\/1\.1 200 /)
  const body = dechunk(raw.subarray(headerEnd + 4)).toString('utf8')
  const slowEvents: Array<{ id?: string | undefined, event?: string | undefined, data: string }> = []
  const parser = createParser({ onEvent: (e) => { slowEvents.push(e) } })
  parser.feed(body)
  const slowIds = slowEvents.map((e) => Number(e.id))
  t.ok(slowIds.length > 0 && slowIds.length < ids.length, `the slow reader got a part only (${slowIds.length} of ${ids.length} events)`)
  t.same(slowIds, slowIds.map((_, i) => i + 1), 'what it got is in order, from the first event, with no gap')
  t.notOk(slowEvents.some((e) => e.event === 'close'), 'no close event reached it: the buffer holding it was discarded with the connection')
  t.ok(FULL.startsWith(textOf(slowEvents.map((e) => ({ ...e, at: 0 })))), 'its text is a prefix of the answer')
})
