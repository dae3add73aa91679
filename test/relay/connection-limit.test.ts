// MAX_CONNECTIONS_PER_CLIENT (README "Configuration"): open streams of every kind — channels,
// demos, generation streams, resumes — count against one per-client limit; over it a 429 in the
// error shape with retry-after, before any generation starts; a stream of any kind that closes
// gives its place back. Real sockets on 127.0.0.1, one client (one address).
import t from 'tap'
import { startStack, waitUntil } from '../fixtures/stack.js'

interface Held { status: number, streamId: string | null, close: () => void }

t.test('with a limit of 2, a third stream of another kind gets 429, and a closed one frees its place', async (t) => {
  const stack = await startStack(t, { MAX_CONNECTIONS_PER_CLIENT: '2' })
  const { url, app } = stack.relay
  const open = (): number => app.relayConnections.count('ip:127.0.0.1')
  const held: Held[] = []
  t.teardown(() => { for (const h of held) h.close() })

  /** Opens a request and keeps it open (an SSE stream answers its headers at once). */
  const hold = async (path: string, init: RequestInit = {}): Promise<Held & { body: string }> => {
    const controller = new AbortController()
    const res = await fetch(`${url}${path}`, { ...init, signal: controller.signal })
    const h = { status: res.status, streamId: res.headers.get('x-stream-id'), close: () => controller.abort(), body: '' }
    if (res.status !== 200) {
      h.body = await res.text()
      t.equal(res.headers.get('retry-after'), '1', `${path}: retry-after`)
    } else {
      held.push(h)
    }
    return h
  }
  const generation = (tokens = 40): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], mock: { tokens: Array.from({ length: tokens }, () => 'x'), tokenDelayMs: 50, firstTokenDelayMs: 0 } })
  })
  const refused = (h: Held & { body: string }, what: string): void => {
    t.equal(h.status, 429, `${what}: 429`)
    t.same(JSON.parse(h.body), { error: { code: 'too_many_connections', message: 'at most 2 open streams per client' } }, `${what}: the error shape`)
  }

  const channel = await hold('/v1/channels/news/stream')
  t.equal(channel.status, 200, 'a channel stream')
  const clock = await hold('/demo/clock')
  t.equal(clock.status, 200, 'a demo stream')
  t.equal(open(), 2)

  const upstreamCalls = stack.mock.requests.length
  refused(await hold('/v1/chat/stream', generation()), 'a generation stream')
  t.equal(stack.mock.requests.length, upstreamCalls, 'refused before any generation started')
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'other routes are not limited')
  t.equal(open(), 2, 'a refused request takes no place')

  channel.close()
  await waitUntil(() => open() === 1, 3000, 'the channel stream released')
  const answer = await hold('/v1/chat/stream', generation())
  t.equal(answer.status, 200, 'a generation stream once the channel closed')
  t.ok(answer.streamId)

  refused(await hold(`/v1/chat/stream/${answer.streamId ?? ''}`, { headers: { 'last-event-id': '1' } }), 'a resume')
  clock.close()
  await waitUntil(() => open() === 1, 3000, 'the demo stream released')
  const resume = await hold(`/v1/chat/stream/${answer.streamId ?? ''}`, { headers: { 'last-event-id': '1' } })
  t.equal(resume.status, 200, 'a resume once the demo closed')

  refused(await hold('/demo/typing'), 'a typing demo')
  answer.close()
  resume.close()
  await waitUntil(() => open() === 0, 3000, 'the generation stream and the resume released')
  const typing = await hold('/demo/typing')
  t.equal(typing.status, 200, 'a typing demo once they closed')
  typing.close()
  await waitUntil(() => open() === 0, 3000, 'the typing demo released')
})

t.test('a stream that ends by itself gives its place back too', async (t) => {
  const stack = await startStack(t, { MAX_CONNECTIONS_PER_CLIENT: '1' })
  const { app } = stack.relay
  await stack.stream({ tokens: ['a', 'b'], firstTokenDelayMs: 0, tokenDelayMs: 0 })
  await waitUntil(() => app.relayConnections.count('ip:127.0.0.1') === 0, 3000, 'released at the end')
  const again = await stack.stream({ tokens: ['c'], firstTokenDelayMs: 0, tokenDelayMs: 0 })
  t.equal(again.status, 200, 'the next stream is accepted')
})

t.test('MAX_CONNECTIONS_PER_CLIENT=0: no limit', async (t) => {
  const stack = await startStack(t, { MAX_CONNECTIONS_PER_CLIENT: '0' })
  const controllers = Array.from({ length: 20 }, () => new AbortController())
  t.teardown(() => { for (const c of controllers) c.abort() })
  const statuses = await Promise.all(controllers.map(async (c) => (await fetch(`${stack.relay.url}/demo/clock`, { signal: c.signal })).status))
  t.same(statuses, controllers.map(() => 200), '20 open streams from one client')
})
