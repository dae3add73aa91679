/**
 * Screenshots of a finished markdown answer at desktop (1280×800) and phone (390×844) sizes,
 * light and dark, saved to test/artifacts/. `UPDATE_SCREENSHOTS=1 npx tap
 * test/browser/screenshots.test.ts` also copies the desktop, phone and dark desktop ones to
 * docs/ for the README.
 */
import t from 'tap'
import type { Browser } from 'playwright-core'
import type { Test } from 'tap'
import type { RunningRelay } from '../fixtures/relay.js'
import { answerSource, chromiumMissing, DESKTOP, browserStack, openPage, PHONE, screenshot, sendPrompt, setExtraBody, waitForAnswerState, waitForTextLength } from '../fixtures/browser.js'

const OLDER = [
  { prompt: 'What makes a streaming relay resumable?', answer: 'Every event has an id, kept in a journal: a client that drops reconnects with the last id it saw and gets only what came after.' },
  { prompt: 'And what does Stop do?', answer: 'It sends `DELETE /v1/chat/stream/:id`: the relay aborts the upstream request, so the model stops spending tokens.' }
]

const PROMPT = 'How do I read the relay\'s stream in a browser?'
const ANSWER = [
  'Use `fetch` and read the body as it arrives: unlike `EventSource`, it can send an **Authorization** header.',
  '',
  '```js',
  'const res = await fetch(\'/v1/chat/stream\', {',
  '  method: \'POST\',',
  '  headers: { \'content-type\': \'application/json\' },',
  '  body: JSON.stringify({ messages })',
  '})',
  'for await (const text of res.body.pipeThrough(new TextDecoderStream())) {',
  '  parser.push(text) // one SSE event at a time',
  '}',
  '```',
  '',
  'To **resume** after a drop:',
  '',
  '1. Keep the `id` of the last event you saw.',
  '2. Reconnect with `?lastEventId=`: the relay sends only what came after.',
  '',
  '| event | means |',
  '|---|---|',
  '| `delta` | the next piece of text |',
  '| `close` | the stream is over, with a reason |'
].join('\n')

async function conversation (t: Test, browser: Browser, relay: RunningRelay, name: string, options: Parameters<typeof openPage>[2]) {
  const { context, page, log } = await openPage(browser, relay.url, options)
  t.teardown(() => context.close())
  for (const turn of OLDER) {
    await setExtraBody(page, { mock: { text: turn.answer, tokenDelayMs: 2, firstTokenDelayMs: 20, jitterMs: 0 } })
    await sendPrompt(page, turn.prompt)
    await waitForAnswerState(page, 'done')
  }
  await page.getByRole('button', { name: 'New chat' }).click()
  await setExtraBody(page, { mock: { text: ANSWER, tokenDelayMs: 8, firstTokenDelayMs: 150, jitterMs: 4 } })
  await sendPrompt(page, PROMPT)
  await waitForAnswerState(page, 'done')
  t.equal(await answerSource(page), ANSWER, `${name}: the answer is complete`, { log })
  // Give the composer its placeholder look, and show the question with its answer.
  await page.locator('#prompt').blur()
  await page.evaluate(() => { (document.getElementById('main') as HTMLElement).scrollTop = 0 })
  await page.waitForTimeout(100)
  return page
}

t.test('screenshots of a finished answer', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)

  const phone = { viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
  const shots = [
    { name: 'chat-desktop-light', docs: 'screenshot-desktop.png', options: { viewport: DESKTOP, colorScheme: 'light' as const } },
    { name: 'chat-phone-light', docs: 'screenshot-phone.png', options: { ...phone, colorScheme: 'light' as const } },
    { name: 'chat-desktop-dark', docs: 'screenshot-dark.png', options: { viewport: DESKTOP, colorScheme: 'dark' as const } },
    { name: 'chat-phone-dark', options: { ...phone, colorScheme: 'dark' as const } }
  ]
  for (const shot of shots) {
    const page = await conversation(t, browser, relay, shot.name, shot.options)
    if (shot.options.viewport === PHONE) {
      // Readable on a phone: nothing wider than the screen (wide code and tables scroll inside
      // their own box), text at a readable size.
      const layout = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        fontSize: parseFloat(getComputedStyle(document.querySelector('.answer') as Element).fontSize)
      }))
      t.ok(layout.scrollWidth <= PHONE.width, `${shot.name}: no horizontal scrolling (${layout.scrollWidth}px)`)
      t.ok(layout.fontSize >= 16, `${shot.name}: answer text at ${layout.fontSize}px`)
    }
    const file = await screenshot(page, shot.name, shot.docs)
    t.pass(`${shot.name}: saved ${file}`)
    if (shot.options.viewport === PHONE) {
      await page.getByRole('button', { name: 'Chats' }).click()
      await page.waitForTimeout(300)
      await screenshot(page, `${shot.name}-chats`)
    }
  }

  // For review of the other states (artifacts only): mid-answer with the caret, and an error.
  const { context, page, log } = await openPage(browser, relay.url, { viewport: DESKTOP, colorScheme: 'light' })
  t.teardown(() => context.close())
  await screenshot(page, 'chat-empty')
  await setExtraBody(page, { mock: { text: ANSWER, tokenDelayMs: 40, firstTokenDelayMs: 50, jitterMs: 0 } })
  await sendPrompt(page, PROMPT)
  await waitForTextLength(page, 250)
  await screenshot(page, 'chat-streaming')
  await page.locator('#stop').click()
  await waitForAnswerState(page, 'stopped')
  await setExtraBody(page, { mock: { status: 503, errorMessage: 'the model is overloaded' } })
  await sendPrompt(page, 'Try again?')
  await waitForAnswerState(page, 'error')
  t.equal(await page.locator('.error[role="alert"]').last().isVisible(), true, 'the error state is visible', { log })
  await screenshot(page, 'chat-error')
})
