/**
 * Answers render as markdown, finished and while they stream: headings, lists, tables, links,
 * inline code, highlighted code blocks. Mid-stream, half-written markup (an open fence, half a
 * table, half a link, open emphasis) already renders as it will once complete: sampled on every
 * animation frame, the answer never shows markup characters and never shrinks or jumps.
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import { answerSource, browserStack, pieces, chromiumMissing, openPage, sendPrompt, setExtraBody, waitForAnswerState } from '../fixtures/browser.js'

const ANSWER = [
  '# Deploying the relay', '',
  'Run **two** instances behind *nginx*, with `REDIS_URL` set. See [the docs](https://example.com/docs) or <https://example.org>.', '',
  '## Steps', '',
  '1. Install the packages:', '   ```sh', '   npm install', '   ```',
  '2. Start it', '   - with `npm start`', '   - or in Docker', '',
  '- [x] tested', '- [ ] deployed', '',
  '| variable | default | meaning |', '|---|:-:|--:|', '| `PORT` | 3000 | where it listens |', '| `RETAIN_MS` | 300000 | how long answers stay |', '',
  '```python', 'def greet(name: str) -> str:', '    """Say hello."""', '    return f"Hello, {name}!"  # a comment', '```', '',
  '> A quote, with **bold** in it.', '',
  '---', '',
  'The end.'
].join('\n')

const answer = (page: Page) => page.locator('.msg-assistant .markdown').last()

t.test('a finished answer: each markdown element renders', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  await setExtraBody(page, { mock: { text: ANSWER, tokenDelayMs: 2, firstTokenDelayMs: 10, jitterMs: 0 } })
  await sendPrompt(page, 'How do I deploy it?')
  await waitForAnswerState(page, 'done')
  const md = answer(page)
  t.equal(await answerSource(page), ANSWER, 'the page holds the markdown exactly', { log })

  // Headings, under the page's own (the answer sits under an h2): # is an h3, ## an h4.
  t.same(await md.locator('h3').allTextContents(), ['Deploying the relay'], 'a level-1 heading')
  t.same(await md.locator('h4').allTextContents(), ['Steps'], 'a level-2 heading')
  t.equal(await md.getByRole('heading', { name: 'Deploying the relay' }).count(), 1, 'headings are headings for assistive technology')

  // Inline: strong, emphasis, inline code, links opened safely, autolinks.
  const intro = md.locator('p').first()
  t.equal(await intro.locator('strong').textContent(), 'two', 'bold')
  t.equal(await intro.locator('em').textContent(), 'nginx', 'emphasis')
  t.equal(await intro.locator('code').textContent(), 'REDIS_URL', 'inline code')
  const links = await intro.locator('a').evaluateAll((as) => as.map((a) => ({ text: a.textContent, href: a.getAttribute('href'), target: a.getAttribute('target'), rel: a.getAttribute('rel') })))
  t.same(links, [
    { text: 'the docs', href: 'https://example.com/docs', target: '_blank', rel: 'noopener noreferrer' },
    { text: 'https://example.org', href: 'https://example.org/', target: '_blank', rel: 'noopener noreferrer' }
  ], 'links open in a new tab, with no opener and no referrer')

  // Lists: ordered, nested, with a code block inside an item, and a task list.
  const ordered = md.locator('ol').first()
  t.equal(await ordered.locator(':scope > li').count(), 2, 'an ordered list of two items')
  t.same(await ordered.locator('ul > li').allTextContents(), ['with npm start', 'or in Docker'], 'a nested list')
  t.equal(await ordered.locator('li .code-block code').textContent(), 'npm install', 'a code block inside a list item')
  const tasks = await md.locator('li:has(> input[type="checkbox"])').evaluateAll((items) => items.map((li) => {
    const box = li.querySelector('input') as HTMLInputElement
    return { text: li.textContent?.trim(), checked: box.checked, disabled: box.disabled }
  }))
  t.same(tasks, [{ text: 'tested', checked: true, disabled: true }, { text: 'deployed', checked: false, disabled: true }], 'a task list, read-only')

  // A table: header, cells, alignment.
  const table = md.locator('table')
  t.same(await table.locator('th').allTextContents(), ['variable', 'default', 'meaning'], 'table header cells')
  t.same(await table.locator('tbody tr').nth(1).locator('td').allTextContents(), ['RETAIN_MS', '300000', 'how long answers stay'], 'table body cells')
  t.same(await table.locator('tbody tr').first().locator('td').evaluateAll((cells) => cells.map((c) => c.getAttribute('align'))), [null, 'center', 'right'], 'column alignment')
  t.equal(await table.locator('td code').first().textContent(), 'PORT', 'inline code in a cell')

  // A highlighted code block, with its language and a Copy button.
  const block = md.locator('.code-block').filter({ has: page.locator('code.language-python') })
  t.equal(await block.locator('.code-lang').textContent(), 'python', 'the block names its language')
  t.equal(await block.getByRole('button', { name: 'Copy python code' }).count(), 1, 'and has a Copy button')
  const code = block.locator('code')
  t.equal(await code.textContent(), 'def greet(name: str) -> str:\n    """Say hello."""\n    return f"Hello, {name}!"  # a comment', 'the code is exact')
  t.same(await code.locator('.hljs-keyword').allTextContents(), ['def', 'return'], 'keywords are highlighted')
  t.same(await code.locator('.hljs-title').allTextContents(), ['greet'], 'so is the function name')
  t.ok((await code.locator('.hljs-string').count()) >= 2, 'and strings')
  t.equal(await code.locator('.hljs-comment').textContent(), '# a comment', 'and the comment')
  const colors = await code.evaluate((c) => ({
    keyword: getComputedStyle(c.querySelector('.hljs-keyword') as Element).color,
    plain: getComputedStyle(c).color
  }))
  t.not(colors.keyword, colors.plain, `highlighted tokens have their own color (${colors.keyword})`)
  t.equal(await code.evaluate((c) => getComputedStyle(c).fontFamily.includes('monospace')), true, 'code is monospace')

  // The rest.
  t.equal(await md.locator('blockquote strong').textContent(), 'bold', 'a quote with markup in it')
  t.equal(await md.locator('hr').count(), 1, 'a thematic break')
  t.equal(await md.locator('p').last().textContent(), 'The end.', 'the last paragraph')

  // An answer whose first heading is ## still starts at h3: the outline has no gap.
  await setExtraBody(page, { mock: { text: '## Overview\n\nText.\n\n### Detail\n\nMore.\n\n# Big', tokenDelayMs: 2, firstTokenDelayMs: 10, jitterMs: 0 } })
  await sendPrompt(page, 'Headings from level two')
  await waitForAnswerState(page, 'done')
  const levels = await answer(page).locator('h3, h4, h5, h6').evaluateAll((hs) => hs.map((h) => `${h.tagName} ${h.textContent}`))
  t.same(levels, ['H3 Overview', 'H4 Detail', 'H3 Big'], 'the first heading is an h3, the others keep their distance (never above h3)')
})

/**
 * Records, on every animation frame while the answer streams, its text (without code headers) and
 * height, and what markup characters show outside code.
 */
