// /metrics protection (README "Logs and metrics"): a bearer key (METRICS_KEY) answered with the
// relay's 401 error shape, and a listener of its own (METRICS_PORT) that the main port then does
// not serve. Real sockets on 127.0.0.1.
import t from 'tap'
import { buildApp } from '../../app.js'
import { freePort, holdPort } from '../fixtures/free-port.js'
import { startRelay } from '../fixtures/relay.js'

const METRICS_KEY = 'scrape-key-1'

t.test('METRICS_KEY: /metrics needs the bearer key; the rest of the relay does not', async (t) => {
  const relay = await startRelay({ env: { METRICS_KEY } })
  t.teardown(() => relay.close())

  const none = await fetch(`${relay.url}/metrics`)
  t.equal(none.status, 401)
  t.equal(none.headers.get('www-authenticate'), 'Bearer realm="metrics"')
  t.match(none.headers.get('content-type'), /^application\/json/)
  t.same(await none.json(), { error: { code: 'unauthorized', message: 'missing bearer token (METRICS_KEY is set)' } })

  const wrong = await fetch(`${relay.url}/metrics`, { headers: { authorization: 'Bearer scrape-key-2' } })
  t.equal(wrong.status, 401)
  t.same(await wrong.json(), { error: { code: 'unauthorized', message: 'invalid metrics key' } })

  const right = await fetch(`${relay.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } })
  t.equal(right.status, 200)
  t.match(right.headers.get('content-type'), /^text\/plain/)
  t.match(await right.text(), /^# TYPE relay_tokens_total counter$/m)

  t.equal((await fetch(`${relay.url}/healthz`)).status, 200, 'other routes need no metrics key')
})

t.test('METRICS_PORT: /metrics on its own listener only', async (t) => {
  const port = await freePort()
  const relay = await startRelay({ env: { METRICS_PORT: String(port), METRICS_KEY } })
  t.teardown(() => relay.close())
  const apart = `http://127.0.0.1:${port}`

  const main = await fetch(`${relay.url}/metrics`)
  // Outside /v1 the service answers an unknown route with Fastify's own 404 (test/relay/api-scope.test.ts).
  t.equal(main.status, 404, 'not on the main port')
  t.notMatch(await main.text(), /relay_/, 'no metric in the answer')

  const scrape = await fetch(`${apart}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } })
  t.equal(scrape.status, 200)
  t.match(await scrape.text(), /^# TYPE relay_tokens_total counter$/m)
  t.equal((await fetch(`${apart}/metrics`)).status, 401, 'the key applies there too')

  const other = await fetch(`${apart}/healthz`)
  t.equal(other.status, 404)
  t.same(await other.json(), { error: { code: 'not_found', message: 'this port serves GET /metrics only' } })

  await relay.close()
  await t.rejects(fetch(`${apart}/metrics`), 'the metrics listener closes with the app')
})

t.test('METRICS_PORT already in use: the boot fails naming METRICS_PORT', async (t) => {
  const port = await holdPort(t)
  const app = await buildApp({ env: { HOST: '127.0.0.1', METRICS_PORT: String(port) }, logger: false })
  t.teardown(() => app.close())
  await t.rejects(app.listen({ host: '127.0.0.1', port: 0 }), { name: 'ConfigError', message: `port ${port} on 127.0.0.1 is in use (set METRICS_PORT)` })
})
