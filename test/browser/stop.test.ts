/**
 * Stop: the text stops growing at once, the relay aborts the upstream request (the mock sees its
 * client leave), and the input comes back.
 */
import t from 'tap'
import { answerSource, answerText, chromiumMissing, browserStack, openPage, sendPrompt, setExtraBody, waitForAnswerState, waitForTextLength } from '../fixtures/browser.js'

t.test('Stop mid-answer stops the text and the upstream', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)

  const tokens = Array.from({ length: 80 }, (_, i) => `word${i} `)
  await setExtraBody(page, { mock: { tokens, tokenDelayMs: 100, firstTokenDelayMs: 50, jitterMs: 0, tag: 'stop' } })
  await sendPrompt(page, 'Tell me a long story')
  await waitForTextLength(page, 30)

  await page.locator('#stop').click()
  await waitForAnswerState(page, 'stopped', 5000)
  const atStop = await answerText(page)
  const kept = await answerSource(page)
  t.ok(atStop.length >= 30 && atStop.length < tokens.join('').length, `a part of the answer is shown (${atStop.length} characters)`)
  t.ok(tokens.join('').startsWith(kept) && kept.trimEnd() === atStop, 'and it is a prefix of the answer, kept as shown', { log })

  const record = await mock.waitFor('stop', (r) => r.aborted, 5000)
  t.equal(record.aborted, true, 'the mock saw the upstream request aborted')
  t.ok(record.tokensSent < tokens.length, `the mock stopped sending (${record.tokensSent} of ${tokens.length} tokens)`)

  await new Promise((resolve) => setTimeout(resolve, 800))
  t.equal(await answerText(page), atStop, 'the text did not grow after Stop')
  t.equal(await page.locator('#prompt').isDisabled(), false, 'the input is enabled again')
  t.equal(await page.locator('#send').isVisible(), true, 'Send is back')
  t.match(await page.locator('.msg-assistant .notice').textContent(), /Stopped/, 'the answer says it was stopped')
  t.equal(await page.locator('.msg-assistant .error').isVisible(), false, 'a Stop is not an error')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'prompt', 'focus is back in the input')

  // The marker stays with the answer.
  await page.reload()
  await waitForAnswerState(page, 'stopped', 5000)
  t.equal(await page.locator('.msg-assistant .notice').textContent(), 'Stopped.', 'after a reload the answer still says it was stopped')
  t.equal(await answerText(page), atStop, 'with the text it had')
  t.equal(await page.locator('#prompt').isDisabled(), false, 'and nothing is re-attached')
})
