/**
 * Redis restarts empty (no persistence) while a channel is read: channels live in Redis only, so
 * its id counter is gone and would start again at 1, and a reader at id N would silently skip the
 * next N events (its live read continues after N), or be told `producer_lost` after a lease time.
 * The instances reading a channel know the last id they read: they seed it again, and the
 * channel's ids continue after it. The reader gets every event published after Redis is back,
 * with ids that continue its own, and no error.
 */
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startRedis } from '../fixtures/redis.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import type { CollectedEvent } from '../fixtures/sse-client.js'
import { waitUntil, waitUntilOk } from '../fixtures/wait.js'

const PUBLISH_KEY = 'restart-publisher'

async function publish (relay: RunningRelay, channel: string, data: unknown): Promise<{ status: number, ids?: number[] }> {
  const res = await fetch(`${relay.url}/v1/channels/${channel}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${PUBLISH_KEY}` },
    body: JSON.stringify({ data })
  })
  const body = await res.json() as { ids?: number[] }
  return { status: res.status, ids: body.ids }
}

t.test('Redis restarted empty: a channel\'s ids continue after the last one read, and its reader misses nothing', async (t) => {
  const redis = await startRedis()
  t.teardown(async () => { await redis.destroy() })
  const mock = await startMockUpstream()
  t.teardown(async () => { await mock.close() })
  const env = { REDIS_URL: redis.url, UPSTREAM_URL: mock.url, RELAY_PUBLISH_KEYS: PUBLISH_KEY }
  // The reader is on B, the publisher talks to A.
  const a = await startRelay({ env })
  t.teardown(async () => { await a.close() })
  const b = await startRelay({ env })
  t.teardown(async () => { await b.close() })

  const events: CollectedEvent[] = []
  const reading = collectSse(`${b.url}/v1/channels/news/stream`, {
    onEvent: (e) => { events.push(e) },
    until: (e) => e.event === 'error' || e.event === 'close' || (e.data.startsWith('"after-3') && e.id !== undefined),
    timeoutMs: 30_000
  })
  // The reader is subscribed once a first event published after it arrives.
  await waitUntil(async () => {
    await publish(a, 'news', 'warm-up')
    return events.length > 0
  }, 5000, 'the reader to be subscribed')
  for (const n of [1, 2]) t.equal((await publish(a, 'news', `before-${n}`)).status, 202)
  // (However many warm-ups it took, the last event before the restart is before-2.)
  await waitUntil(() => events.some((e) => e.data === '"before-2"'), 5000, 'before-2 on B')
  const lastBefore = Number(events.at(-1)?.id)

  await redis.stop()
  await redis.restart()
  for (const relay of [a, b]) await waitUntilOk(async () => (await fetch(`${relay.url}/readyz`)).status === 200, 10_000, 'ready again')

  // A publisher retries until Redis takes the event; the channel's ids go on after B's last one.
  const after: number[] = []
  for (const n of [1, 2, 3]) {
    let published: { status: number, ids?: number[] } = { status: 0 }
    await waitUntilOk(async () => {
      published = await publish(a, 'news', `after-${n}`)
      return published.status === 202
    }, 10_000, `publish after-${n}`)
    after.push(...(published.ids ?? []))
  }
  t.ok(after.every((id) => id > lastBefore), `ids after the restart (${after.join(', ')}) continue after ${lastBefore}`)

  const res = await reading
  t.notOk(res.events.some((e) => e.event === 'error'), 'no error: the channel did not end')
  const later = res.events.filter((e) => Number(e.id) > lastBefore)
  t.same(later.map((e) => JSON.parse(e.data)), ['after-1', 'after-2', 'after-3'], 'every event published after the restart, in order')
  t.same(later.map((e) => Number(e.id)), after, 'under the ids the publisher was given')
})
