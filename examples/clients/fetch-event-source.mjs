// Stream an answer with @microsoft/fetch-event-source, under Node.
//
//   node fetch-event-source.mjs [BASE_URL] [PROMPT | JSON_BODY]
//
// BASE_URL: the argument, else $RELAY_URL, else http://127.0.0.1:3000 (`npm start`; nginx in
// docker-compose.yml is http://localhost:8080). The second argument is a prompt, or, when it
// starts with "{", the whole request body. Set RELAY_API_KEY when the relay has RELAY_API_KEYS.
//
// Unlike EventSource it can POST, so one request starts the generation and streams it. The
// answer's text goes to stdout exactly; everything else to stderr. Exit status: 0 for a complete
// answer; otherwise 1, with one line saying why (relay unreachable, an error answer, a failed answer).
//
// The library is written for browsers. What it touches outside its arguments (v2.0.1):
// - `window.setTimeout` / `window.clearTimeout`, for its retry timer, on every run;
// - `document.addEventListener` / `removeEventListener` ('visibilitychange') and `document.hidden`:
//   it closes the stream while the tab is hidden unless `openWhenHidden`, and it removes its
//   listener when done even with `openWhenHidden: true`;
// - `window.fetch`, unless a `fetch` is passed (we pass one).
// Node has timers and fetch but no window or document, so we give it exactly those, and nothing
// more (in a browser, delete the two shims).
import { fetchEventSource, EventStreamContentType } from '@microsoft/fetch-event-source'

globalThis.window ??= { setTimeout, clearTimeout }
globalThis.document ??= { hidden: false, addEventListener () {}, removeEventListener () {} }

const base = (process.argv[2] ?? process.env.RELAY_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '')
const arg = process.argv[3] ?? 'Hello!'
const body = arg.startsWith('{') ? JSON.parse(arg) : { messages: [{ role: 'user', content: arg }] }
const auth = process.env.RELAY_API_KEY ? { authorization: `Bearer ${process.env.RELAY_API_KEY}` } : {}

/** An answer that is final: no retry. Its message is the line printed. */
class Fatal extends Error {}
let streamId
let closeReason
let failure
let printed = false
let failures = 0

/** One line on stderr (after the text's line, if any), exit 1. */
function fail (why) {
  console.error(`${printed ? '\n' : ''}fetch-event-source.mjs: ${why}`)
  process.exit(1)
}

const cause = (err) => err.cause?.code ?? err.cause?.message ?? err.message

try {
  await fetchEventSource(`${base}/v1/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify(body),
    openWhenHidden: true,
    // The library retries with the same request plus a Last-Event-ID header. Repeating the POST
    // would start a second generation, so once the stream has an id a retry becomes a resume:
    // GET /v1/chat/stream/:id with the Last-Event-ID the library keeps.
    fetch: (input, init) => streamId === undefined
      ? fetch(input, init)
      : fetch(`${base}/v1/chat/stream/${streamId}`, { headers: init.headers, signal: init.signal }),
    async onopen (response) {
      const type = response.headers.get('content-type') ?? ''
      if (response.ok && type.startsWith(EventStreamContentType)) {
        streamId ??= response.headers.get('x-stream-id') ?? undefined
        return
      }
      // Before the first token the relay answers with a real status and {"error":{"code","message"}}: final.
      const text = await response.text()
      let error
      try { error = JSON.parse(text).error } catch {}
      throw new Fatal(`the relay answered ${response.status} ${error ? `${error.code}: ${error.message}` : text.slice(0, 200).replace(/\s+/g, ' ')}`)
    },
    onmessage (ev) {
      if (ev.event === 'close') {
        closeReason = JSON.parse(ev.data).reason
      } else if (ev.event === 'error') {
        const { code, message } = JSON.parse(ev.data)
        failure = `the answer failed: ${code}: ${message}` // `close` follows
      } else if (ev.data !== '[DONE]' && ev.data !== '') {
        const message = JSON.parse(ev.data)
        if (message.type === 'delta') {
          process.stdout.write(message.content)
          printed = true
        }
      }
    },
    onclose () {
      // The server ended the response. Without a `close` event the connection was cut: throwing
      // here is how this library is told to retry (returning means "done").
      if (closeReason === undefined) throw new Error('connection ended before close')
    },
    onerror (err) {
      if (err instanceof Fatal) throw err
      if (streamId === undefined) throw new Fatal(`cannot reach the relay at ${base} (${cause(err)})`)
      if (++failures > 5) throw new Fatal(`lost the stream at ${base} and could not resume (${cause(err)})`)
      console.error(`\n[${err.message}: resuming]`)
      return 1000 // ms before the retry; the stream's `retry:` applies when this returns undefined
    }
  })
} catch (err) {
  fail(err instanceof Fatal ? err.message : cause(err))
}

if (closeReason !== 'done') fail(failure ?? `the answer ended: ${closeReason}`)
console.error(`\n[close: ${closeReason}]`)
