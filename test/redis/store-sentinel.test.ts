/**
 * The Redis store on a Sentinel setup (a master, a replica, three Sentinels), with a password:
 * the store contract (test/fixtures/store-contract.ts), then what only Sentinel does.
 */
import t from 'tap'
import { startTopology } from '../fixtures/redis-topology.js'
import { redisContract } from '../fixtures/redis-contract.js'

const redis = await startTopology('sentinel', { password: 'contract-secret' })
t.teardown(async () => { await redis.destroy() })

redisContract(t, redis)
