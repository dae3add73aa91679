import t from 'tap'
import type { Test } from 'tap'
import { Channels } from '../../lib/relay/channels.js'
import { MemoryStore } from '../../lib/relay/stores/memory.js'
import { startRelay } from '../fixtures/relay.js'
import type { RunningRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import type { CollectedEvent } from '../fixtures/sse-client.js'
import { closeReason, untilClose, waitUntil } from '../fixtures/stack.js'

const start = async (t: Test, env: Record<string, string> = {}, authorizeChannel?: (r: { headers: Record<string, unknown> }, c: string) => boolean): Promise<RunningRelay> => {
  const relay = await startRelay({ env, authorizeChannel })
  t.teardown(relay.close)
  return relay
}
const dataOf = (events: readonly CollectedEvent[]): unknown[] => events.filter((e) => e.event !== 'close').map((e) => JSON.parse(e.data))

t.test('a reader gets what was published before it came, then what follows, each once', async (t) => {
  const relay = await start(t)
  t.same(await relay.app.channels.publish('order:1', [{ data: { progress: 10 } }, { data: { progress: 20 }, event: 'progress' }]), [1, 2])
  const seen: CollectedEvent[] = []
  const reading = collectSse(`${relay.url}/v1/channels/order:1/stream`, { until: untilClose, onEvent: (e) => seen.push(e) })
  await waitUntil(() => seen.length === 2)
  t.same(await relay.app.channels.publish('order:1', { data: 'done at 100%' }), [3])
  await relay.app.channels.close('order:1')
  const res = await reading
  t.same(dataOf(res.events), [{ progress: 10 }, { progress: 20 }, 'done at 100%'])
  t.same(res.events.map((e) => e.event), [undefined, 'progress', undefined, 'close'])
  t.same(res.events.filter((e) => e.id !== undefined).map((e) => e.id), ['1', '2', '3'])
  t.equal(closeReason(res.events), 'done')
})

t.test('resume from every id, and ten readers each get every event once', async (t) => {
  const relay = await start(t)
  const readers = Array.from({ length: 10 }, async () => await collectSse(`${relay.url}/v1/channels/ticker/stream`, { until: untilClose }))
  // Readers connect while events are published: each still gets every event once.
  await new Promise((resolve) => setTimeout(resolve, 50))
  for (let i = 1; i <= 20; i++) await relay.app.channels.publish('ticker', { data: { price: i } })
  await relay.app.channels.close('ticker')
  for (const res of await Promise.all(readers)) {
    t.same(dataOf(res.events), Array.from({ length: 20 }, (_, i) => ({ price: i + 1 })))
  }
  for (let after = 0; after <= 20; after++) {
    const res = await collectSse(`${relay.url}/v1/channels/ticker/stream`, { until: untilClose, headers: { 'last-event-id': String(after) } })
    t.same(res.events.filter((e) => e.id !== undefined).map((e) => Number(e.id)), Array.from({ length: 20 - after }, (_, i) => after + i + 1), `after ${after}`)
  }
})

t.test('an authorization hook hides channels: 404, like a channel that cannot exist', async (t) => {
  const relay = await start(t, {}, (request, channel) => channel === `user:${String(request.headers['x-user'])}`)
  await relay.app.channels.publish('user:ann', { data: 'for ann' })
  await relay.app.channels.close('user:ann')
  const ann = await collectSse(`${relay.url}/v1/channels/user:ann/stream`, { until: untilClose, headers: { 'x-user': 'ann' } })
  t.same(dataOf(ann.events), ['for ann'])
  const bob = await fetch(`${relay.url}/v1/channels/user:ann/stream`, { headers: { 'x-user': 'bob' } })
  t.equal(bob.status, 404)
  t.equal((await bob.json() as { error: { code: string } }).error.code, 'not_found')
})

t.test('publishing over HTTP needs a publish key; bad names and bodies get 400', async (t) => {
  const closed = await start(t)
  const off = await fetch(`${closed.url}/v1/channels/a/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":1}' })
  t.equal(off.status, 403, 'disabled without RELAY_PUBLISH_KEYS')
  t.equal((await off.json() as { error: { code: string } }).error.code, 'publishing_disabled')

  const relay = await start(t, { RELAY_PUBLISH_KEYS: 'pub-1', RELAY_API_KEYS: 'reader-1' })
  const publish = async (channel: string, body: string, key?: string): Promise<{ status: number, json: Record<string, unknown> }> => {
    const res = await fetch(`${relay.url}/v1/channels/${channel}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
      body
    })
    return { status: res.status, json: await res.json() as Record<string, unknown> }
  }
  t.equal((await publish('jobs', '{"data":1}')).status, 401, 'no key')
  t.equal((await publish('jobs', '{"data":1}', 'reader-1')).status, 401, 'an API key is not a publish key')
  t.same(await publish('jobs', '{"data":{"step":1}}', 'pub-1'), { status: 202, json: { ids: [1] } })
  t.same(await publish('jobs', '[{"data":2},{"data":3,"event":"step"}]', 'pub-1'), { status: 202, json: { ids: [2, 3] } })
  const bad: Array<[string, string, RegExp]> = [
    ['jobs', '{"nodata":1}', /data/],
    ['jobs', '[]', /array/],
    ['jobs', '"text"', /event/],
    ['jobs', '{"data":1,"event":"close"}', /close/],
    ['jobs', '{"data":1,"event":"a b"}', /event/],
    ['jobs', '{"data":1,"event":"error"}', /error/],
    // A line break in the name would let a publisher forge fields of the frame.
    ['jobs', '{"data":1,"event":"x\\ndata: forged"}', /event/],
    ['jobs', '{"data":1,"event":"x\\r"}', /event/],
    ['jobs', '{"data":1,"event":7}', /event/],
    ['jobs', `{"data":${'['.repeat(200)}${']'.repeat(200)}}`, /nests deeper/],
    ['bad%20name', '{"data":1}', /channel/]
  ]
  for (const [channel, body, message] of bad) {
    const res = await publish(channel, body, 'pub-1')
    t.equal(res.status, 400, `${channel} ${body}: 400`)
    t.match((res.json.error as { message: string }).message, message)
  }
  const noReaderKey = await fetch(`${relay.url}/v1/channels/jobs/stream`)
  t.equal(noReaderKey.status, 401, 'reading needs an API key when keys are set')
  await relay.app.channels.close('jobs')
  const res = await collectSse(`${relay.url}/v1/channels/jobs/stream`, { until: untilClose, headers: { authorization: 'Bearer reader-1' } })
  t.same(dataOf(res.events), [{ step: 1 }, 2, 3])
  await t.rejects(relay.app.channels.publish('no spaces', { data: 1 }), TypeError)
})

