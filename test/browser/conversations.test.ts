/**
 * Conversations are kept in the browser: a list to switch, rename and delete. Each has its own
 * conversationId, so an answer goes on while another conversation is shown, and after a reload
 * (whichever conversation is shown) the page re-attaches to it and finishes it exactly.
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import { answerSource, answerText, browserStack, chromiumMissing, openPage, sendPrompt, setExtraBody, waitForAnswerState, waitForTextLength } from '../fixtures/browser.js'

const titles = async (page: Page) => await page.locator('#chat-list .chat-title').allTextContents()
const currentTitle = async (page: Page) => await page.locator('#chat-list [aria-current="page"] .chat-title').textContent()
const quick = (text: string, tag?: string) => ({ mock: { text, tokenDelayMs: 5, firstTokenDelayMs: 20, jitterMs: 0, tag } })

t.test('a list to switch, rename and delete conversations', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  t.equal(await page.locator('#chat-list-empty').isVisible(), true, 'an empty list says so')

  await setExtraBody(page, quick('Alpha answer.'))
  await sendPrompt(page, 'Alpha question')
  await waitForAnswerState(page, 'done')
  await page.getByRole('button', { name: 'New chat' }).click()
  await setExtraBody(page, quick('Beta answer.'))
  await sendPrompt(page, 'Beta question')
  await waitForAnswerState(page, 'done')
  t.same(await titles(page), ['Beta question', 'Alpha question'], 'both are listed, newest first, named by their question', { log })
  t.equal(await currentTitle(page), 'Beta question', 'the shown one is marked current')

  await page.locator('#chat-list .chat-open', { hasText: 'Alpha question' }).click()
  t.same(await page.locator('.msg-user .bubble').allTextContents(), ['Alpha question'], 'switching shows that conversation')
  t.equal(await answerText(page), 'Alpha answer.')
  t.equal(await currentTitle(page), 'Alpha question')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'prompt', 'ready to type in it')

  // Rename: the button beside the title, a field, Enter.
  const alpha = page.locator('#chat-list li', { hasText: 'Alpha question' })
  await alpha.hover()
  await alpha.getByRole('button', { name: 'Rename “Alpha question”' }).click()
  const field = page.getByLabel('Chat name')
  t.equal(await field.inputValue(), 'Alpha question', 'the field holds the name')
  await field.fill('Project alpha')
  await field.press('Enter')
  t.same(await titles(page), ['Beta question', 'Project alpha'], 'renamed, in place')
  t.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-action')), 'rename', 'the keyboard is back on Rename')

  // Escape cancels a rename.
  await page.locator('#chat-list li', { hasText: 'Project alpha' }).getByRole('button', { name: /^Rename/ }).click()
  await page.getByLabel('Chat name').fill('Not this')
  await page.getByLabel('Chat name').press('Escape')
  t.same(await titles(page), ['Beta question', 'Project alpha'], 'Escape keeps the old name')

  // Delete, confirmed in place; Cancel keeps it.
  const beta = page.locator('#chat-list li', { hasText: 'Beta question' })
  await beta.getByRole('button', { name: 'Delete “Beta question”' }).click()
  t.match(await beta.textContent(), /Delete “Beta question”\?/, 'Delete asks first')
  await beta.getByRole('button', { name: 'Cancel' }).click()
  t.same(await titles(page), ['Beta question', 'Project alpha'], 'Cancel keeps it')
  await page.locator('#chat-list li', { hasText: 'Beta question' }).getByRole('button', { name: 'Delete “Beta question”' }).click()
  await page.locator('#chat-list li', { hasText: 'Beta question' }).getByRole('button', { name: 'Delete', exact: true }).click()
  t.same(await titles(page), ['Project alpha'], 'deleted')
  const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('llm-relay:conversation:')).length)
  t.equal(stored, 1, 'and gone from storage')

  await page.reload()
  t.same(await titles(page), ['Project alpha'], 'all of it is kept after a reload')
  t.equal(await currentTitle(page), 'Project alpha', 'with the conversation shown last')
  t.equal(await answerText(page), 'Alpha answer.')

  // Deleting the conversation shown leaves an empty new chat.
  await page.locator('#chat-list li').getByRole('button', { name: /^Delete/ }).click()
  await page.locator('#chat-list li').getByRole('button', { name: 'Delete', exact: true }).click()
  t.same(await titles(page), [], 'the list is empty')
  t.equal(await page.locator('#empty').isVisible(), true, 'and the page is a new chat')
})

t.test('an answer goes on while another conversation is shown, and across reloads', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const tokens = Array.from({ length: 120 }, (_, i) => i % 12 === 11 ? `line ${i}\n` : `w${i} `)
  const expected = tokens.join('')

  await setExtraBody(page, { mock: { tokens, tokenDelayMs: 60, firstTokenDelayMs: 50, jitterMs: 0, tag: 'long' } })
  await sendPrompt(page, 'A long answer')
  await waitForTextLength(page, 20)

  // Another conversation meanwhile.
  await page.getByRole('button', { name: 'New chat' }).click()
  t.equal(await page.locator('#prompt').isDisabled(), false, 'a new chat can be used while the other answer runs', { log })
  t.equal(await page.locator('#chat-list li', { hasText: 'A long answer' }).locator('.chat-answering').count(), 1, 'the list shows which conversation is answering')
  await setExtraBody(page, quick('Short one.', 'short'))
  await sendPrompt(page, 'Meanwhile, a short one')
  await waitForAnswerState(page, 'done')

  // Back to the first: still streaming.
  await page.locator('#chat-list .chat-open', { hasText: 'A long answer' }).click()
  t.equal(await page.locator('.msg-assistant').last().getAttribute('data-state'), 'streaming', 'the first answer is still being written')
  t.equal(await page.locator('#prompt').isDisabled(), true, 'its conversation is busy')

  // Reload while it is shown: the page re-attaches.
  await page.reload()
  await page.locator('.msg-assistant').waitFor({ timeout: 5000 })
  t.equal(await page.locator('#prompt').isDisabled(), true, 'after a reload, the answer is re-attached')

  // Switch away and reload there: it is re-attached in the background, and opened later.
  await page.locator('#chat-list .chat-open', { hasText: 'Meanwhile, a short one' }).click()
  await page.reload()
  t.equal(await currentTitle(page), 'Meanwhile, a short one', 'the reload kept the conversation shown')
  await page.waitForFunction(() => document.querySelector('#chat-list .chat-answering') !== null, undefined, { timeout: 5000 })
  await page.locator('#chat-list .chat-open', { hasText: 'A long answer' }).click()
  await waitForAnswerState(page, 'done', 30_000)
  t.equal(await answerSource(page), expected, 'the answer is complete and exact: nothing lost or doubled across two reloads and three switches')
  t.equal(await answerText(page), expected.trimEnd(), 'and shown as it is')
  t.equal(mock.requests.filter((r) => r.tag === 'long').length, 1, 'one generation all along')
  const record = await mock.waitFor('long')
  t.equal(record.aborted, false, 'never abandoned by the relay')
  t.equal(await page.locator('#chat-list .chat-answering').count(), 0, 'nothing is answering any more')
})
