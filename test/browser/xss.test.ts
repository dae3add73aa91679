/**
 * Model output is untrusted. An answer made of XSS payloads (script tags, event handlers,
 * javascript: and data: URLs, SVG and MathML tricks, iframes, CSS, markdown links and images
 * with hostile targets), streamed in small pieces so that every half-written state is rendered
 * too: no payload sets its `window` flag, the page makes no request it did not make before, the
 * Content-Security-Policy had nothing to block, and the DOM holds only what the renderer makes.
 * Each payload targets this relay's own origin (`/exfil-…`), so that a request it caused would
 * be seen here, and nothing leaves 127.0.0.1.
 */
import t from 'tap'
import type { Request } from 'playwright-core'
import { answerSource, browserStack, pieces, chromiumMissing, openPage, sendPrompt, setExtraBody, waitForAnswerState } from '../fixtures/browser.js'

/** Payloads; `FLAG` and `ORIGIN` are replaced by a window flag name and the relay's origin. */
const PAYLOADS = [
  '<script>window.FLAG=1</script>',
  '<img src=x onerror="window.FLAG=1">',
  '<img src="ORIGIN/exfil-img">',
  '<svg onload="window.FLAG=1"><circle r="1"/></svg>',
  '<svg><script>window.FLAG=1</script></svg>',
  '<svg><a xlink:href="javascript:window.FLAG=1"><text y="10">svg link</text></a></svg>',
  '<svg><animate onbegin="window.FLAG=1" attributeName="x" dur="1s"/></svg>',
  '<math><mtext><table><mglyph><style><img src=x onerror="window.FLAG=1"></style></mglyph></table></mtext></math>',
  '<iframe src="javascript:window.top.FLAG=1"></iframe>',
  '<iframe srcdoc="<script>parent.FLAG=1</script>"></iframe>',
  '<object data="ORIGIN/exfil-object"></object><embed src="ORIGIN/exfil-embed">',
  '<a href="javascript:window.FLAG=1">html link</a>',
  '<a href="https://example.com" onclick="window.FLAG=1" onmouseover="window.FLAG=1">hover</a>',
  '<details open ontoggle="window.FLAG=1"><summary>x</summary></details>',
  '<input autofocus onfocus="window.FLAG=1">',
  '<video><source onerror="window.FLAG=1"></video>',
  '<body onload="window.FLAG=1">',
  '<style>@import "ORIGIN/exfil-import"; body { background: url(ORIGIN/exfil-css) }</style>',
  '<div style="background-image: url(ORIGIN/exfil-style)">styled</div>',
  '<link rel="stylesheet" href="ORIGIN/exfil-link">',
  '<meta http-equiv="refresh" content="0; url=javascript:window.FLAG=1">',
  '<base href="ORIGIN/exfil-base/">',
  '<form action="javascript:window.FLAG=1"><button>submit</button></form>',
  '<noscript><p title="</noscript><img src=x onerror=window.FLAG=1>">',
  '[markdown link](javascript:window.FLAG=1)',
  '[mixed case](JaVaScRiPt:window.FLAG=1)',
  '[tab inside](java\tscript:window.FLAG=1)',
  '[entity](&#106;avascript:window.FLAG=1)',
  '[data link](data:text/html;base64,PHNjcmlwdD53aW5kb3cucGFyZW50LkZMQUc9MTwvc2NyaXB0Pg==)',
  '[vbscript](vbscript:msgbox(1))',
  '[title breakout](https://example.com "a\\" onmouseover=\\"window.FLAG=1")',
  '<javascript:window.FLAG=1>',
  '[ref link][evil]\n\n[evil]: javascript:window.FLAG=1',
  '![tracking image](ORIGIN/exfil-markdown-image)',
  '![js image](javascript:window.FLAG=1)',
  '![data image](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9IndpbmRvdy5GTEFHPTEiLz4=)',
  '[![image in link](ORIGIN/exfil-nested)](javascript:window.FLAG=1)',
  '```html\n<script>window.FLAG=1</script>\n<img src=x onerror="window.FLAG=1">\n```',
  '`<img src=x onerror="window.FLAG=1">`',
  '**<img src=x onerror="window.FLAG=1">**',
  '| a | b |\n|---|---|\n| <img src=x onerror="window.FLAG=1"> | [x](javascript:window.FLAG=1) |',
  '> <script>window.FLAG=1</script>',
  '- <iframe src="ORIGIN/exfil-list"></iframe>'
]

