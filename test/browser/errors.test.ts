/**
 * Failures are visible and recoverable: an upstream failure before the first token, a stream
 * cut mid-answer, a request the relay refuses, a relay that needs a key. Each shows an error
 * with an action, and the action leads to a complete answer.
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import { answerSource, answerText, browserStack, chromiumMissing, openPage, sendPrompt, setExtraBody, waitForAnswerState } from '../fixtures/browser.js'

const good = ['All', ' good', ' now.']

/** The last answer's error box: visible, with a title, and its action button. */
async function visibleError (page: Page) {
  const error = page.locator('.msg-assistant').last().locator('.error[role="alert"]')
  await error.waitFor({ state: 'visible', timeout: 10_000 })
  return { text: await error.textContent() ?? '', retry: error.locator('button[data-action="retry"]') }
}

t.test('errors show with a retry that works', { skip: chromiumMissing }, async (t) => {
  // No retries inside the relay: the upstream's 500 reaches the page at once.
  const { relay, browser } = await browserStack(t, { UPSTREAM_MAX_RETRIES: '0' })

  t.test('an upstream 500 before the first token', async (t) => {
    const { page, log } = await openPage(browser, relay.url)
    t.teardown(() => page.context().close())
    await setExtraBody(page, { mock: { status: 500, errorMessage: 'the model is on fire', tag: 'fail-500' } })
    await sendPrompt(page, 'Hello?')
    await waitForAnswerState(page, 'error')
    const { text } = await visibleError(page)
    t.match(text, /could not answer/, `the error is shown: ${text}`, { log })
    t.match(text, /the model is on fire/, 'with the message from upstream')
    t.equal(await page.locator('#prompt').isDisabled(), false, 'the input is free after an error')
    t.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-action')), 'retry', 'focus moves to Retry')

    // The failure stays with the answer, Retry too.
    await page.reload()
    await waitForAnswerState(page, 'error', 5000)
    const again = await visibleError(page)
    t.match(again.text, /the model is on fire/, 'after a reload the error card is still there')

    await setExtraBody(page, { mock: { tokens: good, tokenDelayMs: 30, jitterMs: 0, tag: 'after-500' } })
    await again.retry.click()
    await waitForAnswerState(page, 'done')
    t.equal(await answerText(page), good.join(''), 'Retry gives the answer')
    t.equal(await page.locator('.msg-assistant').count(), 1, 'the failed answer was replaced, not kept beside it')
    t.equal(await page.locator('.msg-assistant .error').isVisible(), false, 'no error is left on screen')
  })

  t.test('a connection reset mid-answer', async (t) => {
    const { page, log } = await openPage(browser, relay.url)
    t.teardown(() => page.context().close())
    const tokens = ['Half', ' an', ' answer', ' and', ' then']
    await setExtraBody(page, { mock: { tokens, fault: 'reset', faultAfterTokens: 3, tokenDelayMs: 50, jitterMs: 0, tag: 'reset' } })
    await sendPrompt(page, 'Go')
    await waitForAnswerState(page, 'error')
    // How much arrives before the reset is the sockets' business; what arrived must stay.
    const partial = await answerText(page)
    t.ok(partial.length > 0 && tokens.join('').startsWith(partial), `the part that arrived stays on screen: ${JSON.stringify(partial)}`, { log })
    t.equal(await answerSource(page), partial, 'and is kept with the failed answer')
    const { text, retry } = await visibleError(page)
    t.match(text, /interrupted/, `the cut is reported, not silent: ${text}`)

    await setExtraBody(page, { mock: { tokens: good, tokenDelayMs: 30, jitterMs: 0 } })
    await retry.click()
    await waitForAnswerState(page, 'done')
    t.equal(await answerText(page), good.join(''), 'Retry gives a whole new answer')
  })

  t.test('a request the relay refuses (400)', async (t) => {
    const { page, log } = await openPage(browser, relay.url)
    t.teardown(() => page.context().close())
    await setExtraBody(page, { model: '' })
    await sendPrompt(page, 'Hi')
    await waitForAnswerState(page, 'error')
    const { text, retry } = await visibleError(page)
    t.match(text, /400/, `the status is shown: ${text}`, { log })
    t.match(text, /invalid_request/, 'with the relay\'s error code')

    await setExtraBody(page, { mock: { tokens: good, tokenDelayMs: 30, jitterMs: 0 } })
    await retry.click()
    await waitForAnswerState(page, 'done')
    t.equal(await answerText(page), good.join(''), 'Retry gives the answer')
  })
})

