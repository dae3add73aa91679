/**
 * The chat page's main-thread time per token while a markdown-heavy answer streams, at two
 * answer lengths: `node --import tsx bench/page-render.ts [runs] [window] [tokensPerFrame]`.
 *
 * What is measured: the page as served (`plugins/chat-page.ts`, its CSS and modules) in headless
 * Chromium (/usr/bin/chromium, or CHROMIUM_BIN). In the page, an answer view (the same
 * `AnswerView` the chat uses: typewriter, streaming markdown, highlighting, sanitizing, caret;
 * the conversation scrolled to its end after each frame, as the chat follows an answer) is
 * placed in the conversation and fed a markdown answer (headings, paragraphs with
 * bold, inline code and links, lists, tables, fenced code in three languages), cut into tokens
 * of about four characters as models send them. The answer is first brought to its length (the
 * tokens before the window are pushed and flushed at once: the same DOM and state as if they
 * had streamed), then `window` tokens are pushed, `tokensPerFrame` per animation frame, as a fast
 * model streams them, and Chromium's main-thread busy time over that window (CDP
 * `Performance.getMetrics` TaskDuration: script, style, layout, paint) is divided by the tokens.
 * Network and SSE parsing are not in it: they cost the same per token at any length.
 *
 * Runs alternate between the two lengths (1,000 and 20,000 tokens), each in a fresh page; the
 * medians and their ratio are printed and written to bench/results/page-render.json. Not a test:
 * the figures depend on the machine. `PAGE_ROOT=DIR` measures another copy of `public/` (an older
 * commit's: `git archive REV public | tar -x -C DIR`) with the same vendored modules.
 */
import { writeFile, mkdir } from 'node:fs/promises'
import os from 'node:os'
import Fastify from 'fastify'
import chatPage from '../plugins/chat-page.js'
import { launchBrowser } from '../test/fixtures/browser.js'
import { median } from './load/index.js'

const runs = Number(process.argv[2] ?? 5)
const window = Number(process.argv[3] ?? 500)
const tokensPerFrame = Number(process.argv[4] ?? 4)
const LENGTHS = [1000, 20_000]

/** One section of a typical technical answer; `n` varies the text so no two sections are equal. */
function section (n: number): string {
  const lang = ['python', 'typescript', 'bash'][n % 3]
  const code = {
    python: `def handler_${n}(event, context):\n    """Handle event ${n}."""\n    items = [x * ${n} for x in event["items"] if x > 0]\n    return {"count": len(items), "total": sum(items)}  # done\n`,
    typescript: `export async function fetch${n} (url: string): Promise<number> {\n  const res = await fetch(url, { headers: { 'x-id': '${n}' } })\n  if (!res.ok) throw new Error(\`HTTP \${res.status}\`)\n  return (await res.json()).value * ${n}\n}\n`,
    bash: `for f in logs/*.log; do\n  grep -c "ERROR ${n}" "$f" >> counts.txt\ndone\nsort -n counts.txt | tail -n ${n % 9 + 1}\n`
  }[lang as 'python' | 'typescript' | 'bash']
  return [
    `## Step ${n}: configure the ${['cache', 'queue', 'relay', 'worker'][n % 4]}`,
    '',
    `To set this up, open **config.${n}.yaml** and set \`retries\` to ${n % 5 + 1}. The [reference](https://example.com/docs/${n}) explains each option; the *defaults* are usually fine, but ~~never~~ rarely for production.`,
    '',
    `- Start the service with \`npm start -- --port ${3000 + n}\``,
    `- Check that \`/healthz\` answers **200** within ${n % 7 + 1} seconds`,
    '- Watch the logs for warnings:',
    `  - \`slow_consumer\` means a reader fell behind (item ${n})`,
    '  - `abandoned` means nobody came back',
    '',
    '| option | default | meaning |',
    '|---|:-:|---|',
    `| \`timeout\` | ${n * 10} ms | how long to wait |`,
    `| \`limit\` | ${n % 50} | most at once |`,
    '| `mode` | `fast` | the strategy |',
    '',
    `\`\`\`${lang}`,
    code,
    '```',
    '',
    `> Note ${n}: restart after changing the file.`,
    ''
  ].join('\n')
}

/** The answer as tokens of 2 to 6 characters (about four on average). */
function answerTokens (count: number): string[] {
  let text = ''
  for (let n = 1; text.length < count * 6; n++) text += section(n) + '\n'
  const tokens: string[] = []
  for (let i = 0, k = 0; tokens.length < count; k++) {
    const size = 2 + (k * 5 % 5)
    tokens.push(text.slice(i, i + size))
    i += size
  }
  return tokens
}

const app = Fastify({ logger: false })
await app.register(chatPage, { root: process.env.PAGE_ROOT })
await app.listen({ host: '127.0.0.1', port: 0 })
const address = app.server.address()
const origin = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
const browser = await launchBrowser()
const chromium = `Chromium ${browser.version()}`

interface Sample { length: number, usPerToken: number, scriptUs: number, layoutUs: number, styleUs: number, frames: number }