t.test('retention keeps the newest events; memory stays bounded', async (t) => {
  const store = new MemoryStore({ retainMs: 60_000 })
  t.teardown(() => store.close())
  const channels = new Channels({ store, retention: { maxEvents: 5 } })
  for (let i = 1; i <= 12; i++) await channels.publish('c', { data: i })
  const got: number[] = []
  const stop = await channels.read('c', 0, { onEntries: (entries) => { for (const e of entries) got.push(e.id) }, onEnd: () => {} })
  stop()
  t.same(got, [8, 9, 10, 11, 12], 'the five newest')
  const bytes = store.bytes
  for (let i = 0; i < 100; i++) await channels.publish('c', { data: i })
  t.ok(Math.abs(store.bytes - bytes) < 100, 'a hundred more events, the same memory: only five are held')
})

t.test('retention: a limit given as undefined takes its default; a bad one is a TypeError naming it', async (t) => {
  const store = new MemoryStore({ retainMs: 60_000 })
  t.teardown(() => store.close())
  const channels = new Channels({ store, retention: { maxEvents: undefined, maxAgeMs: 1000 } })
  t.same(channels.retention, { maxEvents: 1000, maxAgeMs: 1000 })
  t.same(await channels.publish('c', [{ data: 1 }, { data: 2 }]), [1, 2], 'and publishing works')
  for (const [retention, name] of [[{ maxEvents: 0 }, 'maxEvents'], [{ maxAgeMs: -1 }, 'maxAgeMs'], [{ maxEvents: 1.5 }, 'maxEvents'], [{ maxAgeMs: Number.NaN }, 'maxAgeMs']] as const) {
    t.throws(() => new Channels({ store, retention }), { name: 'TypeError', message: new RegExp(`retention\\.${name}`) }, JSON.stringify(retention))
  }
})
