/**
 * This relay, as `npm start` runs it (`buildApp` with the environment: UPSTREAM_URL, HEARTBEAT_MS,
 * MAX_STREAMS, MAX_STREAMS_PER_CLIENT, LOG_LEVEL, REDIS_URL…), plus the bench side channel
 * (port and event-loop delay over IPC; the broadcast scenario's publisher). app.ts is not changed
 * for the bench.
 */
import { buildApp } from '../../app.js'
import { serve } from './harness.js'

const app = await buildApp({ env: process.env })
// The broadcast scenario publishes in-process, as an application job would (app.channels.publish).
await serve(app, { publish: async (channel, data) => await app.channels.publish(channel, { data }) })