async function measure (length: number): Promise<Sample> {
  const tokens = answerTokens(length)
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  try {
    // tsx compiles this file keeping function names (`__name(fn, 'name')`), also inside the
    // functions handed to page.evaluate, which run in the page where that helper does not exist.
    await page.addInitScript('window.__name = (fn) => fn')
    await page.goto(origin)
    const cdp = await context.newCDPSession(page)
    await cdp.send('Performance.enable')
    // Bring the answer to its length, as if it had streamed, and let the page settle.
    await page.evaluate(async ({ before, module }) => {
      // The page's own module, resolved by the page (a string, not a path of this repository).
      const { AnswerView } = await import(module)
      // Following the end of the answer, as the chat does while the reader is at the bottom: the
      // part being written is on screen, so it is styled, laid out and painted every frame.
      const main = document.getElementById('main') as HTMLElement
      const view = new AnswerView({ afterWrite: () => { main.scrollTop = main.scrollHeight } })
      document.getElementById('empty')?.remove()
      document.getElementById('log')?.append(view.root)
      view.setState('streaming')
      view.push(before.join(''))
      view.typewriter.flush()
      main.scrollTop = main.scrollHeight
      ;(window as unknown as { __view: typeof view }).__view = view
      for (let i = 0; i < 10; i++) await new Promise(requestAnimationFrame)
    }, { before: tokens.slice(0, length - window), module: './views.js' })
    const metrics = async () => {
      const { metrics } = await cdp.send('Performance.getMetrics')
      return Object.fromEntries(metrics.map((m) => [m.name, m.value]))
    }
    const start = await metrics()
    // Stream the window: `perFrame` tokens each animation frame, then until everything is drawn.
    const frames = await page.evaluate(async ({ windowTokens, perFrame }) => {
      const view = (window as unknown as { __view: { push: (t: string) => void, typewriter: { drained: () => Promise<void> } } }).__view
      let frames = 0
      for (let i = 0; i < windowTokens.length; i += perFrame) {
        for (const token of windowTokens.slice(i, i + perFrame)) view.push(token)
        await new Promise(requestAnimationFrame)
        frames++
      }
      await view.typewriter.drained()
      for (let i = 0; i < 3; i++) await new Promise(requestAnimationFrame)
      return frames
    }, { windowTokens: tokens.slice(length - window), perFrame: tokensPerFrame })
    const end = await metrics()
    const per = (name: string) => ((end[name] ?? 0) - (start[name] ?? 0)) * 1e6 / window
    return { length, usPerToken: per('TaskDuration'), scriptUs: per('ScriptDuration'), layoutUs: per('LayoutDuration'), styleUs: per('RecalcStyleDuration'), frames }
  } finally {
    await context.close()
  }
}

const samples: Sample[] = []
try {
  await measure(LENGTHS[0] as number) // warm-up: Chromium's caches, V8's JIT for the page's code
  for (let run = 0; run < runs; run++) {
    for (const length of LENGTHS) {
      const sample = await measure(length)
      samples.push(sample)
      console.log(`run ${run + 1}/${runs} at ${length} tokens: ${sample.usPerToken.toFixed(1)} µs/token (script ${sample.scriptUs.toFixed(1)}, style ${sample.styleUs.toFixed(1)}, layout ${sample.layoutUs.toFixed(1)}) over ${sample.frames} frames`)
    }
  }
} finally {
  await browser.close()
  await app.close()
}

const summary = LENGTHS.map((length) => {
  const of = samples.filter((s) => s.length === length)
  const m = (key: keyof Sample) => Math.round(median(of.map((s) => s[key])) * 10) / 10
  return { length, usPerToken: m('usPerToken'), scriptUs: m('scriptUs'), styleUs: m('styleUs'), layoutUs: m('layoutUs'), runs: of.length }
})
const [short, long] = summary as [typeof summary[number], typeof summary[number]]
const ratio = Math.round(long.usPerToken / short.usPerToken * 100) / 100
const result = {
  date: new Date().toISOString(),
  machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}, ${chromium}`,
  command: `node --import tsx bench/page-render.ts ${runs} ${window} ${tokensPerFrame}`,
  window,
  tokensPerFrame,
  summary,
  ratio,
  samples
}
console.log('\n| answer length | main thread µs/token (median) | script | style | layout |\n|---:|---:|---:|---:|---:|')
for (const s of summary) console.log(`| ${s.length.toLocaleString('en')} tokens | ${s.usPerToken} | ${s.scriptUs} | ${s.styleUs} | ${s.layoutUs} |`)
console.log(`\nratio 20,000 / 1,000: ${ratio} (${runs} runs each, ${window}-token window, ${tokensPerFrame} tokens per frame)`)
await mkdir(new URL('./results/', import.meta.url), { recursive: true })
await writeFile(new URL(process.env.PAGE_ROOT === undefined ? './results/page-render.json' : './results/page-render-other.tmp', import.meta.url), JSON.stringify(result, null, 2) + '\n')
