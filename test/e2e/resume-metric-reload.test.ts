// relay_resumes_total counts the chat page's reload (README "Logs and metrics"): a real Chromium
// reloads the page mid-answer, the page re-attaches through its conversation, and the counter
// moves by exactly one; the first read of the answer did not count.
import t from 'tap'
import { browserStack, chromiumMissing, openPage, sendPrompt, setExtraBody, waitForAnswerState, waitForTextLength } from '../fixtures/browser.js'

async function resumes (url: string, via: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`relay_resumes_total{via="${via}"} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

t.test('a page reload mid-answer is one resume', { skip: process.env.CI === 'true' ? false : chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const tokens = Array.from({ length: 40 }, (_, i) => `t${i} `)
  await setExtraBody(page, { mock: { tokens, tokenDelayMs: 80, firstTokenDelayMs: 50, jitterMs: 0 } })
  await sendPrompt(page, 'Count slowly, I will reload')
  await waitForTextLength(page, 20)
  t.equal(await resumes(relay.url, 'conversation'), 0, 'the answer\'s own stream is no resume')
  t.equal(await resumes(relay.url, 'stream'), 0)

  await page.reload()
  await waitForAnswerState(page, 'done')
  t.equal(await resumes(relay.url, 'conversation'), 1, 'the reload re-attached once, through the conversation', { log })
})
