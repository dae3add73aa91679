/**
 * Graceful shutdown of a real relay process (server.ts) on SIGTERM/SIGINT, with a second
 * instance B on the same Redis: /readyz turns 503, new generations get 503, running ones finish
 * within SHUTDOWN_GRACE_MS, the rest close with `shutdown` and their readers find the journal on
 * B, whole and exactly once; the process exits with code 0.
 */
import t from 'tap'
import type { Test } from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import type { MockScript, MockUpstream } from '../../lib/mock/index.js'
import { closeReason, textOf, waitUntil } from '../fixtures/stack.js'
import { startRedis } from '../fixtures/redis.js'
import type { RunningRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { startRelayProcess } from '../fixtures/relay-process.js'
import type { RelayProcess } from '../fixtures/relay-process.js'
import { collectSse } from '../fixtures/sse-client.js'
import type { CollectedEvent, CollectSseResult } from '../fixtures/sse-client.js'

let redis: RunningRedis
let mock: MockUpstream
let b: RunningRelay
t.before(async () => {
  redis = await startRedis()
  mock = await startMockUpstream()
  // B lives for the whole file: the instance the readers of a stopped A go to.
  b = await startRelay({ env: { REDIS_URL: redis.url, UPSTREAM_URL: mock.url } })
})
t.teardown(async () => {
  await b.close()
  await mock.close()
  await redis.destroy()
})

const messages = [{ role: 'user', content: 'Hello' }]
const words = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}${i}${i % 9 === 4 ? '\n' : ' '}`)
const script = (tokens: string[], tag: string, tokenDelayMs: number): MockScript => ({ tokens, tag, tokenDelayMs, firstTokenDelayMs: 0, jitterMs: 0 })

/** Relay A, the real server entry in its own process, on the shared Redis and mock. */
async function startA (t: Test, graceMs: number): Promise<RelayProcess> {
  return await startRelayProcess(t, { REDIS_URL: redis.url, UPSTREAM_URL: mock.url, SHUTDOWN_GRACE_MS: String(graceMs) })
}

interface LiveStream {
  /** The events so far. */
  events: CollectedEvent[]
  /** `Date.now()` when the `close` event arrived. */
  closedAt: number | undefined
  done: Promise<CollectSseResult>
}

/** A live `POST /v1/chat/stream` on `url`, collected to its end (or `until`). */
function liveStream (url: string, mockScript: MockScript, options: { until?: (e: CollectedEvent) => boolean, timeoutMs?: number } = {}): LiveStream {
  const events: CollectedEvent[] = []
  let closedAt: number | undefined
  const done = collectSse(`${url}/v1/chat/stream`, {
    method: 'POST',
    body: { messages, mock: mockScript },
    onEvent: (e) => {
      events.push(e)
      if (e.event === 'close') closedAt = Date.now()
    },
    until: options.until,
    timeoutMs: options.timeoutMs ?? 20_000
  })
  return { events, get closedAt () { return closedAt }, done }
}

/** The numeric ids of the events (the `close` event has none). */
const idsOf = (events: readonly CollectedEvent[]): number[] => events.filter((e) => e.id !== undefined).map((e) => Number(e.id))
const lastIdOf = (events: readonly CollectedEvent[]): number => idsOf(events).at(-1) ?? 0
const consecutive = (ids: readonly number[]): boolean => ids.every((id, i) => id === i + 1)

t.test('SIGTERM with a grace long enough: readiness turns false, new generations get 503, every live stream finishes whole, exit 0', async (t) => {
  const a = await startA(t, 15_000)
  const answers = Array.from({ length: 4 }, (_, i) => words(70, `g${i}w`))
  const streams = answers.map((tokens, i) => liveStream(a.url, script(tokens, `grace-${i}`, 40)))
  await waitUntil(() => streams.every((s) => s.events.length >= 3), 10_000, 'every stream under way')

  const sentAt = Date.now()
  a.kill('SIGTERM')
  // Readiness turns false at once, while the streams are still running.
  await waitUntil(async () => (await fetch(`${a.url}/readyz`)).status === 503, 3000, '/readyz 503 on A')
  const ready = await fetch(`${a.url}/readyz`)
  t.equal(ready.status, 503, '/readyz answers 503 while draining')
  t.match(await ready.json(), { ready: false, draining: true, reason: 'draining' })

  const refused = await fetch(`${a.url}/v1/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, mock: script(['never'], 'grace-refused', 10) })
  })
  t.equal(refused.status, 503, 'a new generation on a draining instance gets 503')
  t.match(refused.headers.get('content-type'), /^application\/json/)
  t.ok(refused.headers.get('retry-after') !== null, 'with retry-after')
  t.match(await refused.json(), { error: { code: 'shutting_down', message: String } })
  t.notOk(mock.requests.some((r) => r.tag === 'grace-refused'), 'the refused request never reached the upstream')
  t.ok(streams.every((s) => closeReason(s.events) === undefined), 'all of that while the streams were still running')

  const results = await Promise.all(streams.map(async (s) => await s.done))
  results.forEach((res, i) => {
    t.equal(res.status, 200)
    t.equal(closeReason(res.events), 'done', `stream ${i} finished normally`)
    t.equal(textOf(res.events), (answers[i] as string[]).join(''), `stream ${i} got its exact full text`)
    t.ok(res.events.some((e) => e.data === '[DONE]'), `stream ${i} got [DONE]`)
    t.ok(consecutive(idsOf(res.events)), `stream ${i}: ids 1..n, none missing, none twice`)
  })
  for (let i = 0; i < answers.length; i++) {
    const record = await mock.waitFor(`grace-${i}`, undefined, 5000)
    t.ok(record.completedAt !== undefined && !record.aborted, `upstream ${i} ran to its end`)
  }

  const exit = await a.exited
  t.same(exit, { code: 0, signal: null }, 'A exited cleanly', { output: a.output() })
  t.ok(Date.now() - sentAt < 15_000, 'well before the grace deadline, once the streams were done')
})

