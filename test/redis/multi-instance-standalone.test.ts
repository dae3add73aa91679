/**
 * Two relay instances on a single redis-server: resume, DELETE, supersede, limits, channels and
 * a producer killed with SIGKILL, across instances (test/fixtures/multi-instance.ts).
 */
import t from 'tap'
import { multiInstanceSuite } from '../fixtures/multi-instance.js'
import { startTopology } from '../fixtures/redis-topology.js'

const redis = await startTopology('standalone')
t.teardown(async () => { await redis.destroy() })

multiInstanceSuite(t, redis)
