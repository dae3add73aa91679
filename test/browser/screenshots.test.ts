/**
 * Screenshots of a finished two-turn conversation at desktop (1280×800) and phone (390×844)
 * sizes, light and dark, saved to test/artifacts/. `UPDATE_SCREENSHOTS=1 npx tap
 * test/browser/screenshots.test.ts` also copies the light ones to docs/ for the README.
 */
import t from 'tap'
import type { Browser } from 'playwright-core'
import type { Test } from 'tap'
import type { RunningRelay } from '../fixtures/relay.js'
import { answerText, chromiumMissing, DESKTOP, browserStack, openPage, PHONE, screenshot, sendPrompt, setExtraBody, waitForAnswerState, waitForTextLength } from '../fixtures/browser.js'

const turns = [
  {
    prompt: 'What makes a streaming relay resumable?',
    answer: 'Three things work together:\n\n' +
      '1. Every event gets an increasing id, and the relay keeps them in a journal.\n' +
      '2. A client that drops reconnects with the last id it saw (Last-Event-ID), and gets only what came after it.\n' +
      '3. The generation runs apart from any connection, so the model keeps writing while you are away.\n\n' +
      'That is why this answer survives a reload, a flaky network or a closed laptop lid.'
  },
  {
    prompt: 'And what does Stop do?',
    answer: 'It sends DELETE /v1/chat/stream/:id. The relay aborts the upstream request at once, ' +
      'so the model stops spending tokens, not just the screen.'
  }
]

async function conversation (t: Test, browser: Browser, relay: RunningRelay, name: string, options: Parameters<typeof openPage>[2]) {
  const { context, page, log } = await openPage(browser, relay.url, options)
  t.teardown(() => context.close())
  for (const turn of turns) {
    await setExtraBody(page, { mock: { text: turn.answer, tokenDelayMs: 15, firstTokenDelayMs: 150, jitterMs: 5 } })
    await sendPrompt(page, turn.prompt)
    await waitForAnswerState(page, 'done')
    t.equal(await answerText(page), turn.answer, `${name}: the answer is complete`, { log })
  }
  // Give the composer its placeholder look, and let the scroll settle at the end.
  await page.locator('#prompt').blur()
  await page.waitForTimeout(100)
  return page
}

t.test('screenshots of a finished answer', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)

  const shots = [
    { name: 'chat-desktop-light', docs: 'screenshot-desktop.png', options: { viewport: DESKTOP, colorScheme: 'light' as const } },
    { name: 'chat-phone-light', docs: 'screenshot-phone.png', options: { viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'light' as const } },
    { name: 'chat-desktop-dark', options: { viewport: DESKTOP, colorScheme: 'dark' as const } },
    { name: 'chat-phone-dark', options: { viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'dark' as const } }
  ]
  for (const shot of shots) {
    const page = await conversation(t, browser, relay, shot.name, shot.options)
    if (shot.options.viewport === PHONE) {
      // Readable on a phone: nothing wider than the screen, text at a readable size.
      const layout = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        fontSize: parseFloat(getComputedStyle(document.querySelector('.answer') as Element).fontSize)
      }))
      t.ok(layout.scrollWidth <= PHONE.width, `${shot.name}: no horizontal scrolling (${layout.scrollWidth}px)`)
      t.ok(layout.fontSize >= 16, `${shot.name}: answer text at ${layout.fontSize}px`)
    }
    const file = await screenshot(page, shot.name, shot.docs)
    t.pass(`${shot.name}: saved ${file}`)
  }

  // For review of the other states (artifacts only): mid-answer with the caret, and an error.
  const { context, page, log } = await openPage(browser, relay.url, { viewport: DESKTOP, colorScheme: 'light' })
  t.teardown(() => context.close())
  await screenshot(page, 'chat-empty')
  await setExtraBody(page, { mock: { text: turns[0]?.answer, tokenDelayMs: 60, firstTokenDelayMs: 50, jitterMs: 0 } })
  await sendPrompt(page, turns[0]?.prompt ?? '')
  await waitForTextLength(page, 150)
  await screenshot(page, 'chat-streaming')
  await page.locator('#stop').click()
  await waitForAnswerState(page, 'stopped')
  await setExtraBody(page, { mock: { status: 503, errorMessage: 'the model is overloaded' } })
  await sendPrompt(page, 'Try again?')
  await waitForAnswerState(page, 'error')
  t.equal(await page.locator('.error[role="alert"]').last().isVisible(), true, 'the error state is visible', { log })
  await screenshot(page, 'chat-error')
})
