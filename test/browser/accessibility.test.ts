/**
 * The page for keyboard and screen-reader users, and its colors.
 * - axe-core (WCAG 2.1 A and AA rules, contrast included, and its best practices) finds nothing
 *   in a conversation with markdown, highlighted code, a table, a stopped answer, an error card
 *   and the chat list: light and dark, desktop and phone (with the list open as a drawer), and
 *   while an answer streams.
 * - Keyboard only: the skip link, a logical Tab order, a visible focus ring, sending, Escape to
 *   stop, Shift+Tab back to the answer's actions, Regenerate, the chat list's drawer on a phone.
 * - Screen readers hear the answer a finished block at a time (a paragraph, a list, "Code block,
 *   python."), not a token at a time, while the answer being written is aria-busy.
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import type { Test } from 'tap'
import { answerText, audit, browserStack, chromiumMissing, DESKTOP, openPage, PHONE, sendPrompt, setExtraBody, waitForAnswerState, waitForTextLength } from '../fixtures/browser.js'

const RICH = [
  '## A heading', '',
  'Text with **bold**, *emphasis*, `inline code` and [a link](https://example.com).', '',
  '- a list item', '- [x] a task', '',
  '| name | value |', '|---|--:|', '| `retries` | 3 |', '',
  '```python', 'def f(x: int) -> str:', '    """Doc."""', '    return f"{x}"  # comment', '```', '',
  '```typescript', 'const n: number = 42 // answer', 'export class A { b = "c" }', '```', '',
  '> A quote.'
].join('\n')

/** A conversation in every state worth auditing: markdown, a stopped answer, an error. */
async function richConversation (t: Test, page: Page): Promise<void> {
  await setExtraBody(page, { mock: { text: 'A first chat.', tokenDelayMs: 5, firstTokenDelayMs: 10, jitterMs: 0 } })
  await sendPrompt(page, 'An older chat')
  await waitForAnswerState(page, 'done')
  await page.getByRole('button', { name: 'New chat' }).click()
  await setExtraBody(page, { mock: { text: RICH, tokenDelayMs: 2, firstTokenDelayMs: 10, jitterMs: 0 } })
  await sendPrompt(page, 'Show me everything')
  await waitForAnswerState(page, 'done')
  await setExtraBody(page, { mock: { tokens: Array.from({ length: 100 }, (_, i) => `w${i} `), tokenDelayMs: 50, jitterMs: 0 } })
  await sendPrompt(page, 'Then stop')
  await waitForTextLength(page, 20)
  await page.keyboard.press('Escape')
  await waitForAnswerState(page, 'stopped')
  await setExtraBody(page, { mock: { status: 500, errorMessage: 'the model is on fire' } })
  await sendPrompt(page, 'Then fail')
  await waitForAnswerState(page, 'error')
  t.pass('a conversation with markdown, a stopped answer and an error')
}

t.test('axe finds no violation, light and dark, desktop and phone', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t, { UPSTREAM_MAX_RETRIES: '0' })
  for (const colorScheme of ['light', 'dark'] as const) {
    for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
      const { context, page, log } = await openPage(browser, relay.url, { colorScheme, viewport, isMobile: size === 'phone', hasTouch: size === 'phone' })
      t.same(await audit(page), [], `${colorScheme} ${size}: the empty page`, { log })
      await richConversation(t, page)
      t.same(await audit(page), [], `${colorScheme} ${size}: the conversation`)
      if (size === 'phone') {
        await page.getByRole('button', { name: 'Chats' }).click()
        t.same(await audit(page), [], `${colorScheme} ${size}: the chat list open`)
      }
      await context.close()
    }
  }
  // While an answer streams (axe reads a moving page: the answer grows slowly).
  const { context, page } = await openPage(browser, relay.url)
  await setExtraBody(page, { mock: { text: RICH, tokenDelayMs: 300, jitterMs: 0 } })
  await sendPrompt(page, 'Slowly')
  await waitForTextLength(page, 10)
  t.same(await audit(page), [], 'while an answer streams')
  await context.close()
})

/** What has keyboard focus, as a short name. */
async function focused (page: Page): Promise<string> {
  return await page.evaluate(() => {
    const e = document.activeElement as HTMLElement | null
    if (e === null || e === document.body) return 'body'
    return e.id || e.dataset.action || e.getAttribute('aria-label') || e.className || e.tagName
  })
}

