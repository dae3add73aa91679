/**
 * Failover mid-stream on a Sentinel setup (a master, a replica, three Sentinels), with
 * a password: test/fixtures/failover.ts.
 */
import t from 'tap'
import { failoverSuite } from '../fixtures/failover.js'
import { startTopology } from '../fixtures/redis-topology.js'

const redis = await startTopology('sentinel', { replicas: true, password: 'failover-secret' })
t.teardown(async () => { await redis.destroy() })

failoverSuite(t, redis)