t.test('SIGTERM with a grace shorter than the answers: streams close with shutdown, readers resume on B with nothing lost, exit 0', async (t) => {
  const graceMs = 1000
  const a = await startA(t, graceMs)
  const answers = Array.from({ length: 3 }, (_, i) => words(300, `s${i}w`))
  // Three readers stay on A to the end; one more leaves A just before the signal (as a client
  // whose connection broke) and comes back on B after A is gone.
  const streams = answers.map((tokens, i) => liveStream(a.url, script(tokens, `short-${i}`, 25)))
  const leaverAnswer = words(300, 'lw')
  const leaver = liveStream(a.url, script(leaverAnswer, 'short-leaver', 25), { until: (e) => Number(e.id) >= 5 })
  // And one reader on B follows a generation produced on A, through Redis.
  const remoteAnswer = words(300, 'rw')
  const remoteCreated = await fetch(`${a.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, mock: script(remoteAnswer, 'short-remote', 25) })
  })
  t.equal(remoteCreated.status, 201)
  const { streamId: remoteId } = await remoteCreated.json() as { streamId: string }
  const remoteEvents: CollectedEvent[] = []
  const remote = collectSse(`${b.url}/v1/chat/stream/${remoteId}`, { onEvent: (e) => { remoteEvents.push(e) }, timeoutMs: 20_000 })

  const leaverRes = await leaver.done
  const leaverId = leaverRes.headers['x-stream-id'] as string
  await waitUntil(() => streams.every((s) => s.events.length >= 5) && remoteEvents.length >= 5, 10_000, 'every stream under way')

  const sentAt = Date.now()
  a.kill('SIGTERM')
  const results = await Promise.all(streams.map(async (s) => await s.done))
  const exit = await a.exited
  const exitedAfter = Date.now() - sentAt
  t.same(exit, { code: 0, signal: null }, 'A exited cleanly', { output: a.output() })
  t.ok(exitedAfter >= graceMs - 50, `A waited for the grace time (${exitedAfter} ms)`)
  t.ok(exitedAfter < graceMs + 5000, `and exited within the grace + 5 s (${exitedAfter} ms)`)

  const resumeOnB = async (streamId: string, lastId: number): Promise<CollectSseResult> =>
    await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { headers: { 'last-event-id': String(lastId) }, timeoutMs: 10_000 })
  const fullOnB = async (streamId: string): Promise<CollectSseResult> =>
    await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { timeoutMs: 10_000 })

  for (const [i, res] of results.entries()) {
    const streamId = res.headers['x-stream-id'] as string
    t.equal(closeReason(res.events), 'shutdown', `stream ${i} on A closed with reason shutdown`)
    t.notOk(res.events.some((e) => e.data === '[DONE]'), `stream ${i}: no [DONE], the answer is cut`)
    const ranFor = (streams[i]?.closedAt ?? 0) - sentAt
    t.ok(ranFor >= graceMs - 50, `stream ${i} kept running for the grace time after the signal (${ranFor} ms)`)
    const lastId = lastIdOf(res.events)
    const rest = await resumeOnB(streamId, lastId)
    t.equal(rest.status, 200)
    t.equal(closeReason(rest.events), 'shutdown', `stream ${i}: the resume on B ends with shutdown too`)
    const whole = await fullOnB(streamId)
    const ids = [...idsOf(res.events), ...idsOf(rest.events)]
    t.ok(consecutive(ids), `stream ${i}: ids 1..${ids.length} across A and B, none missing, none twice`)
    t.same(ids, idsOf(whole.events), `stream ${i}: exactly the journal's events`)
    const text = textOf(res.events) + textOf(rest.events)
    t.equal(text, textOf(whole.events), `stream ${i}: A's part + B's part = the journal's text`)
    const full = (answers[i] as string[]).join('')
    t.ok(text.length > 0 && text.length < full.length && full.startsWith(text), `stream ${i}: a proper prefix of the answer (${text.length}/${full.length} chars)`)
    const record = mock.requests.find((r) => r.tag === `short-${i}`)
    t.ok(record?.aborted === true, `upstream ${i} was aborted at the deadline, not left running`)
  }

  // The reader that left before the signal: everything after its last id, from B, exactly once.
  const leaverLast = lastIdOf(leaverRes.events)
  t.equal(leaverLast, 5)
  const leaverRest = await resumeOnB(leaverId, leaverLast)
  t.equal(closeReason(leaverRest.events), 'shutdown')
  const leaverWhole = await fullOnB(leaverId)
  const leaverIds = [...idsOf(leaverRes.events), ...idsOf(leaverRest.events)]
  t.ok(leaverIds.length > 5 && consecutive(leaverIds), `the leaver: ids 1..${leaverIds.length}, none missing, none twice`)
  t.same(leaverIds, idsOf(leaverWhole.events))
  const leaverText = textOf(leaverRes.events) + textOf(leaverRest.events)
  t.equal(leaverText, textOf(leaverWhole.events), 'the leaver has the journal\'s whole text')
  t.ok(leaverText.length < leaverAnswer.join('').length && leaverAnswer.join('').startsWith(leaverText), 'a proper prefix of the answer')

  // The reader on B of A's generation learns of the shutdown through Redis, not as a lost producer.
  const remoteRes = await remote
  t.equal(closeReason(remoteRes.events), 'shutdown', 'B\'s reader of A\'s generation got close shutdown')
  t.notOk(remoteRes.events.some((e) => e.event === 'error'), 'no producer_lost error')
  t.ok(consecutive(idsOf(remoteRes.events)), 'ids 1..n on B')
  const remoteWhole = await fullOnB(remoteId)
  t.equal(textOf(remoteRes.events), textOf(remoteWhole.events), 'and the journal\'s whole text')
})

