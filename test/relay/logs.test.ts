// The operator's log lines (README "Logs and metrics"), captured from the service's own logger
// (its level, redaction and serializers) on real sockets: the startup line, one info line per
// finished generation, and one warn line per upstream failure — an upstream 429, a reset in the
// middle of an answer, an unknown host — each with the stream id, and never a key.
import { createHash } from 'node:crypto'
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { keyId } from '../../plugins/identify.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, untilClose, waitUntil } from '../fixtures/stack.js'
import { openaiChunk } from '../fixtures/mock.js'

const UPSTREAM_KEY = 'sk-upstream-never-logged'
const RELAY_KEY = 'relay-key-never-logged'
const auth = { authorization: `Bearer ${RELAY_KEY}` }
const messages = [{ role: 'user', content: 'Hello' }]

type Line = Record<string, unknown> & { level: number, msg: string }

/** A pino destination that keeps every line, raw and parsed. */
function captureLogs (): { stream: { write: (line: string) => void }, raw: string[], lines: Line[] } {
  const raw: string[] = []
  const lines: Line[] = []
  return {
    raw,
    lines,
    stream: {
      write (line: string) {
        raw.push(line)
        lines.push(JSON.parse(line) as Line)
      }
    }
  }
}

/** A line without pino's own fields (time, pid, hostname), which every line has. */
function own (line: Line | undefined): Record<string, unknown> | undefined {
  if (line === undefined) return undefined
  const { time, pid, hostname, ...rest } = line
  return rest
}

/** What the relay logs for an owner: 12 base64url characters of SHA-256 of the owner (here the key's digest). */
const digestOf = (owner: string): string => createHash('sha256').update(owner).digest('base64url').slice(0, 12)

/** The OpenAI stream of a two-token answer with the upstream's usage, byte for byte. */
const RAW_ANSWER = [
  openaiChunk('"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]'),
  openaiChunk('"choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}]'),
  openaiChunk('"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]'),
  openaiChunk('"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}'),
  'data: [DONE]\n\n'
]

