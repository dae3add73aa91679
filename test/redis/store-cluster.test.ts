/**
 * The Redis store on a Redis Cluster of 3 masters, with a password: the store contract
 * (test/fixtures/store-contract.ts), then what only a Cluster does.
 */
import t from 'tap'
import type { Cluster, Redis } from 'ioredis'
import { makeEntry } from '../../lib/relay/journal.js'
import type { JournalEntry, JournalMeta } from '../../lib/relay/journal.js'
import { RedisStore } from '../../lib/relay/stores/redis.js'
import { openTopology } from '../../lib/relay/stores/redis/connection.js'
import { keySlot, RedisKeys } from '../../lib/relay/stores/redis/keys.js'
import { collector } from '../fixtures/journal-collector.js'
import type { RunningRedis } from '../fixtures/redis.js'
import type { RunningRedisCluster } from '../fixtures/redis-cluster.js'
import { startTopology } from '../fixtures/redis-topology.js'
import { redisContract, redisPair } from '../fixtures/redis-contract.js'
import { waitUntil } from '../fixtures/wait.js'

const redis = await startTopology('cluster', { password: 'contract-secret' })
t.teardown(async () => { await redis.destroy() })

redisContract(t, redis)

const META: JournalMeta = { kind: 'generation', owner: 'key:a', conversationId: 'c1', createdAt: 1_700_000_000_000 }
const entry = (id: number): JournalEntry => makeEntry(id, JSON.stringify({ type: 'delta', content: `t${id}` }))

t.test('keys: one partition\'s keys and channel share a slot (the server\'s CLUSTER KEYSLOT says so), and the partitions spread evenly over the masters', async (t) => {
  const keys = new RedisKeys('relay:', 64)
  const admin = redis.cluster?.admin(redis.cluster.nodes[0] as RunningRedis) as Redis
  for (const name of ['abc', 'stream-XYZ_01', 'channel:orders.42', 'ip:127.0.0.1']) {
    const partition = keys.partitionOf(name)
    const names = [keys.log(name), keys.meta(name), keys.notify(partition), keys.slots(name), keys.slotTimes(name), keys.active(name), keys.control(name)]
    const slots = await Promise.all(names.map(async (key) => await admin.cluster('KEYSLOT', key)))
    t.same(new Set(slots).size, 1, `${name}: every key and the channel of its partition in one slot`)
    t.equal(keySlot(names[0] as string), slots[0], 'computed as Redis computes it')
  }
  const owners = new Map<number, number>()
  for (let p = 0; p < 64; p++) {
    const slot = keySlot(keys.notify(p))
    t.ok(slot >= Math.floor(p * 16384 / 64) && slot < Math.floor((p + 1) * 16384 / 64), `partition ${p}'s tag falls in its sixty-fourth of the slots (${slot})`)
    const owner = (await redis.cluster?.masterOf(slot))?.port as number
    owners.set(owner, (owners.get(owner) ?? 0) + 1)
  }
  t.same([...owners.values()].sort(), [21, 21, 22], 'the 3 masters hold 21, 21 and 22 of the 64 partitions')
})

