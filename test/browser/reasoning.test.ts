/**
 * A reasoning model on the chat page: the real relay, the embedded mock in its reasoning mode
 * (thinking tokens, a pause, then the answer, as `reasoning_content` deltas) and Chromium.
 * - The Thinking block streams the thinking open, closes when the answer starts, says how long
 *   the model thought, and can be opened again; the texts are exactly the model's.
 * - A reload mid-thinking rebuilds the block from the relay's replay: the same text, once, and a
 *   duration measured from before the reload.
 * - A silent start shows the waiting line with its seconds, gone once tokens come.
 * - Markup in the thinking runs nothing; the block passes axe (contrast in both themes).
 * With UPDATE_SCREENSHOTS=1 the first test also writes docs/screenshot-reasoning.png (README).
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import { answerSource, answerText, audit, browserStack, chromiumMissing, openPage, sampleUntil, screenshot, sendPrompt, setExtraBody, waitForAnswerState } from '../fixtures/browser.js'

/** The last answer's thinking block, as the page shows it. */
interface ThinkingSample {
  /** Whether the last answer has a thinking block. */
  present: boolean
  open: boolean
  label: string
  /** The block's rendered text (the caret left out). */
  text: string
  thoughtMs: number | undefined
  answerLength: number
  state: string | undefined
}

async function thinking (page: Page): Promise<ThinkingSample> {
  return await page.evaluate(() => {
    const answers = document.querySelectorAll<HTMLElement>('.msg-assistant')
    const last = answers[answers.length - 1]
    const block = last?.querySelector<HTMLDetailsElement>('details.reasoning')
    const body = block?.querySelector('.reasoning-text')?.cloneNode(true) as Element | undefined
    for (const caret of body?.querySelectorAll('.caret') ?? []) caret.remove()
    return {
      present: block !== null && block !== undefined,
      open: block?.open ?? false,
      label: block?.querySelector('summary')?.textContent ?? '',
      text: (body?.textContent ?? '').trim(),
      thoughtMs: block?.dataset.thoughtMs === undefined ? undefined : Number(block.dataset.thoughtMs),
      answerLength: (last?.querySelector('.answer')?.textContent ?? '').trim().length,
      state: last?.dataset.state
    }
  })
}

/** Samples the thinking block every 40 ms until the answer reaches `until`. */
async function sampleThinking (page: Page, until: string): Promise<ThinkingSample[]> {
  return await sampleUntil(async () => await thinking(page), until, 40, 30_000)
}

/** The thinking the page stored with the last answer of the conversation shown (known once it ended). */
async function storedReasoning (page: Page): Promise<{ reasoning?: string, thoughtMs?: number } | undefined> {
  return await page.evaluate(() => {
    const id = localStorage.getItem('llm-relay:current')
    const conversation = JSON.parse(localStorage.getItem(`llm-relay:conversation:${id}`) ?? 'null') as { messages: Array<{ role: string, reasoning?: string, thoughtMs?: number }> } | null
    const last = conversation?.messages.findLast((m) => m.role === 'assistant')
    return last === undefined ? undefined : { reasoning: last.reasoning, thoughtMs: last.thoughtMs }
  })
}