async function recordFrames (page: Page): Promise<void> {
  await page.evaluate(() => {
    const frames: Array<{ text: string, height: number, leaks: string[] }> = []
    ;(window as unknown as { __frames: typeof frames }).__frames = frames
    const tick = () => {
      const answers = document.querySelectorAll<HTMLElement>('.msg-assistant')
      const last = answers[answers.length - 1]
      const md = last?.querySelector('.markdown')
      if (md) {
        const copy = md.cloneNode(true) as Element
        for (const node of copy.querySelectorAll('.code-head, .caret')) node.remove()
        // Text outside code (inline or block): where markup characters must not show.
        const prose = copy.cloneNode(true) as Element
        for (const node of prose.querySelectorAll('code')) node.remove()
        const text = prose.textContent ?? ''
        const leaks = ['**', '```', '](', '|---', '| ---', '~~', '`'].filter((m) => text.includes(m))
        if (/(^|\n)\s*(#{1,6}|[-*+]|\d+[.)])\s*$/.test(text)) leaks.push('a bare block marker')
        frames.push({ text: (copy.textContent ?? '').replace(/\s+/g, ' ').trim(), height: md.getBoundingClientRect().height, leaks })
      }
      if (last?.dataset.state === 'streaming' || last?.dataset.state === 'waiting' || last === undefined) requestAnimationFrame(tick)
    }
    requestAnimationFrame(tick)
  })
}

t.test('while it streams: no markup shows, nothing shrinks or jumps', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const tokens = pieces(ANSWER)
  await setExtraBody(page, { mock: { tokens, tokenDelayMs: 12, firstTokenDelayMs: 50, jitterMs: 0 } })
  await recordFrames(page)
  await sendPrompt(page, 'Stream it')
  await waitForAnswerState(page, 'done', 60_000)
  const frames = await page.evaluate(() => (window as unknown as { __frames: Array<{ text: string, height: number, leaks: string[] }> }).__frames)
  const final = frames.at(-1)?.text ?? ''
  t.ok(frames.length > 50, `sampled ${frames.length} frames of ${tokens.length} tokens`, { log })

  const leaks = frames.filter((f) => f.leaks.length > 0).map((f) => `${f.leaks.join(',')} in …${f.text.slice(-40)}`)
  t.same(leaks, [], 'no frame shows markup characters outside code')

  const notPrefix = frames.filter((f) => !final.startsWith(f.text)).map((f) => f.text.slice(-60))
  t.same(notPrefix, [], 'every frame shows a beginning of the final text: nothing is shown that then changes')

  const shrinks: string[] = []
  for (let i = 1; i < frames.length; i++) {
    const before = frames[i - 1] as { height: number, text: string }
    const now = frames[i] as { height: number, text: string }
    if (now.height < before.height - 1) shrinks.push(`${before.height} → ${now.height} at …${now.text.slice(-40)}`)
  }
  t.same(shrinks, [], 'the answer never gets shorter on screen (no jump when markup completes)')
})

t.test('mid-stream states: an open fence, half a table, half a link', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  // Each step waits long enough to be looked at; the last token of each step is the point shown.
  const steps = [
    ['Intro **bol', 'd** text.\n\n'],
    ['```js\nconst a = 1\n', 'const b = 2\n```\n\n'],
    ['| a | b |\n', '|---|---|\n| 1 | 2 |\n\n'],
    ['Read [the gu', 'ide](https://example.com/guide).']
  ]
  await setExtraBody(page, { mock: { tokens: steps.flat(), tokenDelayMs: 1500, firstTokenDelayMs: 50, jitterMs: 0 } })
  await sendPrompt(page, 'Show the steps')
  const md = answer(page)
  const waitForSource = async (length: number) => await page.waitForFunction(
    (n) => (document.querySelectorAll('.msg-assistant .markdown')[0]?.textContent ?? '').length >= n, length, { timeout: 10_000 })

  await waitForSource('Intro bol'.length)
  t.equal(await md.locator('strong').textContent(), 'bol', 'open bold is already bold', { log })
  t.notMatch(await md.textContent(), /\*/, 'its asterisks do not show')

  await md.locator('pre code').waitFor({ timeout: 10_000 })
  t.equal(await md.locator('pre code').textContent(), 'const a = 1', 'an open fence is already a code block')
  t.ok((await md.locator('pre code .hljs-keyword').count()) >= 1, 'highlighted as it comes')
  t.notMatch(await md.textContent(), /```/, 'no fence characters show')

  await page.waitForFunction(() => document.querySelector('.msg-assistant .markdown pre code')?.textContent?.includes('const b'), undefined, { timeout: 10_000 })
  await page.waitForTimeout(500) // the header row has arrived meanwhile
  t.equal(await md.locator('table').count(), 0, 'a table header row alone is held back…')
  t.notMatch(await md.textContent(), /\| a \| b \|/, '…not shown as a paragraph of pipes')
  await md.locator('table').waitFor({ timeout: 10_000 })
  t.same(await md.locator('th').allTextContents(), ['a', 'b'], 'then it is a table at once')

  await page.waitForFunction(() => document.querySelector('.msg-assistant .markdown')?.textContent?.includes('the gu'), undefined, { timeout: 10_000 })
  t.notMatch(await md.textContent(), /\[the gu/, 'a half-written link shows its text only, no bracket')
  t.equal(await md.locator('a').count(), 0, 'and is not a link yet')
  await waitForAnswerState(page, 'done')
  t.equal(await md.locator('a').textContent(), 'the guide', 'once complete it is a link')
  t.equal(await md.locator('a').getAttribute('href'), 'https://example.com/guide')
})
