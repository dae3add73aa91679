/**
 * This relay, as `npm start` runs it (the compiled `dist/app.js`'s `buildApp` with the environment: UPSTREAM_URL, HEARTBEAT_MS,
 * MAX_STREAMS, MAX_STREAMS_PER_CLIENT, LOG_LEVEL, REDIS_URL…), plus the bench side channel
 * (port and event-loop delay over IPC; the broadcast scenario's publisher). app.ts is not changed
 * for the bench.
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { buildApp as BuildApp } from '../../app.js'
import { serve } from './harness.js'

// The compiled service, as `npm start` runs it (bench/run.ts builds dist/ first); BENCH_RELAY_DIST:
// another build's dist/ (`npm run bench -- --base=<dir>`).
const dist = process.env.BENCH_RELAY_DIST
const appUrl = dist === undefined ? new URL('../../dist/app.js', import.meta.url).href : pathToFileURL(join(dist, 'app.js')).href
const { buildApp } = await import(appUrl) as { buildApp: typeof BuildApp }
const app = await buildApp({ env: process.env })
// The broadcast scenario publishes in-process, as an application job would (app.channels.publish).
await serve(app, { publish: async (channel, data) => await app.channels.publish(channel, { data }) })
