// Stream an answer with @microsoft/fetch-event-source, under Node.
//
//   node fetch-event-source.mjs [BASE_URL] [PROMPT | JSON_BODY]
//
// Unlike EventSource it can POST, so one request starts the generation and streams it. The
// answer's text goes to stdout exactly; everything else to stderr. Exit status: 0 for a complete
// answer, 1 otherwise.
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

const base = (process.argv[2] ?? 'http://localhost:8080').replace(/\/+$/, '')
const arg = process.argv[3] ?? 'Hello!'
const body = arg.startsWith('{') ? JSON.parse(arg) : { messages: [{ role: 'user', content: arg }] }
const auth = process.env.RELAY_API_KEY ? { authorization: `Bearer ${process.env.RELAY_API_KEY}` } : {}

class Fatal extends Error {}
let streamId
let closeReason
let failures = 0

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
    // Before the first token the relay answers with a real status and a JSON error: final.
    throw new Fatal(`HTTP ${response.status}: ${await response.text()}`)
  },
  onmessage (ev) {
    if (ev.event === 'close') {
      closeReason = JSON.parse(ev.data).reason
    } else if (ev.event === 'error') {
      console.error(`\n[error: ${ev.data}]`)
    } else if (ev.data !== '[DONE]' && ev.data !== '') {
      const message = JSON.parse(ev.data)
      if (message.type === 'delta') process.stdout.write(message.content)
    }
  },
  onclose () {
    // The server ended the response. Without a `close` event the connection was cut: throwing
    // here is how this library is told to retry (returning means "done").
    if (closeReason === undefined) throw new Error('connection ended before close')
  },
  onerror (err) {
    if (err instanceof Fatal || streamId === undefined || ++failures > 5) throw err
    console.error(`\n[${err.message}: resuming]`)
    return 1000 // ms before the retry; the stream's `retry:` applies when this returns undefined
  }
}).catch((err) => {
  console.error(`\n[${err.message}]`)
})

console.error(`\n[close: ${closeReason}]`)
process.exitCode = closeReason === 'done' ? 0 : 1
