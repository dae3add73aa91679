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

/** The model's real pace for one answer, as the mock sent it: the rate the page should show. */
function sourceRate (record: { tokensSent: number, firstTokenAt: number | undefined, completedAt: number | undefined }): number {
  return (record.tokensSent - 1) / (((record.completedAt ?? 0) - (record.firstTokenAt ?? 0)) / 1000)
}

t.test('tokens/s after a reload counts live tokens only: within 20% of the live rate', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  // 20 tokens a second, steady. Counting the replayed third of them again, or the burst they come
  // in as if it were the model's pace, would show far more.
  const steady = (tag: string) => ({ mock: { tokens: Array.from({ length: 60 }, (_, i) => `n${i} `), tokenDelayMs: 50, firstTokenDelayMs: 50, jitterMs: 0, tag } })

  await setExtraBody(page, steady('live'))
  await sendPrompt(page, 'Count at a steady pace')
  await waitForAnswerState(page, 'done')
  const live = await answerStat(page, 'rate') ?? 0
  const liveSource = sourceRate(await mock.waitFor('live'))
  t.ok(Math.abs(live - liveSource) <= 0.2 * liveSource, `without a reload: ${live} tokens/s shown, ${liveSource.toFixed(2)} sent`, { log })

  await page.getByRole('button', { name: 'New chat' }).click()
  await setExtraBody(page, steady('reloaded'))
  await sendPrompt(page, 'Count again, I will reload')
  await waitForTextLength(page, 60)
  await page.reload()
  await waitForAnswerState(page, 'done')
  const resumed = await answerStat(page, 'rate') ?? 0
  const resumedSource = sourceRate(await mock.waitFor('reloaded'))
  t.ok(Math.abs(resumed - resumedSource) <= 0.2 * resumedSource, `after a reload: ${resumed} tokens/s shown, ${resumedSource.toFixed(2)} sent (the replayed burst is not counted)`)
  t.ok((await answerStat(page, 'ttft') ?? 0) > 0, 'the time to first token measured before the reload is kept')
  t.equal(await answerStat(page, 'resumes'), 1, 'the reload counts as one resume')

  // The figures stay with the answer.
  await page.reload()
  await waitForAnswerState(page, 'done', 5000)
  t.equal(await answerStat(page, 'rate'), resumed, 'and are kept with it')
})

t.test('a second tab attaches to the running answer; its rate counts live tokens only', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { context, page, log } = await openPage(browser, relay.url)
  const tokens = Array.from({ length: 60 }, (_, i) => `m${i} `)
  await setExtraBody(page, { mock: { tokens, tokenDelayMs: 50, firstTokenDelayMs: 50, jitterMs: 0, tag: 'two-tabs' } })
  await sendPrompt(page, 'Count, for two tabs')
  await waitForTextLength(page, 80)

  // The second tab has no record of what the first counted: it tells the replay from live tokens.
  const second = await context.newPage()
  second.on('pageerror', (err) => { log.push(`second pageerror: ${err.message}`) })
  await second.goto(relay.url)
  await waitForAnswerState(page, 'done')
  await waitForAnswerState(second, 'done')
  t.equal(await answerSource(second), tokens.join(''), 'the second tab shows the same answer, exactly', { log })
  const sent = sourceRate(await mock.waitFor('two-tabs'))
  const other = await answerStat(second, 'rate') ?? 0
  t.ok(Math.abs(other - sent) <= 0.2 * sent, `its rate, ${other} tokens/s, is the model's (${sent.toFixed(2)} sent)`)
  t.equal(await answerStat(second, 'ttft'), undefined, 'it does not claim a time to first token it did not see')
  t.equal(mock.requests.filter((r) => r.tag === 'two-tabs').length, 1, 'one generation for both')
})
