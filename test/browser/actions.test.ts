/**
 * What a finished answer offers: Copy (a code block, the whole answer) puts the text on the
 * clipboard; Regenerate replaces the last answer with a new one for the same question; Edit
 * changes the last question and answers it again. Escape stops an answer being written.
 */
import t from 'tap'
import { answerSource, answerText, browserStack, chromiumMissing, openPage, sendPrompt, setExtraBody, waitForAnswerState, waitForTextLength } from '../fixtures/browser.js'

const CODE = 'for i in range(3):\n    print(i)'
const ANSWER = `Here is a loop:\n\n\`\`\`python\n${CODE}\n\`\`\`\n\nAnd **that** is all.`

t.test('Copy puts a code block, and the whole answer, on the clipboard', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { context, page, log } = await openPage(browser, relay.url, { permissions: ['clipboard-read', 'clipboard-write'] })
  await setExtraBody(page, { mock: { text: ANSWER, tokenDelayMs: 5, firstTokenDelayMs: 20, jitterMs: 0 } })
  await sendPrompt(page, 'A loop please')
  await waitForAnswerState(page, 'done')
  const readClipboard = async () => await page.evaluate(async () => await navigator.clipboard.readText())

  const copyCode = page.getByRole('button', { name: 'Copy python code' })
  await copyCode.click()
  t.equal(await readClipboard(), CODE, 'the code block, exactly (no language line, no fences)', { log })
  t.equal(await copyCode.textContent(), 'Copied', 'the button says so')
  t.equal(await page.locator('#status').textContent(), 'Copied to the clipboard.', 'and so do screen readers')

  await page.getByRole('button', { name: 'Copy answer' }).click()
  t.equal(await readClipboard(), ANSWER, 'the whole answer, as markdown, exactly')
  await context.close()
})

t.test('Regenerate replaces the last answer; Edit changes the last question', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const script = (text: string, tag: string) => ({ mock: { text, tokenDelayMs: 10, firstTokenDelayMs: 20, jitterMs: 0, tag } })

  await setExtraBody(page, script('First answer.', 'first'))
  await sendPrompt(page, 'Question one')
  await waitForAnswerState(page, 'done')
  await setExtraBody(page, script('Second answer.', 'second'))
  await sendPrompt(page, 'Question two')
  await waitForAnswerState(page, 'done')

  t.equal(await page.getByRole('button', { name: 'Regenerate answer' }).count(), 1, 'only the last answer can be regenerated', { log })
  t.equal(await page.getByRole('button', { name: 'Copy answer' }).count(), 2, 'every answer can be copied')
  t.equal(await page.getByRole('button', { name: 'Edit message' }).count(), 1, 'only the last question can be edited')

  await setExtraBody(page, script('Second answer, again.', 'again'))
  await page.getByRole('button', { name: 'Regenerate answer' }).click()
  await waitForAnswerState(page, 'done')
  t.equal(await answerText(page), 'Second answer, again.', 'the new answer is shown')
  t.equal(await page.locator('.msg-assistant').count(), 2, 'in place of the old one')
  const again = await mock.waitFor('again')
  t.same((again.body as { messages: unknown[] }).messages, [
    { role: 'user', content: 'Question one' },
    { role: 'assistant', content: 'First answer.' },
    { role: 'user', content: 'Question two' }
  ], 'asked with the same question, without the replaced answer')

  await page.locator('.msg-user').last().hover()
  await page.getByRole('button', { name: 'Edit message' }).click()
  const editor = page.getByLabel('Edit message')
  t.equal(await editor.inputValue(), 'Question two', 'the editor holds the question')
  t.equal(await page.evaluate(() => document.activeElement?.classList.contains('edit-input')), true, 'and has focus')
  await editor.press('Escape')
  t.equal(await page.locator('.msg-user .bubble').last().textContent(), 'Question two', 'Escape cancels the edit')
  t.equal(await page.locator('.msg-assistant').last().getAttribute('data-state'), 'done', 'and does not touch the answer')

  await page.getByRole('button', { name: 'Edit message' }).click()
  await setExtraBody(page, script('Answer to the edit.', 'edited'))
  await page.getByLabel('Edit message').fill('Question two, edited')
  await page.getByLabel('Edit message').press('Enter')
  await waitForAnswerState(page, 'done')
  t.same(await page.locator('.msg-user .bubble').allTextContents(), ['Question one', 'Question two, edited'], 'the question is replaced')
  t.equal(await answerText(page), 'Answer to the edit.', 'and answered again')
  t.equal(await page.locator('.msg-assistant').count(), 2, 'the old answer to it is gone')
  const edited = await mock.waitFor('edited')
  t.same((edited.body as { messages: Array<{ content: string }> }).messages.map((m) => m.content), ['Question one', 'First answer.', 'Question two, edited'], 'the relay was asked the edited question')

  await page.reload()
  await waitForAnswerState(page, 'done', 5000)
  t.same(await page.locator('.msg-user .bubble').allTextContents(), ['Question one', 'Question two, edited'], 'the edit is kept after a reload')
})

t.test('Escape stops the answer being written', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const tokens = Array.from({ length: 80 }, (_, i) => `word${i} `)
  await setExtraBody(page, { mock: { tokens, tokenDelayMs: 100, firstTokenDelayMs: 50, jitterMs: 0, tag: 'escape' } })
  await sendPrompt(page, 'Talk for a while')
  await waitForTextLength(page, 30)
  await page.keyboard.press('Escape')
  await waitForAnswerState(page, 'stopped', 5000)
  const record = await mock.waitFor('escape', (r) => r.aborted, 5000)
  t.equal(record.aborted, true, 'the upstream request was aborted', { log })
  t.ok(tokens.join('').startsWith(await answerSource(page)), 'what arrived is kept')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'prompt', 'the keyboard is back in the input')

  // Escape with nothing running does nothing (and throws nothing).
  await page.keyboard.press('Escape')
  t.equal(await page.locator('.msg-assistant').count(), 1, 'no other effect')
  t.same(log.filter((l) => l.startsWith('pageerror')), [], 'no error')
})
