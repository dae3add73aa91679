/**
 * Two relay instances on one real redis-server, with the mock upstream: resume, cancel and
 * supersede across instances (issue 5, "Show it works").
 */
import t from 'tap'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import type { MockScript, MockUpstream } from '../../lib/mock/index.js'
import type { RedisStore } from '../../lib/relay/stores/redis.js'
import { startRedis } from '../fixtures/redis.js'
import type { RunningRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import type { CollectedEvent } from '../fixtures/sse-client.js'
import { closeReason, textOf, untilClose, waitUntilOk } from '../fixtures/stack.js'

let redis: RunningRedis
let mock: MockUpstream
t.before(async () => {
  redis = await startRedis()
  mock = await startMockUpstream()
})
t.teardown(async () => {
  await mock.close()
  await redis.destroy()
})

/** Two relays sharing the test's Redis (a fresh key prefix per test would need config; one Redis per file is enough). */
async function twoRelays (t: Test, env: Record<string, string> = {}): Promise<[RunningRelay, RunningRelay]> {
  const relays: RunningRelay[] = []
  for (let i = 0; i < 2; i++) {
    const relay = await startRelay({ env: { REDIS_URL: redis.url, UPSTREAM_URL: mock.url, ...env } })
    t.teardown(async () => { await relay.close() })
    relays.push(relay)
  }
  return relays as [RunningRelay, RunningRelay]
}

const messages = [{ role: 'user', content: 'Hello' }]
const tokens = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}${i}${i % 7 === 3 ? '\n' : ' '}`)

async function create (relay: RunningRelay, script: MockScript, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await fetch(`${relay.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, ...extra, mock: { jitterMs: 0, firstTokenDelayMs: 0, ...script } })
  })
  const json = await res.json() as { streamId?: string }
  if (res.status !== 201 || json.streamId === undefined) throw new Error(`POST /v1/chat: ${res.status} ${JSON.stringify(json)}`)
  return json.streamId
}

const numbered = (events: readonly CollectedEvent[]): number[] => events.filter((e) => e.id !== undefined).map((e) => Number(e.id))

/** Reads a stream to its close; `started` resolves once `n` events have arrived. */
function readUntilClose (url: string, n = 3): { started: Promise<void>, done: ReturnType<typeof collectSse> } {
  let seen = 0
  let resolve!: () => void
  const started = new Promise<void>((_resolve) => { resolve = _resolve })
  const done = collectSse(url, { until: untilClose, onEvent: () => { if (++seen === n) resolve() } })
  return { started, done }
}

t.test('a generation started on A, its client gone, resumes on B from several ids: exact text, each event once', async (t) => {
  const [a, b] = await twoRelays(t)
  const words = tokens(40, 'w')
  const streamId = await create(a, { tokens: words, tokenDelayMs: 25, tag: 'resume' })
  const first = await collectSse(`${a.url}/v1/chat/stream/${streamId}`, { until: (_e, all) => all.length >= 6 })
  t.ok(first.aborted, 'the first client left after 6 events')
  const lastSeen = Number(first.events.at(-1)?.id)

  // Live, while A still produces: from the id the client saw last, and from further back.
  const live = await Promise.all([lastSeen, 2, 0].map(async (after) => ({
    after,
    res: await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { headers: { 'last-event-id': String(after) }, until: untilClose })
  })))
  // And after the end, from the middle and from the last id.
  const ids = numbered(live[2]?.res.events ?? [])
  const lastId = ids.at(-1) as number
  const after = await Promise.all([Math.floor(lastId / 2), lastId - 1, lastId].map(async (from) => ({
    after: from,
    res: await collectSse(`${b.url}/v1/chat/stream/${streamId}?lastEventId=${from}`, { until: untilClose })
  })))
  const full = live[2]?.res.events ?? []
  t.equal(textOf(full), words.join(''), 'read from 0 on B: the exact text')
  t.equal(full.filter((e) => e.id !== undefined).at(-1)?.data, '[DONE]')
  for (const { after: from, res } of [...live, ...after]) {
    t.same(numbered(res.events), ids.slice(from), `from ${from}: ids ${from + 1}..${lastId}, each once, in order`)
    t.same(res.events.filter((e) => e.id !== undefined).map((e) => e.data), full.filter((e) => e.id !== undefined).slice(from).map((e) => e.data))
    t.equal(closeReason(res.events), 'done')
  }
  t.equal(textOf(first.events) + textOf(live[0]?.res.events ?? []), words.join(''), 'the dropped client\'s part + its resume on B = the text')
  const record = await mock.waitFor('resume')
  t.equal(record.aborted, false, 'the upstream ran to the end: B\'s readers kept it wanted though A had none')
})

t.test('DELETE sent to B stops the generation running on A', async (t) => {
  const [a, b] = await twoRelays(t)
  const streamId = await create(a, { tokens: tokens(200, 'd'), tokenDelayMs: 20, tag: 'cancel' })
  const reader = readUntilClose(`${a.url}/v1/chat/stream/${streamId}`)
  await reader.started
  const res = await fetch(`${b.url}/v1/chat/stream/${streamId}`, { method: 'DELETE' })
  t.same(await res.json(), { streamId, cancelled: true })
  const record = await mock.waitFor('cancel', (r) => r.aborted, 3000)
  t.ok(record.aborted, 'the upstream request on A was aborted')
  t.ok(record.tokensSent < 200)
  t.equal(closeReason((await reader.done).events), 'cancelled', 'A\'s reader got close: cancelled')
  const late = await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { until: untilClose })
  t.equal(closeReason(late.events), 'cancelled', 'and so does a reader on B')
})