t.test('the mock in failing modes: a startup line, one info line per generation, one warn line per upstream failure', async (t) => {
  const mock = await startMockUpstream()
  const logs = captureLogs()
  // A query string on the upstream URL (Azure's api-version, or worse) is never logged either.
  const relay = await startRelay({
    env: { UPSTREAM_URL: `${mock.url}?api-version=query-secret`, UPSTREAM_API_KEY: UPSTREAM_KEY, RELAY_API_KEYS: RELAY_KEY, LOG_LEVEL: 'info' },
    logStream: logs.stream
  })
  t.teardown(async () => { await relay.close(); await mock.close() })
  const owner = digestOf(keyId(RELAY_KEY))

  t.test('startup: upstream host, model, format, store, limits', async (t) => {
    const started = logs.lines.filter((l) => l.msg === 'llm relay started')
    t.equal(started.length, 1, 'one startup line')
    t.same(own(started[0]), {
      level: 30,
      msg: 'llm relay started',
      upstream: new URL(mock.url).host,
      model: 'gpt-4o-mini',
      format: 'openai',
      store: 'memory',
      limits: { maxStreamsPerClient: 8, maxStreams: 10000, maxConnectionsPerClient: 16, maxDurationMs: 600000 }
    })
  })

  t.test('a finished generation: one info line with every field', async (t) => {
    const res = await collectSse(`${relay.url}/v1/chat/stream`, { method: 'POST', headers: auth, body: { messages, mock: { raw: RAW_ANSWER } }, until: untilClose })
    t.equal(closeReason(res.events), 'done')
    const streamId = res.headers['x-stream-id'] as string
    await waitUntil(() => logs.lines.some((l) => l.msg === 'generation finished' && l.streamId === streamId), 5000, 'the finished line')
    const lines = logs.lines.filter((l) => l.msg === 'generation finished' && l.streamId === streamId)
    t.equal(lines.length, 1, 'exactly one')
    const line = lines[0] as Line
    t.equal(typeof line.ttftMs, 'number', 'time to first token')
    t.equal(typeof line.durationMs, 'number', 'duration')
    t.ok((line.durationMs as number) >= (line.ttftMs as number), 'the first token came within the duration')
    const { ttftMs, durationMs, ...rest } = own(line) as Line
    t.same(rest, {
      level: 30,
      msg: 'generation finished',
      streamId,
      owner,
      model: 'gpt-4o-mini',
      reason: 'done',
      upstreamStatus: 200,
      attempts: 1,
      tokens: 2,
      promptTokens: 7,
      completionTokens: 2,
      usageEstimated: false
    }, 'no error code on a done generation; the usage is the upstream\'s')
    t.notOk(logs.lines.some((l) => l.level >= 40 && l.streamId === streamId), 'no warning for a good answer')
  })

  t.test('an upstream 429: one warn line with the status, the stream id and the attempts', async (t) => {
    const before = logs.lines.length
    const res = await fetch(`${relay.url}/v1/chat/stream`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ messages, mock: { status: 429, tag: 'rate-limited' } })
    })
    t.equal(res.status, 429)
    await res.arrayBuffer()
    await waitUntil(() => logs.lines.slice(before).some((l) => l.msg === 'generation finished'), 5000, 'the finished line')
    const fresh = logs.lines.slice(before)
    const finished = fresh.find((l) => l.msg === 'generation finished') as Line
    const streamId = finished.streamId as string
    const warns = fresh.filter((l) => l.level === 40)
    t.equal(warns.length, 1, 'exactly one warn line')
    t.same(own(warns[0]), {
      level: 40,
      msg: 'upstream failed',
      streamId,
      code: 'upstream_rate_limited',
      upstreamStatus: 429,
      // Retried twice (UPSTREAM_MAX_RETRIES' default) before the relay gave up: still one line.
      attempts: 3,
      message: (warns[0] as Line).message
    })
    t.match((warns[0] as Line).message, /^upstream answered 429/)
    t.match(finished, { reason: 'error', errorCode: 'upstream_rate_limited', upstreamStatus: 429, attempts: 3, tokens: 0, owner, usageEstimated: true })
    t.notOk('ttftMs' in finished, 'no first token')
    t.equal(mock.requests.filter((r) => r.tag === 'rate-limited').length, 3, 'the mock saw the three attempts')
  })

  t.test('a reset in the middle of an answer: one warn line', async (t) => {
    const before = logs.lines.length
    const res = await collectSse(`${relay.url}/v1/chat/stream`, {
      method: 'POST',
      headers: auth,
      body: { messages, mock: { tokens: ['a', 'b', 'c', 'd'], fault: 'reset', faultAfterTokens: 2, tokenDelayMs: 5, firstTokenDelayMs: 0 } },
      until: untilClose
    })
    t.equal(closeReason(res.events), 'error', 'the reader was told')
    const streamId = res.headers['x-stream-id'] as string
    await waitUntil(() => logs.lines.some((l) => l.msg === 'generation finished' && l.streamId === streamId), 5000, 'the finished line')
    const warns = logs.lines.slice(before).filter((l) => l.level === 40)
    t.equal(warns.length, 1, 'exactly one warn line')
    t.match(warns[0], { msg: 'upstream failed', streamId, code: 'upstream_reset', upstreamStatus: 200, attempts: 1 })
    const finished = logs.lines.find((l) => l.msg === 'generation finished' && l.streamId === streamId)
    t.match(finished, { reason: 'error', errorCode: 'upstream_reset', upstreamStatus: 200, attempts: 1, tokens: 2 })
    t.equal(typeof finished?.ttftMs, 'number')
  })

  t.test('no line holds a key, the relay key\'s digest or the URL\'s query', async (t) => {
    const all = logs.raw.join('')
    for (const secret of [UPSTREAM_KEY, RELAY_KEY, keyId(RELAY_KEY), keyId(RELAY_KEY).slice(4), 'query-secret']) {
      t.notOk(all.includes(secret), `${secret} is in no line`)
    }
  })
})

t.test('an unknown host: one warn line with the network error code', async (t) => {
  const logs = captureLogs()
  const relay = await startRelay({
    env: { UPSTREAM_URL: 'http://nonexistent.invalid/v1', UPSTREAM_API_KEY: UPSTREAM_KEY, UPSTREAM_MAX_RETRIES: '0', LOG_LEVEL: 'info' },
    logStream: logs.stream
  })
  t.teardown(() => relay.close())
  t.match(logs.lines.find((l) => l.msg === 'llm relay started'), { upstream: 'nonexistent.invalid', store: 'memory' })
  const res = await fetch(`${relay.url}/v1/chat/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) })
  t.equal(res.status, 502)
  t.match(await res.json(), { error: { code: 'upstream_connect' } })
  await waitUntil(() => logs.lines.some((l) => l.msg === 'generation finished'), 5000, 'the finished line')
  const finished = logs.lines.find((l) => l.msg === 'generation finished') as Line
  const warns = logs.lines.filter((l) => l.level === 40)
  t.equal(warns.length, 1, 'exactly one warn line')
  const warn = warns[0] as Line
  t.match(warn, { msg: 'upstream failed', streamId: finished.streamId, code: 'upstream_connect', attempts: 1 })
  // A resolver with no network at all answers EAI_AGAIN rather than NXDOMAIN.
  t.ok(['ENOTFOUND', 'EAI_AGAIN'].includes(warn.networkCode as string), `the resolver's code (${String(warn.networkCode)})`)
  t.notOk('upstreamStatus' in warn, 'no status: no response came')
  t.match(finished, { reason: 'error', errorCode: 'upstream_connect', attempts: 1, owner: null, model: 'gpt-4o-mini' })
  t.notOk(logs.raw.join('').includes(UPSTREAM_KEY), 'the key is in no line')
})
