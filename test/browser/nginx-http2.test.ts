/**
 * The typewriter scenario through the nginx config we ship, over HTTPS with HTTP/2: the page,
 * the POST and the stream share one multiplexed connection, and the tokens still arrive one by
 * one (no proxy buffering, no gzip) and exactly.
 */
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startNginx } from '../fixtures/nginx.js'
import { startRelay } from '../fixtures/relay.js'
import { chromiumMissing, launchBrowser, openPage, typewriterScenario } from '../fixtures/browser.js'

t.test('an answer grows token by token through nginx over HTTP/2', { skip: chromiumMissing }, async (t) => {
  const mock = await startMockUpstream()
  t.teardown(() => mock.close())
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url } })
  t.teardown(() => relay.close())
  const nginx = await startNginx({ relays: [`127.0.0.1:${relay.port}`] })
  t.teardown(() => nginx.stop())
  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  // nginx's certificate is self-signed for 127.0.0.1, made by the fixture for this run.
  const { page, log } = await openPage(browser, `${nginx.httpsUrl}/`, { ignoreHTTPSErrors: true })

  await typewriterScenario(t, page, mock, log, 'h2')

  const protocols = await page.evaluate(() => {
    const entries = [
      ...performance.getEntriesByType('navigation'),
      ...performance.getEntriesByType('resource')
    ] as PerformanceResourceTiming[]
    return entries.map((e) => ({ path: new URL(e.name).pathname, protocol: e.nextHopProtocol }))
  })
  const stream = protocols.find((p) => p.path.startsWith('/v1/chat/stream/'))
  t.equal(protocols.find((p) => p.path === '/')?.protocol, 'h2', 'the page came over HTTP/2')
  t.equal(stream?.protocol, 'h2', 'the stream came over HTTP/2', { protocols })
  t.ok(nginx.accessLog().some((line) => /^GET \/v1\/chat\/stream\/\S+ 200 /.test(line)), 'and went through nginx', { accessLog: nginx.accessLog() })
})
