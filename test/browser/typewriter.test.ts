/**
 * The chat page streams an answer token by token and shows exactly the model's text: sampled
 * while it grows, compared character for character when done, with markup-looking text and
 * newlines that must be shown, not interpreted. nginx-http2.test.ts runs the same scenario
 * through nginx over HTTP/2.
 */
import t from 'tap'
import { chromiumMissing, browserStack, openPage, typewriterScenario } from '../fixtures/browser.js'

t.test('an answer grows token by token and ends as the exact text', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  await typewriterScenario(t, page, mock, log)
})