t.test('a relay with RELAY_API_KEYS asks for the key, then streams with it', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t, { RELAY_API_KEYS: 'key-one,key-two' })
  const { page, log } = await openPage(browser, relay.url)

  await setExtraBody(page, { mock: { tokens: good, tokenDelayMs: 30, jitterMs: 0, tag: 'keyed' } })
  await sendPrompt(page, 'Hi')
  await waitForAnswerState(page, 'error')
  const { text, retry } = await visibleError(page)
  t.match(text, /API key/, `the page asks for a key: ${text}`, { log })
  await page.getByLabel('Relay API key').fill('key-two')
  t.ok(await retry.isVisible(), 'Retry is next to the key field')
  // Enter in the key field submits the key, as in any form.
  await page.getByLabel('Relay API key').press('Enter')
  await waitForAnswerState(page, 'done')
  // The stream itself is a GET on a keyed relay: this is why the page reads it with fetch().
  t.equal(await answerText(page), good.join(''), 'the answer streams with the key')
  t.equal(mock.requests.filter((r) => r.tag === 'keyed').length, 1, 'the upstream was asked once, after the key')
})

t.test('a 429 says how long to wait', { skip: chromiumMissing }, async (t) => {
  // One answer at a time per client: a second one is refused with 429 and a retry-after.
  const { relay, browser } = await browserStack(t, { MAX_STREAMS_PER_CLIENT: '1' })
  const { page, log } = await openPage(browser, relay.url)
  await setExtraBody(page, { mock: { tokens: Array.from({ length: 100 }, (_, i) => `w${i} `), tokenDelayMs: 100, jitterMs: 0 } })
  await sendPrompt(page, 'A long one')
  await waitForAnswerState(page, 'streaming')
  await page.getByRole('button', { name: 'New chat' }).click()
  await sendPrompt(page, 'And another at the same time')
  await waitForAnswerState(page, 'error')
  const { text } = await visibleError(page)
  t.match(text, /Too many requests/, `the card says what happened: ${text}`, { log })
  t.match(text, /The relay asks to wait 1 second before retrying\./, 'and how long to wait (retry-after)')
  const count = page.locator('.error-wait-count')
  t.equal(await count.getAttribute('aria-hidden'), 'true', 'the ticking figure is not read out every second')
  t.match(await count.textContent(), /^You can retry (in 1 s|now)\.$/, 'the wait counts down')
  await page.waitForFunction(() => document.querySelector('.error-wait-count')?.textContent === 'You can retry now.', undefined, { timeout: 5000 })
  t.pass('to the moment a retry may go')

  // The other answer stopped (from its own conversation), Retry here gets an answer.
  await page.locator('#chat-list .chat-open', { hasText: 'A long one' }).click()
  await page.keyboard.press('Escape')
  await waitForAnswerState(page, 'stopped')
  await page.locator('#chat-list .chat-open', { hasText: 'And another' }).click()
  await setExtraBody(page, { mock: { tokens: good, tokenDelayMs: 30, jitterMs: 0 } })
  await page.locator('.msg-assistant').last().locator('button[data-action="retry"]').click()
  await waitForAnswerState(page, 'done')
  t.equal(await answerText(page), good.join(''), 'then Retry gives the answer')
})
