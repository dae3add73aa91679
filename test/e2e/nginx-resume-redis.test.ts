// Resume through nginx across two instances with Redis: the client's connection drops
// mid-answer; it reconnects through nginx with Last-Event-ID, lands on the other relay instance
// (round robin; nginx's access log names the upstream that served each request), and receives
// the rest exactly once — while the generation keeps running on the first instance.
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startNginx } from '../fixtures/nginx.js'
import { startRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { pacedBody, textOf } from './sse-reader.js'

const TOKENS = Array.from({ length: 20 }, (_, i) => `w${i}${i % 7 === 6 ? '\n' : ' '}`)

t.test('a dropped client resumes on the other instance and gets the rest exactly once', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.destroy())
  const mock = await startMockUpstream()
  t.teardown(() => mock.close())
  const env = { UPSTREAM_URL: mock.url, REDIS_URL: redis.url }
  const a = await startRelay({ env })
  t.teardown(() => a.close())
  const b = await startRelay({ env })
  t.teardown(() => b.close())
  const addrA = `127.0.0.1:${a.port}`
  const addrB = `127.0.0.1:${b.port}`
  const nginx = await startNginx({ relays: [addrA, addrB] })
  t.teardown(() => nginx.stop())

  // Part 1: start the answer, read 5 deltas, drop the connection.
  const first = await collectSse(`${nginx.httpUrl}/v1/chat/stream`, {
    method: 'POST',
    body: pacedBody(TOKENS, 100, 'resume-redis'),
    until: (_ev, events) => events.filter((e) => e.data.startsWith('{"type":"delta"')).length === 5
  })
  t.equal(first.status, 200)
  t.ok(first.aborted, 'the client dropped the connection mid-answer')
  const streamId = first.headers['x-stream-id'] as string
  const lastId = first.events.at(-1)?.id as string
  t.ok(streamId, 'x-stream-id')
  t.equal(lastId, '5')

  // Part 2: reconnect through nginx with Last-Event-ID.
  const second = await collectSse(`${nginx.httpUrl}/v1/chat/stream/${streamId}`, {
    headers: { 'last-event-id': lastId },
    timeoutMs: 10_000
  })
  t.equal(second.status, 200)

  // Which instance served each request, by nginx's own account.
  const log = nginx.accessLog()
  const post = log.find((l) => l.startsWith('POST /v1/chat/stream '))
  const get = log.find((l) => l.startsWith(`GET /v1/chat/stream/${streamId} `))
  const servedPost = post?.split(' ').at(-1)
  const servedGet = get?.split(' ').at(-1)
  t.ok(servedPost === addrA || servedPost === addrB, `POST served by a relay (${post})`)
  t.ok(servedGet === addrA || servedGet === addrB, `GET served by a relay (${get})`)
  t.not(servedGet, servedPost, 'the resume landed on the other instance')

  // Exactly once: ids continue from Last-Event-ID with no gap and no repeat; the text is whole.
  const ids = [...first.events, ...second.events].map((e) => e.id).filter((id) => id !== undefined).map(Number)
  t.same(ids, ids.map((_, i) => i + 1), `ids 1..${ids.length}, each once`)
  t.equal(Number(second.events[0]?.id), Number(lastId) + 1, 'the resume starts just after Last-Event-ID')
  t.equal(textOf(first.events) + textOf(second.events), TOKENS.join(''), 'the exact text')
  t.same(second.events.slice(-2).map((e) => [e.event, e.data]), [[undefined, '[DONE]'], ['close', '{"reason":"done"}']])
  t.equal(mock.requests.filter((r) => r.tag === 'resume-redis').length, 1, 'one generation upstream, not two')
})
