import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { SseEvent } from '../../lib/sse/index.js'
import { collectSse } from '../fixtures/sse-client.js'
import { startApp, waitFor } from '../fixtures/sse-server.js'

/** Fails the test on any unhandled rejection while it runs. */
function noUnhandledRejections (t: { teardown: (fn: () => void) => void, fail: (msg: string) => void }): void {
  const onRejection = (err: unknown): void => { t.fail(`unhandled rejection: ${String(err)}`) }
  process.on('unhandledRejection', onRejection)
  t.teardown(() => { process.off('unhandledRejection', onRejection) })
}

t.test('an async iterable is piped, then closed with reason done (no [DONE])', async (t) => {
  const { url } = await startApp(t, (app) => {
    app.get('/async', async (_req, reply) => {
      reply.sse((async function * () {
        yield { data: 'one' }
        await sleep(5)
        yield { id: 2, event: 'two', data: { n: 2 } }
      })())
    })
    app.get('/array', async (_req, reply) => {
      reply.sse([{ data: 'a' }, { data: 'b' }], { retry: 1000 })
    })
  })
  const res = await collectSse(`${url}/async`)
  t.same(res.events.map((e) => [e.id, e.event, e.data]), [
    [undefined, undefined, 'one'],
    ['2', 'two', '{"n":2}'],
    [undefined, 'close', '{"reason":"done"}']
  ])
  const arr = await collectSse(`${url}/array`)
  t.same(arr.retries, [1000], 'options apply in the iterable form too')
  t.same(arr.events.map((e) => e.data), ['a', 'b', '{"reason":"done"}'])
})

t.test('an iterable that throws: error event, close error, logged, no unhandled rejection', async (t) => {
  noUnhandledRejections(t)
  const logged: unknown[] = []
  const { url } = await startApp(t, (app) => {
    app.addHook('onRequest', async (req) => {
      req.log.error = ((obj: unknown) => { logged.push(obj) }) as typeof req.log.error
    })
    app.get('/throws', async (_req, reply) => {
      reply.sse((async function * () {
        yield { data: 'partial' }
        throw Object.assign(new Error('upstream went away'), { code: 'upstream_error' })
      })())
    })
    app.get('/throws-string', async (_req, reply) => {
      reply.sse((async function * (): AsyncGenerator<SseEvent> {
        throw 'not an Error' // eslint-disable-line no-throw-literal
      })())
    })
  })
  const res = await collectSse(`${url}/throws`)
  t.same(res.events.map((e) => [e.event, e.data]), [
    [undefined, 'partial'],
    ['error', '{"type":"error","code":"upstream_error","message":"upstream went away"}'],
    ['close', '{"reason":"error"}']
  ])
  t.notMatch(res.raw, /\[DONE\]/)
  const str = await collectSse(`${url}/throws-string`)
  t.same(str.events.map((e) => [e.event, e.data]), [
    ['error', '{"type":"error","code":"internal_error","message":"not an Error"}'],
    ['close', '{"reason":"error"}']
  ])
  t.equal(logged.length, 2, 'each failure is logged')
})

t.test('an invalid event from the source: error event, and the source is released', async (t) => {
  noUnhandledRejections(t)
  let cleanedUp = false
  const { url } = await startApp(t, (app) => {
    app.get('/s', async (_req, reply) => {
      reply.sse((async function * () {
        try {
          yield { data: 'fine' }
          yield { event: 'bad\nevent', data: 'x' }
          yield { data: 'never sent' }
        } finally {
          cleanedUp = true
        }
      })())
    })
  })
  const res = await collectSse(`${url}/s`)
  t.same(res.events.map((e) => e.event), [undefined, 'error', 'close'])
  t.match(JSON.parse(res.events[1]?.data ?? '{}'), { type: 'error', message: /"event" must not contain CR, LF or NUL/ })
  await waitFor(() => cleanedUp, 5000, 'the generator finally block')
  t.ok(cleanedUp)
})

t.test('the client leaves: the source is returned (its finally runs)', async (t) => {
  let produced = 0
  let returned = false
  let reason: string | undefined
  const { url } = await startApp(t, (app) => {
    app.get('/forever', async (_req, reply) => {
      const stream = reply.sse((async function * () {
        try {
          for (;;) {
            yield { id: ++produced, data: 'tick' }
            await sleep(10)
          }
        } finally {
          returned = true
        }
      })(), { heartbeatMs: 0 })
      stream.onClose((r) => { reason = r })
    })
  })
  const res = await collectSse(`${url}/forever`, { until: (_e, all) => all.length >= 3 })
  t.ok(res.aborted)
  await waitFor(() => returned, 5000, 'the generator to be returned')
  t.equal(reason, 'client')
  const at = produced
  await sleep(100)
  t.equal(produced, at, 'nothing is produced after return()')
})
