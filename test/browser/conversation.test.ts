/**
 * The page as a conversation and as an accessible form: every turn sends the whole history,
 * Shift+Enter makes a new line that the question keeps, the live region and focus behave, and
 * New chat starts over with a new conversation id.
 */
import t from 'tap'
import { answerText, chromiumMissing, browserStack, openPage, sendPrompt, setExtraBody, waitForAnswerState } from '../fixtures/browser.js'

t.test('a multi-turn, keyboard-driven conversation', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const posts: Array<{ conversationId?: string }> = []
  page.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === '/v1/chat') posts.push(request.postDataJSON())
  })

  // Accessible names and roles, as a screen reader sees them.
  t.equal(await page.getByLabel('Message', { exact: true }).count(), 1, 'the input has a label')
  t.equal(await page.getByRole('button', { name: 'Send message' }).count(), 1, 'Send has a name')
  t.equal(await page.getByRole('button', { name: 'New chat' }).count(), 1, 'New chat has a name')
  t.equal(await page.locator('#log').getAttribute('aria-live'), null, 'the conversation is not a live region (it would read every token)')
  t.equal(await page.locator('#announcer').getAttribute('aria-live'), 'polite', 'answers are announced through a polite region')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'prompt', 'the input has focus on load')
  t.equal(await page.locator('#send').isDisabled(), true, 'Send is disabled while the input is empty')

  // Turn 1, typed with a Shift+Enter line break.
  await setExtraBody(page, { mock: { tokens: ['First', ' answer.'], tokenDelayMs: 150, jitterMs: 0, tag: 'turn-1' } })
  await page.locator('#prompt').pressSequentially('line one')
  await page.locator('#prompt').press('Shift+Enter')
  await page.locator('#prompt').pressSequentially('line two')
  await page.locator('#prompt').press('Enter')
  t.equal(await page.locator('#log').getAttribute('aria-busy'), 'true', 'the live region is busy while the answer streams')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'stop', 'focus moves to Stop while the input is disabled')
  await waitForAnswerState(page, 'done')
  t.equal(await page.locator('#log').getAttribute('aria-busy'), 'false', 'and not busy after it')
  t.equal(await page.evaluate(() => document.activeElement?.id), 'prompt', 'focus is back in the input')
  t.equal(await page.locator('.msg-user .bubble').first().textContent(), 'line one\nline two', 'the question keeps its line break', { log })

  // Turn 2 carries the history.
  await setExtraBody(page, { mock: { tokens: ['Second', ' answer.'], tokenDelayMs: 20, jitterMs: 0, tag: 'turn-2' } })
  await sendPrompt(page, 'and again')
  await waitForAnswerState(page, 'done')
  t.equal(await answerText(page), 'Second answer.')
  await mock.waitFor('turn-1')
  const second = await mock.waitFor('turn-2')
  t.same((second.body as { messages: unknown[] }).messages, [
    { role: 'user', content: 'line one\nline two' },
    { role: 'assistant', content: 'First answer.' },
    { role: 'user', content: 'and again' }
  ], 'the second request sends the whole conversation')
  t.equal(posts.length, 2, 'one POST per turn')
  t.match(posts[0]?.conversationId, /^[A-Za-z0-9_.:-]{1,128}$/, 'the page names its conversation, in the form the relay accepts')
  t.equal(posts[1]?.conversationId, posts[0]?.conversationId, 'both turns name the same conversation')

  // New chat: an empty page and a new conversation id.
  const before = await page.evaluate(() => localStorage.getItem('llm-relay:current'))
  t.equal(before, posts[0]?.conversationId, 'the conversation is stored under the id the relay knows it by')
  await page.getByRole('button', { name: 'New chat' }).click()
  t.equal(await page.locator('.msg').count(), 0, 'the conversation is cleared')
  t.equal(await page.locator('#empty').isVisible(), true, 'the welcome is back')
  const after = await page.evaluate(() => localStorage.getItem('llm-relay:current'))
  t.ok(typeof after === 'string' && after !== before, 'with a new conversation id')
  t.equal(await page.locator('#chat-list .chat-open').count(), 1, 'the first conversation stays in the list')
})