t.test('a new message for the same conversation on B supersedes the generation on A', async (t) => {
  const [a, b] = await twoRelays(t)
  const old = await create(a, { tokens: tokens(200, 'o'), tokenDelayMs: 20, tag: 'old' }, { conversationId: 'conv-1' })
  const reader = readUntilClose(`${a.url}/v1/chat/stream/${old}`)
  await reader.started
  const answer = tokens(30, 'n')
  const fresh = await create(b, { tokens: answer, tokenDelayMs: 30, tag: 'new' }, { conversationId: 'conv-1' })
  const record = await mock.waitFor('old', (r) => r.aborted, 3000)
  t.ok(record.aborted, 'the old upstream request on A was aborted')
  t.equal(closeReason((await reader.done).events), 'superseded')
  const active = await collectSse(`${a.url}/v1/conversations/conv-1/stream`, { until: untilClose })
  t.equal(active.headers['x-stream-id'], fresh, 'A attaches to the new generation made on B')
  t.equal(textOf(active.events), answer.join(''))
  t.equal(closeReason(active.events), 'done')
})

t.test('per-client limits hold across instances', async (t) => {
  const [a, b] = await twoRelays(t, { MAX_STREAMS_PER_CLIENT: '2' })
  const s1 = await create(a, { tokens: tokens(100, 'l'), tokenDelayMs: 20 })
  const s2 = await create(b, { tokens: tokens(100, 'l'), tokenDelayMs: 20 })
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const journalsInRedis = (await admin.keys('*:meta')).length
  const third = await fetch(`${a.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) })
  t.equal(third.status, 429, 'the third concurrent generation of one client is refused, though A runs only one')
  await third.body?.cancel()
  t.equal((await admin.keys('*:meta')).length, journalsInRedis, 'the refused start left no journal in Redis')
  t.equal((a.app.relay.store as RedisStore).size, 1, 'nor in A\'s memory')
  for (const [relay, id] of [[b, s1], [a, s2]] as const) await fetch(`${relay.url}/v1/chat/stream/${id}`, { method: 'DELETE' })
  await waitUntilOk(async () => {
    const res = await fetch(`${a.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages, mock: { tokens: ['x'] } }) })
    await res.body?.cancel()
    return res.status === 201
  }, 3000, 'a slot given back')
  t.pass('slots are given back when the generations end')
})

t.test('MAX_STREAMS holds for starts that arrive together and wait on Redis together', async (t) => {
  const [a] = await twoRelays(t, { MAX_STREAMS: '2' })
  // Redis held still for a moment: every start is then waiting on it at once.
  const pid = redis.pid as number
  process.kill(pid, 'SIGSTOP')
  let statuses: number[]
  try {
    const starts = Array.from({ length: 6 }, async () => {
      const res = await fetch(`${a.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages, mock: { tokens: tokens(100, 'b'), tokenDelayMs: 20 } }) })
      await res.body?.cancel()
      return res.status
    })
    await new Promise((resolve) => setTimeout(resolve, 300))
    process.kill(pid, 'SIGCONT')
    statuses = await Promise.all(starts)
  } finally {
    process.kill(pid, 'SIGCONT')
  }
  t.equal(statuses.filter((s) => s === 201).length, 2, 'two of six simultaneous starts run')
  t.equal(statuses.filter((s) => s === 503).length, 4, 'the others get 503')
})

t.test('channels across instances over HTTP: publish on A (and B), read on B, resume on either', async (t) => {
  const [a, b] = await twoRelays(t, { RELAY_PUBLISH_KEYS: 'publisher-key' })
  const channel = `order.${Date.now()}`
  const publish = async (relay: RunningRelay, body: unknown): Promise<number[]> => {
    const res = await fetch(`${relay.url}/v1/channels/${channel}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer publisher-key' },
      body: JSON.stringify(body)
    })
    t.equal(res.status, 202)
    return (await res.json() as { ids: number[] }).ids
  }

  const live = collectSse(`${b.url}/v1/channels/${channel}/stream`, { until: (_e, all) => all.length >= 4 })
  t.same(await publish(a, [{ event: 'progress', data: { percent: 10 } }, { event: 'progress', data: { percent: 50 } }]), [1, 2])
  t.same(await b.app.channels.publish(channel, { event: 'progress', data: { percent: 90 } }), [3], 'ids continue on the other instance')
  t.same(await publish(b, { event: 'shipped', data: { carrier: 'post' } }), [4])
  const expected = [
    ['1', 'progress', '{"percent":10}'],
    ['2', 'progress', '{"percent":50}'],
    ['3', 'progress', '{"percent":90}'],
    ['4', 'shipped', '{"carrier":"post"}']
  ]
  t.same((await live).events.map((e) => [e.id, e.event, e.data]), expected, 'the reader on B gets every event once, in order')

  const onA = await collectSse(`${a.url}/v1/channels/${channel}/stream`, { headers: { 'last-event-id': '2' }, until: (_e, all) => all.length >= 2 })
  t.same(onA.events.map((e) => [e.id, e.event, e.data]), expected.slice(2), 'resume on A after id 2')
  const closing = collectSse(`${b.url}/v1/channels/${channel}/stream?lastEventId=3`, { until: untilClose })
  await a.app.channels.close(channel)
  const rest = await closing
  t.same(rest.events.map((e) => [e.id, e.event]), [['4', 'shipped'], [undefined, 'close']], 'resume on B after id 3, then the close made on A')
  t.equal(closeReason(rest.events), 'done')
})
