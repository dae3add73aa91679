/**
 * Two relay instances on a Sentinel setup (with a password): resume, DELETE, supersede, limits, channels and
 * a producer killed with SIGKILL, across instances (test/fixtures/multi-instance.ts).
 */
import t from 'tap'
import { multiInstanceSuite } from '../fixtures/multi-instance.js'
import { startTopology } from '../fixtures/redis-topology.js'

const redis = await startTopology('sentinel', { password: 'multi-secret' })
t.teardown(async () => { await redis.destroy() })

multiInstanceSuite(t, redis)
