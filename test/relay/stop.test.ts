import t from 'tap'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, startStack, textOf, untilClose, waitUntil } from '../fixtures/stack.js'

const slow = (tag: string, extra: object = {}): Record<string, unknown> =>
  ({ tokens: Array.from({ length: 200 }, (_, i) => `t${i} `), tokenDelayMs: 25, firstTokenDelayMs: 0, tag, ...extra })

t.test('nobody listening: the upstream is aborted after the grace time, a later resume sees abandoned', async (t) => {
  const stack = await startStack(t, { DETACH_GRACE_MS: '300' })
  const first = await stack.stream(slow('grace'), { until: (_e, all) => all.length >= 3 })
  const streamId = first.headers['x-stream-id'] as string
  const record = await stack.mock.waitFor('grace', (r) => r.aborted, 5000)
  t.ok(record.aborted, 'the upstream saw its connection close')
  t.ok(record.tokensSent < 200, 'the upstream stopped before the end')
  const rest = await stack.read(streamId, { until: untilClose, headers: { 'last-event-id': first.events.at(-1)?.id as string } })
  t.equal(closeReason(rest.events), 'abandoned')
  t.notOk(rest.events.some((e) => e.data === '[DONE]'), 'no [DONE] for a cut answer')
})

t.test('POST /v1/chat that nobody ever reads: the upstream is aborted after the grace time', async (t) => {
  const stack = await startStack(t, { DETACH_GRACE_MS: '200' })
  const streamId = await stack.create(slow('unread'))
  const record = await stack.mock.waitFor('unread', (r) => r.aborted, 3000)
  t.ok(record.tokensSent < 200, 'stopped before the end')
  const later = await stack.read(streamId, { until: untilClose })
  t.equal(closeReason(later.events), 'abandoned', 'a late reader learns why')
})

t.test('stream: false, the client leaves: the upstream is aborted after the grace time', async (t) => {
  const stack = await startStack(t, { DETACH_GRACE_MS: '200' })
  const leaving = new AbortController()
  const request = fetch(`${stack.relay.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], mock: slow('unary') }),
    signal: leaving.signal
  }).catch((err: unknown) => err)
  await stack.mock.waitFor('unary', () => true, 3000)
  await new Promise((resolve) => setTimeout(resolve, 200)) // a few tokens in
  leaving.abort()
  t.match(await request, { name: 'AbortError' }, 'the client left')
  const record = await stack.mock.waitFor('unary', (r) => r.aborted, 3000)
  t.ok(record.tokensSent < 200, 'stopped before the end')
})

t.test('a reader back within the grace time keeps the generation alive', async (t) => {
  const stack = await startStack(t, { DETACH_GRACE_MS: '1500' })
  const tokens = Array.from({ length: 40 }, (_, i) => `k${i} `)
  const first = await stack.stream({ tokens, tokenDelayMs: 20, firstTokenDelayMs: 0, tag: 'back' }, { until: (_e, all) => all.length >= 3 })
  await new Promise((resolve) => setTimeout(resolve, 300))
  const rest = await stack.read(first.headers['x-stream-id'] as string, { until: untilClose, headers: { 'last-event-id': first.events.at(-1)?.id as string } })
  t.equal(textOf(first.events) + textOf(rest.events), tokens.join(''))
  t.equal(closeReason(rest.events), 'done')
  t.notOk((await stack.mock.waitFor('back')).aborted)
})

t.test('a client that leaves before the first token: the upstream is aborted after the grace time and the slot is free', async (t) => {
  const stack = await startStack(t, { DETACH_GRACE_MS: '200', MAX_STREAMS_PER_CLIENT: '1' })
  const leaving = new AbortController()
  // The first token would come after 5 s: a relay that waits for it before noticing the client left pays for all of it.
  const waiting = stack.stream({ tokens: ['late'], firstTokenDelayMs: 5000, tag: 'left-early' }, { signal: leaving.signal })
  await stack.mock.waitFor('left-early', () => true, 3000)
  leaving.abort()
  t.ok((await waiting).aborted, 'the client left while the request waited')
  const record = await stack.mock.waitFor('left-early', (r) => r.aborted, 2500)
  t.equal(record.tokensSent, 0, 'the upstream was aborted before its first token')
  const again = await fetch(`${stack.relay.url}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], mock: { tokens: ['ok'], firstTokenDelayMs: 0 } })
  })
  t.equal(again.status, 201, 'the per-client slot (MAX_STREAMS_PER_CLIENT=1) was given back')
})