t.test('an answer of XSS payloads runs nothing and requests nothing', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const flags = PAYLOADS.map((_, i) => `__xss${i}`)
  const answer = PAYLOADS.map((p, i) => p.replaceAll('FLAG', flags[i] as string).replaceAll('ORIGIN', relay.url)).join('\n\n')

  const requests: Request[] = []
  page.on('request', (request) => requests.push(request))
  const violations: string[] = []
  await page.exposeFunction('__reportViolation', (text: string) => { violations.push(text) })
  await page.evaluate(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      void (window as unknown as { __reportViolation: (t: string) => void }).__reportViolation(`${event.violatedDirective} ${event.blockedURI}`)
    })
  })

  await setExtraBody(page, { mock: { tokens: pieces(answer, 5), tokenDelayMs: 1, firstTokenDelayMs: 20, jitterMs: 0 } })
  await sendPrompt(page, 'Say something dangerous')
  await waitForAnswerState(page, 'done', 60_000)
  t.equal(await answerSource(page), answer, 'the whole answer arrived', { log })

  // Hover and focus everything an event handler might hang on; toggle details.
  const md = page.locator('.msg-assistant .markdown').last()
  for (const link of await md.locator('a').all()) await link.hover()
  await page.waitForTimeout(300)

  const set = await page.evaluate((names) => names.filter((name) => name in window), flags)
  t.same(set, [], 'no payload set its window flag')

  const after = requests.map((r) => `${r.method()} ${new URL(r.url()).pathname}`)
  const unexpected = after.filter((r) => !/^(POST \/v1\/chat|GET \/v1\/chat\/stream\/[\w-]+)$/.test(r))
  t.same(unexpected, [], 'the answer caused no request (only the chat POST and its stream)', { requests: after })
  t.same(violations, [], 'nothing reached the Content-Security-Policy to be blocked')
  t.same(log.filter((line) => line.startsWith('pageerror') || line.startsWith('console.error')), [], 'no error in the page')

  const dom = await md.evaluate((root) => {
    const allowed = new Set(['A', 'BLOCKQUOTE', 'BR', 'BUTTON', 'CODE', 'DEL', 'DIV', 'EM', 'H3', 'H4', 'H5', 'H6', 'HR', 'INPUT', 'LI', 'OL', 'P', 'PRE', 'SPAN', 'STRONG', 'TABLE', 'TBODY', 'TD', 'TH', 'THEAD', 'TR', 'UL'])
    const elements = [...root.querySelectorAll('*')]
    return {
      tags: [...new Set(elements.map((e) => e.tagName))].filter((tag) => !allowed.has(tag)),
      handlers: elements.flatMap((e) => [...e.attributes].filter((a) => /^on/i.test(a.name) || a.name === 'style' || a.name === 'srcdoc').map((a) => `${e.tagName}[${a.name}]`)),
      links: elements.filter((e) => e.tagName === 'A').map((a) => ({ href: a.getAttribute('href') ?? '', target: a.getAttribute('target'), rel: a.getAttribute('rel') })),
      inputs: elements.filter((e) => e.tagName === 'INPUT').map((i) => `${(i as HTMLInputElement).type}:${String((i as HTMLInputElement).disabled)}`)
    }
  })
  t.same(dom.tags, [], 'only the elements the renderer makes (no script, iframe, img, svg, math, object, style, form…)')
  t.same(dom.handlers, [], 'no event handler, inline style or srcdoc attribute')
  t.ok(dom.links.length > 0, `links stay links where they are safe (${dom.links.length})`)
  t.same(dom.links.filter((l) => !/^(https?:|mailto:)/.test(l.href) || l.target !== '_blank' || l.rel !== 'noopener noreferrer'), [], 'every link is http(s) or mailto, opens in a new tab, no opener, no referrer')
  t.same(dom.inputs, [], 'no input field came from the answer')

  // What the payloads look like: shown as text, not lost.
  const text = await md.textContent() ?? ''
  t.match(text, '<script>window.__xss0=1</script>', 'a script tag shows as text')
  t.match(text, 'Image: tracking image', 'a markdown image shows as a link to it, not loaded')
  t.equal(await md.locator('a.image-link').first().getAttribute('href'), `${relay.url}/exfil-markdown-image`, 'its link points where the image was')
  t.equal(await md.locator('code.language-html').textContent(), '<script>window.__xss37=1</script>\n<img src=x onerror="window.__xss37=1">', 'HTML in a code block is code')
})

t.test('the page is served with a Content-Security-Policy that blocks inline script', { skip: chromiumMissing }, async (t) => {
  const { relay, browser } = await browserStack(t)
  const { page, log } = await openPage(browser, relay.url)
  const response = await page.request.get(relay.url)
  const csp = response.headers()['content-security-policy'] ?? ''
  t.match(csp, /script-src 'self'(;|$)/, `scripts only from the relay: ${csp}`)
  t.match(csp, /object-src 'none'/, 'no plugins')
  t.match(csp, /frame-ancestors 'none'/, 'the page is not framed')
  // If markup ever slipped through, the policy stands behind it: an inline handler does not run.
  const ran = await page.evaluate(async () => {
    const probe = document.createElement('div')
    probe.innerHTML = '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" onload="window.__inline=1">'
    document.body.append(probe)
    await new Promise((resolve) => setTimeout(resolve, 300))
    probe.remove()
    return (window as unknown as { __inline?: number }).__inline
  })
  t.equal(ran, undefined, 'an inline event handler is blocked by the policy', { log })
})
