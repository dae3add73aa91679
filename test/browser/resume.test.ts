/**
 * The answer survives the connection: going offline mid-answer and back, and reloading the page
 * mid-answer, both end with exactly the model's text, each character once.
 */
import t from 'tap'
import { answerSource, answerStat, answerText, chromiumMissing, browserStack, openPage, sendPrompt, setExtraBody, waitForAnswerState, waitForTextLength } from '../fixtures/browser.js'

const tokens = Array.from({ length: 50 }, (_, i) => i % 10 === 9 ? `line ${i}\n` : `t${i} `)
const expected = tokens.join('')
const script = (tag: string) => ({ mock: { tokens, tokenDelayMs: 80, firstTokenDelayMs: 50, jitterMs: 0, tag } })

t.test('offline mid-answer and back: the answer continues where it was', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { context, page, log } = await openPage(browser, relay.url)

  await setExtraBody(page, script('offline'))
  await sendPrompt(page, 'Count slowly')
  await waitForTextLength(page, 20)
  await context.setOffline(true)
  await page.locator('#connection').waitFor({ state: 'visible', timeout: 2000 })
  t.match(await page.locator('#connection').textContent(), /offline/i, 'the page says it is offline')
  await new Promise((resolve) => setTimeout(resolve, 1500))
  await context.setOffline(false)

  await waitForAnswerState(page, 'done')
  t.equal(await answerSource(page), expected, 'the final text is exact: nothing lost, nothing doubled', { log })
  t.equal(await answerText(page), expected.trimEnd(), 'and it is what the page shows')
  t.ok((await answerStat(page, 'resumes') ?? 0) >= 1, 'the resume is counted')
  t.equal(await page.locator('#connection').isVisible(), false, 'the connection notice is gone')
  const record = await mock.waitFor('offline')
  t.equal(record.aborted, false, 'the upstream request ran to its end meanwhile')
  t.equal(mock.requests.filter((r) => r.tag === 'offline').length, 1, 'and it was asked once')
})

t.test('reload mid-answer: the page re-attaches and finishes the same answer', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)

  await setExtraBody(page, script('reload'))
  await sendPrompt(page, 'Count slowly, I may reload')
  await waitForTextLength(page, 20)
  await page.reload()

  await page.locator('.msg-assistant').waitFor({ timeout: 5000 })
  t.equal(await page.locator('.msg-user').count(), 1, 'the question is shown again, once')
  t.equal(await page.locator('#prompt').isDisabled(), true, 'the re-attached answer is still generating')
  await waitForAnswerState(page, 'done')
  t.equal(await answerSource(page), expected, 'the final text is the same answer, exactly', { log })
  t.equal(await answerText(page), expected.trimEnd(), 'and it is what the page shows')
  t.ok((await answerStat(page, 'resumes') ?? 0) >= 1, 'the re-attach counts as a resume')
  t.equal(mock.requests.filter((r) => r.tag === 'reload').length, 1, 'no second generation was started')

  // Finished answers come back from localStorage, not from the relay.
  await page.reload()
  await waitForAnswerState(page, 'done', 5000)
  t.equal(await answerText(page), expected.trimEnd(), 'after another reload the answer is still there')
  t.equal(await page.locator('#prompt').isDisabled(), false, 'and the input is free')
})