t.test('DELETE stops the generation at once: readers get cancelled, the upstream is aborted', async (t) => {
  const stack = await startStack(t)
  const streamId = await stack.create(slow('cancel'))
  const reading = stack.read(streamId, {
    until: untilClose,
    onEvent: (e) => {
      if (e.id === '3') void fetch(`${stack.relay.url}/v1/chat/stream/${streamId}`, { method: 'DELETE' })
    }
  })
  const res = await reading
  t.equal(closeReason(res.events), 'cancelled')
  t.notOk(res.events.some((e) => e.data === '[DONE]'))
  const record = await stack.mock.waitFor('cancel', (r) => r.aborted, 3000)
  t.ok(record.aborted)
  const again = await fetch(`${stack.relay.url}/v1/chat/stream/${streamId}`, { method: 'DELETE' })
  t.equal(again.status, 200)
  t.same(await again.json(), { streamId, cancelled: false }, 'cancelling an ended generation is a no-op')
  const unknown = await fetch(`${stack.relay.url}/v1/chat/stream/AAAAAAAAAAAAAAAAAAAAAA`, { method: 'DELETE' })
  t.equal(unknown.status, 404)
})

t.test('DELETE while the request waits for its first token: 409 cancelled', async (t) => {
  const stack = await startStack(t)
  const waiting = stack.stream({ tokens: ['late'], firstTokenDelayMs: 5000, tag: 'early' }, { extra: { conversationId: 'early-conv' } })
  await stack.mock.waitFor('early', () => true)
  let streamId: string | undefined
  await waitUntil(async () => {
    streamId = [...stack.relay.app.relay.local.keys()][0]
    return streamId !== undefined
  })
  await fetch(`${stack.relay.url}/v1/chat/stream/${streamId as string}`, { method: 'DELETE' })
  const res = await waiting
  t.equal(res.status, 409)
  t.same(JSON.parse(res.raw), { error: { code: 'cancelled', message: 'the generation was cancelled before its first token' } })
  t.ok((await stack.mock.waitFor('early', (r) => r.aborted, 3000)).aborted)
})

t.test('a request still waiting for its first token when a newer one in its conversation starts: 409 superseded', async (t) => {
  const stack = await startStack(t)
  const waiting = stack.stream({ tokens: ['late'], firstTokenDelayMs: 5000, tag: 'waiting' }, { extra: { conversationId: 'conv-w' } })
  await stack.mock.waitFor('waiting', () => true, 3000)
  await stack.create({ tokens: ['new'], firstTokenDelayMs: 0, tag: 'newer' }, { conversationId: 'conv-w' })
  const res = await waiting
  t.equal(res.status, 409)
  t.match(JSON.parse(res.raw), { error: { code: 'superseded', message: String } })
  t.ok((await stack.mock.waitFor('waiting', (r) => r.aborted, 3000)).aborted, 'the superseded upstream request was aborted')
})

t.test('GET /v1/conversations/:id/stream resumes after Last-Event-ID like the stream route', async (t) => {
  const stack = await startStack(t)
  const tokens = Array.from({ length: 30 }, (_, i) => `c${i} `)
  await stack.create({ tokens, tokenDelayMs: 20, firstTokenDelayMs: 0 }, { conversationId: 'conv-r' })
  const url = `${stack.relay.url}/v1/conversations/conv-r/stream`
  const first = await collectSse(url, { until: (_e, all) => all.length >= 5 })
  const rest = await collectSse(url, { until: untilClose, headers: { 'last-event-id': first.events.at(-1)?.id as string } })
  t.equal(rest.events[0]?.id, String(Number(first.events.at(-1)?.id) + 1), 'no gap, no duplicate')
  t.equal(textOf(first.events) + textOf(rest.events), tokens.join(''))
  t.equal(closeReason(rest.events), 'done')
})

t.test('a new generation in the same conversation supersedes the active one', async (t) => {
  const stack = await startStack(t)
  const conversationId = 'conv-1'
  const oldId = await stack.create(slow('old'), { conversationId })
  const attached = await collectSse(`${stack.relay.url}/v1/conversations/${conversationId}/stream`, {
    until: untilClose,
    onEvent: (e) => {
      if (e.id === '2') void stack.create({ tokens: ['new'], firstTokenDelayMs: 0, tag: 'new' }, { conversationId })
    }
  })
  t.equal(attached.headers['x-stream-id'], oldId, 'attached to the active generation')
  t.equal(closeReason(attached.events), 'superseded')
  t.ok((await stack.mock.waitFor('old', (r) => r.aborted, 3000)).aborted, 'the old upstream request was aborted')
  await stack.mock.waitFor('new')
  await waitUntil(async () => (await fetch(`${stack.relay.url}/v1/conversations/${conversationId}/stream`)).status === 204, 3000, 'no active generation')
  const none = await fetch(`${stack.relay.url}/v1/conversations/nobody/stream`)
  t.equal(none.status, 204)
})

t.test('STREAM_MAX_DURATION_MS closes a generation with timeout', async (t) => {
  const stack = await startStack(t, { STREAM_MAX_DURATION_MS: '300' })
  const res = await stack.stream(slow('long'), { until: untilClose })
  t.equal(res.status, 200)
  t.equal(closeReason(res.events), 'timeout')
  t.ok((await stack.mock.waitFor('long', (r) => r.aborted, 3000)).aborted)
})
