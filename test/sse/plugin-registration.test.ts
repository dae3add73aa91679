import t from 'tap'
import { createRequire } from 'node:module'
import Fastify from 'fastify'
import type { FastifyPluginCallback } from 'fastify'
import ssePlugin, { FST_LLM_RELAY_SSE_CONFLICT } from '../../plugins/sse.js'
import type { SsePluginOptions } from '../../plugins/sse.js'
import { collectSse } from '../fixtures/sse-client.js'
import { startApp } from '../fixtures/sse-server.js'

// Loaded without its types on purpose: they declare `FastifyReply.sse` too, which is the very
// conflict this plugin refuses (and would break the type of reply.sse for the whole project).
const fastifySse = createRequire(import.meta.url)('@fastify/sse') as FastifyPluginCallback

t.test('invalid plugin options fail the boot with a message naming the option', async (t) => {
  const cases: Array<[SsePluginOptions, RegExp]> = [
    [{ heartbeatMs: -1 }, /^fastify-llm-relay-sse: heartbeatMs must be a non-negative integer .*\(got -1\)$/],
    [{ heartbeatMs: 1.5 }, /heartbeatMs must be a non-negative integer/],
    [{ heartbeatMs: '100' as unknown as number }, /heartbeatMs must be a non-negative integer .*\(got "100"\)/],
    [{ timeoutMs: Number.NaN }, /timeoutMs must be a non-negative integer/],
    [{ timeoutMs: 2 ** 31 }, /timeoutMs must be a non-negative integer no larger than 2147483647/],
    [{ maxBufferedBytes: 0 }, /maxBufferedBytes must be a positive integer \(got 0\)/],
    [{ retry: -3 }, /retry must be a non-negative integer/],
    [{ flushHeaders: 'yes' as unknown as boolean }, /flushHeaders must be a boolean/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(ssePlugin, options).ready() }, { name: 'TypeError', message }, JSON.stringify(options))
    await app.close()
  }
})

t.test('plugin options are the defaults of every reply.sse(); call options override them', async (t) => {
  const { url } = await startApp(t, (app) => {
    app.get('/defaults', async (_req, reply) => {
      const stream = reply.sse()
      setTimeout(() => { stream.close() }, 300)
    })
    app.get('/override', async (_req, reply) => {
      const stream = reply.sse({ retry: undefined, heartbeatMs: 0 })
      setTimeout(() => { stream.close() }, 300)
    })
    app.get('/undefined', async (_req, reply) => {
      const stream = reply.sse({ heartbeatMs: undefined })
      setTimeout(() => { stream.close() }, 300)
    })
  }, { plugin: { retry: 500, heartbeatMs: 30 } })
  const defaults = await collectSse(`${url}/defaults`)
  t.same(defaults.retries, [500])
  t.ok(defaults.comments >= 2, `plugin heartbeat applies (${defaults.comments} pings)`)
  const override = await collectSse(`${url}/override`)
  t.same(override.retries, [], 'retry: undefined in the call means no retry line')
  t.equal(override.comments, 0)
  const undef = await collectSse(`${url}/undefined`)
  t.same(undef.retries, [500])
  t.ok(undef.comments >= 2, `heartbeatMs: undefined in the call keeps the plugin's (${undef.comments} pings)`)
})

t.test('invalid call options, or a second reply.sse(): a normal 500, no half-open stream', async (t) => {
  const { app } = await startApp(t, (app) => {
    app.get('/bad', async (_req, reply) => {
      reply.sse({ maxBufferedBytes: -5 })
    })
    app.get('/not-an-object', async (_req, reply) => {
      reply.sse(5 as never)
    })
    app.get('/twice', async (_req, reply) => {
      reply.sse().close()
      reply.sse()
    })
  }, { listen: false })
  const bad = await app.inject({ url: '/bad' })
  t.equal(bad.statusCode, 500)
  t.equal(bad.headers['content-type'], 'application/json; charset=utf-8')
  t.match(bad.json(), { message: /^reply\.sse\(\): maxBufferedBytes must be a positive integer/ })

  const notObject = await app.inject({ url: '/not-an-object' })
  t.equal(notObject.statusCode, 500)
  t.match(notObject.json(), { message: /^reply\.sse\(\): options must be an object/ })

  const twice = await app.inject({ url: '/twice' })
  t.equal(twice.statusCode, 200, 'the first stream stands')
  t.equal(twice.payload, 'retry: 3000\n\nevent: close\ndata: {"reason":"done"}\n\n')
})

t.test('@fastify/sse on the same instance is refused at boot, whatever the order', async (t) => {
  const before = Fastify()
  before.register(fastifySse)
  before.register(ssePlugin)
  await t.rejects(async () => { await before.ready() }, { code: 'FST_LLM_RELAY_SSE_CONFLICT', message: /@fastify\/sse is registered on this instance.*register only one/ })
  await before.close()

  const after = Fastify()
  after.register(ssePlugin)
  after.register(fastifySse)
  await t.rejects(async () => { await after.ready() }, FST_LLM_RELAY_SSE_CONFLICT, 'registered after, no routes: caught at ready')
  await after.close()

  const child = Fastify()
  child.register(ssePlugin)
  child.register(async (scope) => {
    await scope.register(fastifySse)
    scope.get('/events', { sse: true } as object, async () => {})
  })
  await t.rejects(async () => { await child.ready() }, { code: 'FST_LLM_RELAY_SSE_CONFLICT' }, 'in a child context, with a route')
  await child.close()
})

t.test('registered twice on one instance: a clear error', async (t) => {
  const app = Fastify()
  app.register(ssePlugin)
  app.register(ssePlugin)
  await t.rejects(async () => { await app.ready() }, { code: 'FST_LLM_RELAY_SSE_CONFLICT', message: /reply\.sse is already decorated/ })
  await app.close()
})