t.test('SIGINT does the same: a stream past the grace closes with shutdown, B has the rest, exit 0', async (t) => {
  const graceMs = 300
  const a = await startA(t, graceMs)
  const answer = words(300, 'i')
  const stream = liveStream(a.url, script(answer, 'sigint', 25))
  await waitUntil(() => stream.events.length >= 5, 10_000, 'the stream under way')
  const sentAt = Date.now()
  a.kill('SIGINT')
  await waitUntil(async () => {
    try {
      return (await fetch(`${a.url}/readyz`)).status !== 200
    } catch {
      return true // already gone
    }
  }, 3000, 'A not ready')
  const res = await stream.done
  const exit = await a.exited
  t.same(exit, { code: 0, signal: null }, 'A exited cleanly on SIGINT', { output: a.output() })
  t.ok(Date.now() - sentAt < graceMs + 5000, 'within the grace + 5 s')
  t.equal(closeReason(res.events), 'shutdown')
  const streamId = res.headers['x-stream-id'] as string
  const rest = await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { headers: { 'last-event-id': String(lastIdOf(res.events)) }, timeoutMs: 10_000 })
  t.equal(closeReason(rest.events), 'shutdown')
  const whole = await collectSse(`${b.url}/v1/chat/stream/${streamId}`, { timeoutMs: 10_000 })
  t.same([...idsOf(res.events), ...idsOf(rest.events)], idsOf(whole.events), 'A + B = the journal, each event once')
  t.equal(textOf(res.events) + textOf(rest.events), textOf(whole.events))
  t.ok(answer.join('').startsWith(textOf(whole.events)), 'a prefix of the answer')
})