/** Plain prose (no markdown syntax): its rendered text is the text itself. */
const words = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${i === 0 ? '' : ' '}${prefix}${i}`)
/** Prose as a model streams it: a word (with the space before it) a token. */
const tokensOf = (text: string): string[] => text.match(/\s*\S+/g) ?? []

t.test('the thinking streams open, closes when the answer starts, says how long, and reopens', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const reasoning = tokensOf('The user asks why the relay keeps a journal. Every event gets an id, so a client that ' +
    'drops can come back with the last id it saw and get exactly the rest. Worth adding: a model that thinks ' +
    'for long before its first word still gets its stream, kept open by heartbeats. Keep it short.')
  const answer = tokensOf('So that no answer is lost: after a drop or a reload the page reconnects with the last ' +
    'event id it saw, and the relay sends exactly what came after.')
  const tokenDelayMs = 40
  const thinkingMs = 700
  await setExtraBody(page, { mock: { reasoningTokens: reasoning, tokens: answer, tokenDelayMs, thinkingMs, firstTokenDelayMs: 100, jitterMs: 0, tag: 'think' } })
  // What screen readers hear: the status line's messages, and the announcer's lines.
  await page.evaluate(() => {
    const heard: string[] = []
    ;(window as unknown as { __heard: string[] }).__heard = heard
    const status = document.getElementById('status') as HTMLElement
    new MutationObserver(() => { heard.push(`status: ${status.textContent ?? ''}`) }).observe(status, { childList: true, characterData: true, subtree: true })
    const announcer = document.getElementById('announcer') as HTMLElement
    new MutationObserver((records) => {
      for (const record of records) for (const node of record.addedNodes) heard.push(`announced: ${node.textContent ?? ''}`)
    }).observe(announcer, { childList: true })
  })
  await sendPrompt(page, 'Think first')

  const samples = await sampleThinking(page, 'done')
  const full = reasoning.join('')
  const beforeAnswer = samples.filter((s) => s.present && s.answerLength === 0)
  const lengths = [...new Set(beforeAnswer.map((s) => s.text.length))]
  t.ok(lengths.length >= 5, `the thinking grew in several steps while the model thought (${lengths.join(' → ')})`, { log })
  t.same(lengths, [...lengths].sort((a, b) => a - b), 'and only ever grew')
  const streaming = beforeAnswer.filter((s) => s.text !== full)
  t.ok(streaming.length > 0 && streaming.every((s) => s.open && s.label === 'Thinking…'), 'the block is open and says "Thinking…" while the thinking streams')
  t.ok(beforeAnswer.some((s) => s.text === full && s.open && s.label === 'Thinking…'), 'and stays so in the silence between the thinking and the answer')
  // The answer's first token closes the block at once; its text shows on the next frame.
  t.ok(beforeAnswer.every((s) => s.open || (s.text === full && /^Thought for \d+ s$/.test(s.label))), 'it closes only once the answer starts')
  const answering = samples.filter((s) => s.answerLength > 0)
  t.ok(answering.length > 0, 'the answer was seen streaming')
  t.ok(answering.every((s) => !s.open && /^Thought for \d+ s$/.test(s.label)), 'from the answer\'s first token on, the block is closed and says how long the model thought')
  t.ok(answering.every((s) => s.text === reasoning.join('')), 'by then it holds all of the thinking')

  const end = await thinking(page)
  t.equal(end.text, reasoning.join(''), 'the block shows exactly the model\'s thinking')
  t.equal(await answerSource(page), answer.join(''), 'the answer follows, exactly')
  t.equal(await answerText(page), answer.join(''), 'and is what the page shows apart from the thinking')
  // From the first thinking token to the first answer token the mock took (n - 1) pauses and
  // the thinking time; the page measures it from arrivals, so no less than that (less a little
  // timer slack) and not much more on a loaded machine.
  const minimum = (reasoning.length - 1) * tokenDelayMs + thinkingMs
  const thoughtMs = end.thoughtMs ?? -1
  t.ok(thoughtMs >= minimum - 100 && thoughtMs <= minimum + 3000, `it thought for ${thoughtMs} ms (the mock: ${minimum} ms)`)
  t.equal(end.label, `Thought for ${Math.max(1, Math.round(thoughtMs / 1000))} s`, 'the summary says it in seconds')

  const stored = await storedReasoning(page)
  t.equal(stored?.reasoning, reasoning.join(''), 'the thinking is kept with the answer, apart from it')
  t.equal(stored?.thoughtMs, end.thoughtMs, 'with how long it took')
  const record = await mock.waitFor('think')
  t.equal(record.tokensSent, reasoning.length + answer.length, 'the mock sent every token')
  const heard = await page.evaluate(() => (window as unknown as { __heard: string[] }).__heard)
  const seconds = Math.max(1, Math.round(thoughtMs / 1000))
  t.same(heard.filter((line) => line.startsWith('status: ')), [
    'status: Generating an answer…',
    'status: The model is thinking…',
    `status: Thought for ${seconds} ${seconds === 1 ? 'second' : 'seconds'}; the answer follows.`,
    'status: Answer complete.'
  ], 'screen readers hear that the model thinks, then for how long it thought')
  t.same(heard.filter((line) => line.startsWith('announced: ')), [`announced: ${answer.join('')}`], 'and the answer, a paragraph at a time, never the thinking')

  // The user opens it again, with the mouse and with the keyboard.
  const summary = page.locator('.msg-assistant details.reasoning > summary').last()
  await summary.click()
  t.equal((await thinking(page)).open, true, 'a click opens it')
  t.equal(await page.locator('.msg-assistant .reasoning-text').last().isVisible(), true, 'and its text shows')
  await page.locator('#prompt').blur()
  await page.mouse.move(700, 600)
  await screenshot(page, 'chat-reasoning', 'screenshot-reasoning.png')
  await summary.focus()
  await page.keyboard.press('Enter')
  t.equal((await thinking(page)).open, false, 'Enter on its summary closes it again')

  // A stored conversation shows it closed, as it was.
  await page.reload()
  await waitForAnswerState(page, 'done', 5000)
  const restored = await thinking(page)
  t.equal(restored.open, false, 'after a reload the block is closed')
  t.equal(restored.label, end.label, 'with the same duration')
  t.equal(restored.text, reasoning.join(''), 'and the same text')
  t.equal(await page.locator('.msg-assistant details.reasoning').count(), 1, 'once')
})

t.test('a reload mid-thinking rebuilds the block: the same text, once, and a duration from before the reload', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const reasoning = words('step', 40)
  const answer = words('result', 8)
  const tokenDelayMs = 70
  const thinkingMs = 300
  await setExtraBody(page, { mock: { reasoningTokens: reasoning, tokens: answer, tokenDelayMs, thinkingMs, firstTokenDelayMs: 50, jitterMs: 0, tag: 'reload' } })
  await sendPrompt(page, 'Think, I will reload')
  await page.waitForFunction(() => (document.querySelector('.msg-assistant .reasoning-text')?.textContent ?? '').length >= 40, undefined, { timeout: 20_000 })
  await page.reload()

  await page.locator('.msg-assistant details.reasoning').waitFor({ timeout: 5000 })
  const rebuilt = await thinking(page)
  t.equal(rebuilt.answerLength, 0, 'the re-attached page is still in the thinking', { log })
  t.equal(rebuilt.open, true, 'the rebuilt block is open while the model thinks')
  t.ok(reasoning.join('').startsWith(rebuilt.text), `what it shows is the start of the thinking (${rebuilt.text.length} characters)`)
  await waitForAnswerState(page, 'done')
  const end = await thinking(page)
  t.equal(end.text, reasoning.join(''), 'the block holds exactly the thinking: nothing lost, nothing doubled')
  t.equal(await page.locator('.msg-assistant details.reasoning').count(), 1, 'one block')
  t.equal(end.open, false, 'closed once the answer came')
  t.equal(await answerSource(page), answer.join(''), 'the answer is exact')
  t.equal((await storedReasoning(page))?.reasoning, reasoning.join(''), 'and the stored thinking too')
  // The reload kept when the thinking began (pagehide): the whole thinking is counted.
  const minimum = (reasoning.length - 1) * tokenDelayMs + thinkingMs
  t.ok((end.thoughtMs ?? 0) >= minimum - 100, `the duration counts from before the reload (${end.thoughtMs} ms, the mock: ${minimum} ms)`)
  t.equal(mock.requests.filter((r) => r.tag === 'reload').length, 1, 'no second generation was started')
})

t.test('a silent start shows the waiting line and its seconds, gone when the first token comes', { skip: chromiumMissing }, async (t) => {
  // Commit after 200 ms of silence (heartbeats from then on), a model silent for 3.5 s.
  const { relay, browser } = await browserStack(t, { COMMIT_AFTER_MS: '200' })
  const { page, log } = await openPage(browser, relay.url)
  const reasoning = words('idea', 6)
  await setExtraBody(page, { mock: { reasoningTokens: reasoning, text: 'Done.', tokenDelayMs: 30, firstTokenDelayMs: 3500, jitterMs: 0 } })
  await sendPrompt(page, 'Take your time')

  const waiting = page.locator('.msg-assistant .waiting').last()
  await waiting.waitFor({ state: 'visible', timeout: 3000 })
  t.match(await waiting.textContent(), /^Waiting for the model…\d+ s$/, 'the page says it waits for the model, and for how long', { log })
  t.equal(await page.locator('.msg-assistant .answer').last().isVisible(), false, 'in the empty answer\'s place')
  const first = Number(/(\d+) s/.exec(await waiting.locator('.waiting-time').textContent() ?? '')?.[1])
  await page.waitForFunction((before) => Number(/(\d+) s/.exec(document.querySelector('.msg-assistant .waiting-time')?.textContent ?? '')?.[1]) > before, first, { timeout: 2500 })
  t.pass(`the seconds count up (from ${first} s)`)
  t.equal((await thinking(page)).present, false, 'no thinking block before any thinking came')

  await page.locator('.msg-assistant details.reasoning').waitFor({ timeout: 10_000 })
  t.equal(await waiting.isVisible(), false, 'the first thinking token replaces the waiting line')
  await waitForAnswerState(page, 'done')
  t.equal(await waiting.isVisible(), false, 'and it does not come back')
  t.equal((await thinking(page)).text, reasoning.join(''), 'the thinking is exact')
  t.equal(await answerSource(page), 'Done.', 'the answer too')

  // A model that thinks without showing it: the waiting line, then the answer itself.
  await setExtraBody(page, { mock: { text: 'Quiet answer.', tokenDelayMs: 30, firstTokenDelayMs: 2500, jitterMs: 0 } })
  await sendPrompt(page, 'Again, without thinking aloud')
  await page.locator('.msg-assistant .waiting').last().waitFor({ state: 'visible', timeout: 3000 })
  await waitForAnswerState(page, 'done')
  t.equal(await page.locator('.msg-assistant .waiting').last().isVisible(), false, 'the answer replaces the waiting line')
  t.equal((await thinking(page)).present, false, 'an answer without thinking has no thinking block')
  t.equal(await answerSource(page), 'Quiet answer.', 'the answer is exact')
})

t.test('a reload during the silence: the waiting line counts from the question, not from the reload', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t, { COMMIT_AFTER_MS: '200' })
  const { page, log } = await openPage(browser, relay.url)
  await setExtraBody(page, { mock: { reasoning: 'Late but here.', text: 'Answer.', tokenDelayMs: 30, firstTokenDelayMs: 6000, jitterMs: 0 } })
  await sendPrompt(page, 'Be slow')
  const seconds = async (): Promise<number> => Number(/(\d+) s/.exec(await page.locator('.msg-assistant .waiting-time').last().textContent() ?? '')?.[1])
  await page.waitForFunction(() => /^[2-9] s$/.test(document.querySelector('.msg-assistant .waiting-time')?.textContent ?? ''), undefined, { timeout: 5000 })
  const before = await seconds()
  await page.reload()
  await page.locator('.msg-assistant .waiting').waitFor({ state: 'visible', timeout: 3000 })
  t.ok(await seconds() >= before, `after the reload it goes on from ${before} s (shows ${await seconds()} s)`, { log })
  await waitForAnswerState(page, 'done')
  t.equal((await thinking(page)).text, 'Late but here.', 'then the thinking comes')
  t.equal(await answerSource(page), 'Answer.', 'and the answer')
})

t.test('Stop while the model thinks: the block keeps what came and how long, also after a reload', { skip: chromiumMissing }, async (t) => {
  const { mock, relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const reasoning = words('musing', 60)
  await setExtraBody(page, { mock: { reasoningTokens: reasoning, text: 'Never shown.', tokenDelayMs: 60, firstTokenDelayMs: 50, jitterMs: 0, tag: 'stop' } })
  await sendPrompt(page, 'Think, I will stop you')
  await page.waitForFunction(() => (document.querySelector('.msg-assistant .reasoning-text')?.textContent ?? '').length >= 60, undefined, { timeout: 20_000 })
  await page.keyboard.press('Escape')
  await waitForAnswerState(page, 'stopped')
  const stopped = await thinking(page)
  t.ok(stopped.text.length >= 60 && reasoning.join('').startsWith(stopped.text), `the block keeps the thinking that came (${stopped.text.length} characters)`, { log })
  t.match(stopped.label, /^Thought for \d+ s$/, 'and says how long the model thought until stopped')
  t.equal(stopped.answerLength, 0, 'no answer came')
  const record = await mock.waitFor('stop')
  t.equal(record.aborted, true, 'the model was stopped, not just the screen')
  const stored = await storedReasoning(page)
  t.equal(stored?.reasoning, stopped.text, 'the thinking shown is the thinking kept')

  await page.reload()
  await waitForAnswerState(page, 'stopped', 5000)
  const restored = await thinking(page)
  t.equal(restored.text, stopped.text, 'after a reload the same thinking')
  t.equal(restored.label, stopped.label, 'and duration')
  t.equal(restored.open, false, 'closed, as every stored thinking')
  t.match(await page.locator('.msg-assistant .notice').last().textContent(), /Stopped/, 'under the Stopped marker')
})

t.test('markup in the thinking runs nothing, loads nothing, and shows as text', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const requests: string[] = []
  page.on('request', (request) => { requests.push(request.url()) })
  const attack = [
    'Plan: <img src=x onerror=window.__xss=1>', ' then <script>window.__xss=2</script>',
    ' [link](javascript:window.__xss=3)', ' <svg onload=window.__xss=4></svg>',
    ' <a href="javascript:window.__xss=5">a</a> ![i](http://127.0.0.1:9/leak.png)'
  ]
  await setExtraBody(page, { mock: { reasoningTokens: attack, text: 'Safe.', tokenDelayMs: 20, firstTokenDelayMs: 50, jitterMs: 0 } })
  await sendPrompt(page, 'Think something nasty')
  await waitForAnswerState(page, 'done')
  const block = page.locator('.msg-assistant details.reasoning').last()
  await block.locator('summary').click()
  await page.waitForTimeout(200)

  t.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined, 'no script ran', { log })
  t.equal(await block.locator('img, script, svg, iframe, [onerror], [onload]').count(), 0, 'no element was made from the markup')
  t.equal(await block.locator('a[href^="javascript"]').count(), 0, 'no javascript: link')
  t.match(await block.locator('.reasoning-text').textContent(), /<img src=x onerror=window.__xss=1>/, 'the HTML shows as text')
  t.same(requests.filter((url) => url.endsWith('/x') || url.includes('leak.png')), [], 'nothing was requested for it')
  t.equal((await storedReasoning(page))?.reasoning, attack.join(''), 'the thinking is kept exactly')

  await page.reload()
  await waitForAnswerState(page, 'done', 5000)
  await page.locator('.msg-assistant details.reasoning > summary').last().click()
  await page.waitForTimeout(200)
  t.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined, 'nor from the stored thinking after a reload')
  t.equal(await page.locator('.msg-assistant details.reasoning').locator('img, script, svg').count(), 0, 'which makes no element either')
})

t.test('axe finds nothing wrong with the thinking block and the waiting line, light and dark', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  for (const colorScheme of ['light', 'dark'] as const) {
    const { context, page, log } = await openPage(browser, relay.url, { colorScheme })
    const check = async (what: string, selector: string): Promise<void> => {
      t.same(await audit(page, selector), [], `${colorScheme}: ${what}`, { log })
    }
    await setExtraBody(page, { mock: { reasoning: 'Weigh **both** options, then `pick` one.', text: 'Picked.', tokenDelayMs: 400, firstTokenDelayMs: 1800, jitterMs: 0 } })
    await sendPrompt(page, 'Choose')
    await page.locator('.msg-assistant .waiting').waitFor({ state: 'visible', timeout: 3000 })
    await check('the waiting line', '.msg-assistant')
    await page.locator('.msg-assistant details.reasoning').waitFor({ timeout: 5000 })
    await check('the thinking block, open, streaming', '.msg-assistant')
    await waitForAnswerState(page, 'done')
    await check('the thinking block, closed', '.msg-assistant')
    await page.locator('.msg-assistant details.reasoning > summary').click()
    await check('the thinking block, opened again', '.msg-assistant')
    await context.close()
  }
})
