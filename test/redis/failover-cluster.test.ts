/**
 * Failover mid-stream on a Redis Cluster (3 masters, a replica each), with
 * a password: test/fixtures/failover.ts.
 */
import t from 'tap'
import { failoverSuite } from '../fixtures/failover.js'
import { startTopology } from '../fixtures/redis-topology.js'

const redis = await startTopology('cluster', { replicas: true, password: 'failover-secret' })
t.teardown(async () => { await redis.destroy() })

failoverSuite(t, redis)
