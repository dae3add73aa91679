/**
 * The chat page streams an answer token by token and shows exactly the model's text: sampled
 * while it grows, compared character for character when done, with markup-looking text and
 * newlines that must be shown, not interpreted.
 */
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { startRelay } from '../fixtures/relay.js'
import { answerStat, answerText, chromiumMissing, launchBrowser, openPage, sampleLengths, sendPrompt, setExtraBody } from '../fixtures/browser.js'

/** Tokens that would go wrong if the page used innerHTML or dropped whitespace. */
export const TRICKY_TOKENS = [
  'Here', ' is', ' <b>bold?</b>', ' no:', ' a &amp; b', ' stays', ' literal.', '\n',
  '\n', '  Two', ' spaces', ' and', ' <img src=x onerror="window.__pwned=1">', '\n',
  '- tab\there', '\r\n', 'emoji 🎉', ' ünïcödé', ' [DONE]', ' end.'
]

t.test('an answer grows token by token and ends as the exact text', { skip: chromiumMissing }, async (t) => {
  const mock = await startMockUpstream()
  t.teardown(() => mock.close())
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url } })
  t.teardown(() => relay.close())
  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const { page, log } = await openPage(browser, relay.url)

  await setExtraBody(page, { mock: { tokens: TRICKY_TOKENS, tokenDelayMs: 120, firstTokenDelayMs: 100, jitterMs: 0, tag: 'grow' } })
  await sendPrompt(page, 'Show me some tricky text')
  t.equal(await page.locator('#prompt').isDisabled(), true, 'the input is disabled while generating')
  t.equal(await page.locator('#stop').isVisible(), true, 'Stop replaces Send while generating')

  const lengths = await sampleLengths(page, 'done')
  const distinct = [...new Set(lengths)]
  t.ok(distinct.length >= 6, `the text grew in several steps (${distinct.join(' → ')})`)
  t.same(distinct, [...distinct].sort((a, b) => a - b), 'the text only ever grows')

  t.equal(await answerText(page), TRICKY_TOKENS.join(''), 'the text on screen is the model text, exactly', { log })
  t.equal(await page.locator('.msg-assistant .answer-text b, .msg-assistant .answer-text img').count(), 0, 'no element was made from the model text')
  t.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined, 'no script ran from the model text')

  t.equal(await page.locator('#prompt').isDisabled(), false, 'the input is enabled again')
  t.equal(await page.locator('#send').isVisible(), true, 'Send is back')
  t.equal(await page.locator('.msg-assistant .caret').isVisible(), false, 'the caret is gone')
  t.ok((await answerStat(page, 'ttft') ?? -1) >= 100, 'time to first token is shown')
  t.ok((await answerStat(page, 'rate') ?? 0) > 0, 'tokens per second are shown')
  t.equal(await answerStat(page, 'resumes'), 0, 'no resume was needed')
  const record = await mock.waitFor('grow')
  t.equal(record.tokensSent, TRICKY_TOKENS.length, 'the mock sent every token')
  t.equal(record.aborted, false)
})
