// A model silent for longer than nginx's proxy_read_timeout (here a deliberate 1 s; a thinking
// model can be silent for minutes): the stream commits after COMMIT_AFTER_MS and its heartbeats
// keep nginx from cutting it. The control relay never commits early (COMMIT_AFTER_MS=0): nginx
// gives up on it while it waits. A fast failure still reaches the client as its JSON status.
import t from 'tap'
import { startMockUpstream } from '../../mock.js'
import { startNginx } from '../fixtures/nginx.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, textOf, untilClose } from '../fixtures/stack.js'

const SILENCE_MS = 2500
const body = {
  messages: [{ role: 'user', content: 'think hard' }],
  mock: { tokens: ['the ', 'answer'], firstTokenDelayMs: SILENCE_MS, tokenDelayMs: 5, jitterMs: 0 }
}

const mock = await startMockUpstream()
t.teardown(() => mock.close())

t.test('committed after COMMIT_AFTER_MS, heartbeats carry the silence past proxy_read_timeout', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, COMMIT_AFTER_MS: '300', HEARTBEAT_MS: '300', UPSTREAM_MAX_RETRIES: '0' } })
  t.teardown(() => relay.close())
  const nginx = await startNginx({ relays: [`127.0.0.1:${relay.port}`], proxyReadTimeout: '1s' })
  t.teardown(() => nginx.stop())

  const res = await collectSse(`${nginx.httpUrl}/v1/chat/stream`, { method: 'POST', body, until: untilClose, timeoutMs: 10_000 })
  t.equal(res.status, 200)
  t.equal(textOf(res.events), 'the answer')
  t.equal(closeReason(res.events), 'done')
  t.ok(res.comments >= 4, `${res.comments} heartbeats during the ${SILENCE_MS} ms silence`)
  t.notMatch(nginx.errorLog(), /upstream timed out/)

  // A fast failure before the commit time is still a status, through nginx.
  const limited = await fetch(`${nginx.httpUrl}/v1/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: body.messages, mock: { status: 429, retryAfter: 3 } })
  })
  t.equal(limited.status, 429)
  t.equal(limited.headers.get('retry-after'), '3')
  t.match(await limited.json(), { error: { code: 'upstream_rate_limited' } })
})

t.test('control: a relay that never commits early is cut by nginx during the silence', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, COMMIT_AFTER_MS: '0', HEARTBEAT_MS: '300' } })
  t.teardown(() => relay.close())
  const nginx = await startNginx({ relays: [`127.0.0.1:${relay.port}`], proxyReadTimeout: '1s' })
  t.teardown(() => nginx.stop())

  const res = await fetch(`${nginx.httpUrl}/v1/chat/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  t.equal(res.status, 504, 'nginx gave up waiting for the headers')
  await res.body?.cancel()
  t.match(nginx.errorLog(), /upstream timed out/)
})