t.test('a slot migrated to another master (resharding): writes follow MOVED (and wait out ASK), a reader elsewhere gets every entry and the end within seconds, and no error is counted', async (t) => {
  const errors: string[] = []
  const [a, b] = await redisPair(t, redis, { onError: (code) => errors.push(code), log: (level, msg, fields) => { if (process.env.DEBUG_STORE === '1') console.error(level, msg, fields) } })
  const cluster = redis.cluster as RunningRedisCluster
  const id = 'resharded'
  const slot = keySlot(a.keys.log(id))
  await a.create(id, META)
  a.append(id, [entry(1), entry(2), entry(3)])
  const reader = collector()
  b.subscribe(id, 0, reader)
  await waitUntil(() => reader.entries.length === 3, 5000, 'B to read 3 entries')

  // Moved as redis-cli --cluster reshard moves a slot: IMPORTING, MIGRATING, MIGRATE its keys, then NODE everywhere.
  const source = await cluster.masterOf(slot)
  const target = cluster.nodes.find((node) => node !== source) as RunningRedis
  const [sourceId, targetId] = await Promise.all([source, target].map(async (node) => await cluster.admin(node).cluster('MYID') as string))
  await cluster.admin(target).cluster('SETSLOT', slot, 'IMPORTING', sourceId as string)
  await cluster.admin(source).cluster('SETSLOT', slot, 'MIGRATING', targetId as string)
  for (;;) {
    const keys = await cluster.admin(source).cluster('GETKEYSINSLOT', slot, 100) as string[]
    if (keys.length === 0) break
    await cluster.admin(source).call('MIGRATE', '127.0.0.1', target.port, '', 0, 5000, 'AUTH', cluster.password as string, 'KEYS', ...keys)
  }
  // Mid-migration (the keys moved, the slot not yet handed over) the source answers ASK, which
  // pipelines do not follow: the write waits (retried, not counted as an error) for the handover.
  a.append(id, [entry(4)])
  await new Promise((resolve) => setTimeout(resolve, 300))
  for (const node of cluster.nodes) await cluster.admin(node).cluster('SETSLOT', slot, 'NODE', targetId as string)
  const handedAt = Date.now()
  t.equal(await cluster.masterOf(slot), target, 'the slot is served by another master')
  await waitUntil(() => a.pendingEntries === 0, 5000, 'A to write entry 4')
  t.ok(Date.now() - handedAt < 3000, `the write of entry 4 went through ${Date.now() - handedAt} ms after the handover`)
  const movedAt = Date.now()

  a.append(id, [entry(5), entry(6)])
  a.end(id, 'done')
  await waitUntil(() => reader.reason !== undefined, 15_000, 'B\'s reader to end')
  const took = Date.now() - movedAt
  t.same([reader.entries.map((e) => e.id), reader.reason], [[1, 2, 3, 4, 5, 6], 'done'], 'every entry once, then done')
  t.ok(took < 2500, `within ${took} ms (its notifications followed the slot: no wait for the 5-s poll)`)
  t.same(await b.state(id), { meta: META, lastId: 6, ended: 'done' }, 'the journal is whole on its new master')
  const other = Array.from({ length: 10_000 }, (_, i) => `again-${i}`).find((name) => a.keys.partitionOf(name) === a.keys.partitionOf(id)) as string
  await a.create(other, META)
  t.match(await b.state(other), { lastId: 0 }, 'a new journal of that partition is made on the new master')
  await waitUntil(() => a.ready && b.ready, 5000, 'both ready')
  t.same(errors, [], 'no Redis error counted (MOVED is followed, not an error)')
})

t.test('REDIS_URL naming a node of a Cluster: one error line naming REDIS_CLUSTER_NODES, never ready, starts refused', async (t) => {
  const cluster = redis.cluster as RunningRedisCluster
  const node = cluster.nodes[0] as RunningRedis
  const lines: Array<{ level: string, msg: string }> = []
  const store = new RedisStore({ url: `redis://:${cluster.password as string}@127.0.0.1:${node.port}`, prefix: 'misconfigured:', log: (level, msg) => lines.push({ level, msg }) })
  t.teardown(async () => { await store.close() })
  await waitUntil(() => lines.some((line) => line.level === 'error'), 5000, 'an error line')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  const errors = lines.filter((line) => line.level === 'error').map((line) => line.msg)
  t.equal(errors.length, 1, `one error line, once (${errors.join(' | ')})`)
  t.match(errors[0], /^REDIS_URL names a node of a Redis Cluster .*REDIS_CLUSTER_NODES/)
  t.notOk(errors[0]?.includes('\n'), 'on one line')
  t.equal(store.ready, false, 'not ready')
  await t.rejects(store.create('g', META), { code: 'store_unavailable', cause: { message: /REDIS_CLUSTER_NODES/ } }, 'a start is refused, saying why')
})

t.test('closed while a refresh of the map of slots is in flight: the client asks Redis nothing more (nothing keeps the process alive)', async (t) => {
  const topology = openTopology(redis.connection, { name: 'refresh-at-close', commandTimeoutMs: 2000 })
  const cmd = topology.cmd as Cluster
  await waitUntil(() => cmd.status === 'ready', 5000, 'the cluster client to be ready')
  let asked = 0
  let closing: Promise<unknown> | undefined
  const refresh = cmd.refreshSlotsCache.bind(cmd)
  cmd.refreshSlotsCache = (callback) => {
    asked++
    refresh(callback)
    // The store closes while the periodic refresh waits for CLUSTER SLOTS.
    closing ??= cmd.quit()
  }
  await waitUntil(() => closing !== undefined, 3000, 'a periodic refresh of the map')
  await closing
  await waitUntil(() => cmd.status === 'end', 3000, 'the client to end')
  const before = asked
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.equal(asked, before, 'no refresh after the end (ioredis\'s own timer re-arms itself when that refresh completes, and asks every second, forever)')
  t.equal(cmd.status, 'end')
})