t.test('keyboard only', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  for (const [question, answer] of [['An older chat', 'First chat.'], ['The current chat', 'Second chat.']]) {
    await setExtraBody(page, { mock: { text: answer, tokenDelayMs: 5, firstTokenDelayMs: 10, jitterMs: 0 } })
    await sendPrompt(page, question as string)
    await waitForAnswerState(page, 'done')
    await page.getByRole('button', { name: 'New chat' }).click()
  }
  await page.locator('#chat-list .chat-open', { hasText: 'The current chat' }).click()
  await page.reload()
  t.equal(await focused(page), 'prompt', 'the page opens with the keyboard in the message input', { log })

  // The Tab order, walked back from the input: the conversation's actions, New chat, the chat
  // list (open, rename, delete per chat), the skip link first of all. Each shows a focus ring.
  const order: string[] = []
  const unringed: string[] = []
  for (let i = 0; i < 11; i++) {
    await page.keyboard.press('Shift+Tab')
    const name = await focused(page)
    order.push(name)
    if (await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle) === 'none') unringed.push(name)
  }
  t.same(order.reverse(), ['skip-link', 'open', 'rename', 'delete', 'open', 'rename', 'delete', 'new-chat', 'edit', 'copy', 'regenerate'],
    'skip link, the chat list, New chat, the conversation\'s actions, then the input')
  t.same(unringed, [], 'every control shows a focus ring')
  t.equal(await page.locator('.skip-link').isVisible(), true, 'the skip link shows when focused')
  await page.keyboard.press('Enter')
  t.equal(await focused(page), 'prompt', 'and leads to the message input')
  const fromTop = async () => { await page.evaluate(() => { (document.activeElement as HTMLElement | null)?.blur() }) }
  const border = async () => await page.evaluate(() => getComputedStyle(document.querySelector('.composer') as Element).borderColor)
  const focusedBorder = await border()
  await fromTop()
  t.not(await border(), focusedBorder, 'the composer shows when the input has focus')

  // Send, stop, regenerate: all from the keyboard.
  await page.locator('#prompt').focus()
  await setExtraBody(page, { mock: { tokens: Array.from({ length: 60 }, (_, i) => `k${i} `), tokenDelayMs: 80, jitterMs: 0, tag: 'keys' } })
  await page.keyboard.type('Typed, sent with Enter')
  await page.keyboard.press('Enter')
  await waitForTextLength(page, 15)
  t.equal(await focused(page), 'stop', 'while it streams, the keyboard is on Stop')
  await page.keyboard.press('Escape')
  await waitForAnswerState(page, 'stopped')
  t.equal((await mock.waitFor('keys', (r) => r.aborted, 5000)).aborted, true, 'Escape stopped the model')
  t.equal(await focused(page), 'prompt', 'and the keyboard is back in the input')
  await page.keyboard.press('Shift+Tab')
  t.equal(await focused(page), 'regenerate', 'Shift+Tab reaches the last answer\'s Regenerate')
  await setExtraBody(page, { mock: { text: 'Regenerated by keyboard.', tokenDelayMs: 20, firstTokenDelayMs: 200, jitterMs: 0 } })
  await page.keyboard.press('Enter')
  t.equal(await focused(page), 'stop', 'the keyboard goes to Stop while the new answer is written')
  await waitForAnswerState(page, 'done')
  t.equal(await answerText(page), 'Regenerated by keyboard.', 'Enter on it regenerates')
  t.equal(await focused(page), 'prompt', 'then back to the input')

  // Switch conversations from the keyboard, on a phone: the list is a drawer.
  await page.setViewportSize(PHONE)
  await page.locator('#prompt').focus()
  for (let i = 0; i < 20 && await focused(page) !== 'toggle-chats'; i++) await page.keyboard.press('Shift+Tab')
  t.equal(await focused(page), 'toggle-chats', 'the Chats button is reachable')
  await page.keyboard.press('Enter')
  t.equal(await page.locator('#toggle-chats').getAttribute('aria-expanded'), 'true', 'it opens the list')
  t.equal(await page.evaluate(() => document.activeElement?.closest('#chat-list') !== null), true, 'the keyboard goes into the list')
  await page.keyboard.press('Escape')
  await page.locator('#sidebar').waitFor({ state: 'hidden' })
  t.equal(await focused(page), 'toggle-chats', 'Escape closes it and gives the keyboard back')
  await page.keyboard.press('Enter')
  await page.locator('#sidebar').waitFor({ state: 'visible' })
  // Down the list with Tab to the other chat.
  for (let i = 0; i < 6 && await page.evaluate(() => document.activeElement?.textContent) !== 'An older chat'; i++) await page.keyboard.press('Tab')
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'An older chat', 'Tab moves through the list')
  await page.keyboard.press('Enter')
  await page.locator('#sidebar').waitFor({ state: 'hidden' })
  t.same(await page.locator('.msg-user .bubble').allTextContents(), ['An older chat'], 'choosing a chat shows it and closes the list')
  t.equal(await focused(page), 'prompt', 'ready to type')
})

t.test('screen readers hear finished blocks, not tokens', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const answer = 'The first paragraph, in several tokens.\n\n- one item\n- another item\n\n```python\nprint("hi")\n```\n\nThe last words.'
  const tokens = answer.match(/.{1,3}/gs) ?? []
  await page.evaluate(() => {
    const heard: string[] = []
    ;(window as unknown as { __heard: string[] }).__heard = heard
    new MutationObserver((records) => {
      for (const r of records) for (const node of r.addedNodes) heard.push(node.textContent ?? '')
    }).observe(document.getElementById('announcer') as Node, { childList: true })
  })
  await setExtraBody(page, { mock: { tokens, tokenDelayMs: 25, firstTokenDelayMs: 20, jitterMs: 0 } })
  await sendPrompt(page, 'Talk to me')
  await waitForTextLength(page, 5)
  const article = page.locator('.msg-assistant').last()
  t.equal(await article.getAttribute('aria-busy'), 'true', 'the answer being written is aria-busy', { log })
  t.equal(await page.locator('#log').getAttribute('aria-live'), null, 'and the conversation is not a live region')
  t.equal(await page.locator('#status').textContent(), 'Generating an answer…', 'the status line says what is happening')
  await waitForAnswerState(page, 'done')
  t.equal(await article.getAttribute('aria-busy'), 'false', 'not busy once done')
  t.equal(await page.locator('#status').textContent(), 'Answer complete.', 'and the status line says so')
  const heard = await page.evaluate(() => (window as unknown as { __heard: string[] }).__heard)
  t.same(heard, ['The first paragraph, in several tokens.', 'one item another item', 'Code block, python.', 'The last words.'],
    `${tokens.length} tokens were announced as ${heard.length} blocks, in order`)
})
