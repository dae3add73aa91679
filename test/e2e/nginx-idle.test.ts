// Idle safety: nginx closes an upstream connection that sends nothing for proxy_read_timeout.
// Here that is a deliberate 1 s, the upstream pauses 2.5 s mid-answer, and the relay's
// heartbeats (HEARTBEAT_MS=300) keep bytes flowing, so the answer completes. The control relay
// sends no heartbeats and the same pause cuts its stream: the test measures what it claims.
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startNginx } from '../fixtures/nginx.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { textOf } from './sse-reader.js'

const PAUSE_MS = 2500
const body = {
  messages: [{ role: 'user', content: 'think' }],
  mock: { tokens: ['before the pause, ', 'after it'], firstTokenDelayMs: 0, tokenDelayMs: PAUSE_MS, jitterMs: 0 }
}

const mock = await startMockUpstream()
t.teardown(() => mock.close())

t.test('heartbeats carry a stream across an upstream pause longer than proxy_read_timeout', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, HEARTBEAT_MS: '300' } })
  t.teardown(() => relay.close())
  const nginx = await startNginx({ relays: [`127.0.0.1:${relay.port}`], proxyReadTimeout: '1s' })
  t.teardown(() => nginx.stop())

  const res = await collectSse(`${nginx.httpUrl}/v1/chat/stream`, { method: 'POST', body, timeoutMs: 10_000 })
  t.equal(res.status, 200)
  t.equal(textOf(res.events), 'before the pause, after it')
  t.same(res.events.slice(-2).map((e) => [e.event, e.data]), [[undefined, '[DONE]'], ['close', '{"reason":"done"}']])
  t.ok(res.comments >= 5, `${res.comments} heartbeats during the ${PAUSE_MS} ms pause`)
  const at = res.events.map((e) => e.at)
  t.comment(`pause of ${((at.at(-1) ?? 0) - (at[0] ?? 0)).toFixed(0)} ms survived a 1 s proxy_read_timeout with ${res.comments} pings`)
  t.notMatch(nginx.errorLog(), /upstream timed out/)
})

t.test('control: without heartbeats, nginx cuts the same stream at proxy_read_timeout', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, HEARTBEAT_MS: '0' } })
  t.teardown(() => relay.close())
  const nginx = await startNginx({ relays: [`127.0.0.1:${relay.port}`], proxyReadTimeout: '1s' })
  t.teardown(() => nginx.stop())

  const res = await collectSse(`${nginx.httpUrl}/v1/chat/stream`, { method: 'POST', body, timeoutMs: 10_000 })
  t.equal(res.status, 200)
  t.equal(textOf(res.events), 'before the pause, ', 'only what came before the pause')
  t.notOk(res.events.some((e) => e.event === 'close' || e.data === '[DONE]'), 'no [DONE], no close: the reader can tell it was cut')
  t.equal(res.comments, 0)
  t.match(nginx.errorLog(), /upstream timed out/)
})
