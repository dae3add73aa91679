// Client addresses behind nginx. The relay counts MAX_STREAMS_PER_CLIENT per IP when it runs
// open, and with TRUST_PROXY it takes that IP from X-Forwarded-For. Our config *sets* the header
// to the address nginx saw, so a client cannot pick another address to slip past its limit. The
// control, an nginx that appends to the client's header (as most copied configs do), lets the
// forged address through: the reason for the directive, measured.
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startNginx, type NginxTemplate } from '../fixtures/nginx.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { pacedBody } from './sse-reader.js'

const mock = await startMockUpstream()
t.teardown(() => mock.close())
/** Holds one stream open through nginx, then asks for a second one claiming another address. */
async function secondStreamWithForgedAddress (template: NginxTemplate): Promise<number> {
  // A relay per case: a held generation keeps counting toward the limit after its reader leaves.
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, TRUST_PROXY: '127.0.0.1', MAX_STREAMS_PER_CLIENT: '1' } })
  const nginx = await startNginx({ relays: [`127.0.0.1:${relay.port}`], template })
  const abort = new AbortController()
  let started!: () => void
  const firstToken = new Promise<void>((resolve) => { started = resolve })
  const holding = collectSse(`${nginx.httpUrl}/v1/chat/stream`, {
    method: 'POST',
    body: pacedBody(['slow ', 'answer ', 'holding ', 'the ', 'limit'], 300),
    onEvent: () => started(),
    signal: abort.signal
  })
  try {
    await firstToken
    const second = await collectSse(`${nginx.httpUrl}/v1/chat/stream`, {
      method: 'POST',
      headers: { 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9' },
      body: pacedBody(['short'], 0)
    })
    return second.status
  } finally {
    abort.abort()
    await holding
    await nginx.stop()
    await relay.close()
  }
}

t.test('relay.conf: a forged X-Forwarded-For does not escape the per-client limit', async (t) => {
  t.equal(await secondStreamWithForgedAddress('relay'), 429, 'same client (the address nginx saw): over the limit')
})

t.test('control: an nginx that appends to X-Forwarded-For lets the forged address through', async (t) => {
  t.equal(await secondStreamWithForgedAddress('unconfigured'), 200, 'counted as another client: the forgery worked')
})
