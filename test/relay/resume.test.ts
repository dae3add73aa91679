import t from 'tap'
import { closeReason, startStack, textOf, untilClose, waitUntil } from '../fixtures/stack.js'

const TOKENS = ['One', ' two', '\nthree', ' four', ' five\r\n', ' six', ' 😀', ' eight']

t.test('resume from every id of a finished generation reconstructs the exact rest', async (t) => {
  const stack = await startStack(t)
  const streamId = await stack.create({ tokens: TOKENS, tokenDelayMs: 0, firstTokenDelayMs: 0 })
  const full = await stack.read(streamId, { until: untilClose })
  t.equal(textOf(full.events), TOKENS.join(''))
  const numbered = full.events.filter((e) => e.id !== undefined)
  const lastId = Number(numbered.at(-1)?.id)
  t.equal(numbered.at(-1)?.data, '[DONE]')
  for (let after = 0; after <= lastId; after++) {
    const useQuery = after % 2 === 1
    const res = useQuery
      ? await stack.read(`${streamId}?lastEventId=${after}`, { until: untilClose })
      : await stack.read(streamId, { until: untilClose, headers: { 'last-event-id': String(after) } })
    const expected = numbered.slice(after)
    t.same(res.events.filter((e) => e.id !== undefined).map((e) => [e.id, e.data]), expected.map((e) => [e.id, e.data]),
      `after ${after} (${useQuery ? 'query' : 'header'}): exactly the events after it`)
    t.equal(closeReason(res.events), 'done')
  }
  const afterLast = await stack.read(streamId, { until: untilClose, headers: { 'last-event-id': String(lastId) } })
  t.same(afterLast.events.map((e) => e.event), ['close'], 'after the last id: just close')
})

t.test('a client dropped mid-answer resumes live with no gap and no duplicate', async (t) => {
  const stack = await startStack(t, { DETACH_GRACE_MS: '5000' })
  const tokens = Array.from({ length: 30 }, (_, i) => `t${i} `)
  const first = await stack.stream({ tokens, tokenDelayMs: 30, firstTokenDelayMs: 0 }, { until: (_e, all) => all.length >= 5 })
  t.ok(first.aborted, 'the first client left mid-answer')
  const streamId = first.headers['x-stream-id'] as string
  const lastId = first.events.at(-1)?.id as string
  const rest = await stack.read(streamId, { until: untilClose, headers: { 'last-event-id': lastId } })
  t.equal(textOf(first.events) + textOf(rest.events), tokens.join(''), 'the two halves make the exact text')
  const ids = [...first.events, ...rest.events].filter((e) => e.id !== undefined).map((e) => Number(e.id))
  t.same(ids, ids.map((_, i) => i + 1), 'ids continue with no gap and no duplicate')
  t.equal(closeReason(rest.events), 'done')
})

t.test('two readers of one generation each get every event once', async (t) => {
  const stack = await startStack(t)
  const tokens = Array.from({ length: 20 }, (_, i) => `w${i} `)
  const streamId = await stack.create({ tokens, tokenDelayMs: 20, firstTokenDelayMs: 50 })
  const [a, b] = await Promise.all([stack.read(streamId, { until: untilClose }), stack.read(streamId, { until: untilClose })])
  for (const res of [a, b]) {
    t.equal(textOf(res.events), tokens.join(''))
    const ids = res.events.filter((e) => e.id !== undefined).map((e) => Number(e.id))
    t.same(ids, ids.map((_, i) => i + 1))
    t.equal(closeReason(res.events), 'done')
  }
})

t.test('unknown streams are 404 JSON; a bad Last-Event-ID is 400', async (t) => {
  const stack = await startStack(t)
  const res = await fetch(`${stack.relay.url}/v1/chat/stream/AAAAAAAAAAAAAAAAAAAAAA`)
  t.equal(res.status, 404)
  t.same((await res.json() as { error: { code: string } }).error.code, 'not_found')
  const streamId = await stack.create({ tokens: ['a'], firstTokenDelayMs: 0 })
  const bad = await fetch(`${stack.relay.url}/v1/chat/stream/${streamId}`, { headers: { 'last-event-id': 'abc' } })
  t.equal(bad.status, 400)
  const json = await bad.json() as { error: { code: string, message: string } }
  t.equal(json.error.code, 'invalid_last_event_id')
  t.match(json.error.message, /Last-Event-ID/)
})

t.test('a finished generation is replayable for RETAIN_MS, then 404', async (t) => {
  const stack = await startStack(t, { RETAIN_MS: '300' })
  const streamId = await stack.create({ tokens: ['a', 'b'], tokenDelayMs: 0, firstTokenDelayMs: 0 })
  const res = await stack.read(streamId, { until: untilClose })
  t.equal(textOf(res.events), 'ab')
  await waitUntil(async () => (await fetch(`${stack.relay.url}/v1/chat/stream/${streamId}`, { method: 'HEAD' }).then((r) => r.status)) === 404, 3000, 'expiry')
  const gone = await fetch(`${stack.relay.url}/v1/chat/stream/${streamId}`)
  t.equal(gone.status, 404)
})
