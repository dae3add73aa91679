/**
 * The chat page streams an answer token by token and shows exactly the model's text: sampled
 * while it grows, compared character for character when done, with markup-looking text and
 * newlines that must be shown, not interpreted. nginx-http2.test.ts runs the same scenario
 * through nginx over HTTP/2.
 */
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startRelay } from '../fixtures/relay.js'
import { chromiumMissing, launchBrowser, openPage, typewriterScenario } from '../fixtures/browser.js'

t.test('an answer grows token by token and ends as the exact text', { skip: chromiumMissing }, async (t) => {
  const mock = await startMockUpstream()
  t.teardown(() => mock.close())
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url } })
  t.teardown(() => relay.close())
  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const { page, log } = await openPage(browser, relay.url)
  await typewriterScenario(t, page, mock, log)
})
