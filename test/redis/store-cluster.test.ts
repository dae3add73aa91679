/**
 * The Redis store on a Redis Cluster of 3 masters, with a password: the store contract
 * (test/fixtures/store-contract.ts), then what only a Cluster does.
 */
import t from 'tap'
import type { Redis } from 'ioredis'
import { keySlot, RedisKeys } from '../../lib/relay/stores/redis/keys.js'
import type { RunningRedis } from '../fixtures/redis.js'
import { startTopology } from '../fixtures/redis-topology.js'
import { redisContract } from '../fixtures/redis-contract.js'

const redis = await startTopology('cluster', { password: 'contract-secret' })
t.teardown(async () => { await redis.destroy() })

redisContract(t, redis)

t.test('keys: one partition\'s keys and channel share a slot (the server\'s CLUSTER KEYSLOT says so), and the partitions spread evenly over the masters', async (t) => {
  const keys = new RedisKeys('relay:', 64)
  const admin = redis.cluster?.admin(redis.cluster.nodes[0] as RunningRedis) as Redis
  for (const name of ['abc', 'stream-XYZ_01', 'channel:orders.42', 'ip:127.0.0.1']) {
    const partition = keys.partitionOf(name)
    const names = [keys.log(name), keys.meta(name), keys.notify(partition), keys.slots(name), keys.active(name), keys.control(name)]
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
