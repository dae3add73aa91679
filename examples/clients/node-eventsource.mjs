// Stream an answer with an EventSource (the `eventsource` package: the browser API for Node).
//
//   node node-eventsource.mjs [BASE_URL] [PROMPT | JSON_BODY]
//
// EventSource can only GET, so the generation is started with POST /v1/chat, and the
// EventSource reads GET /v1/chat/stream/:id. Its automatic reconnect sends Last-Event-ID, and the
// relay resumes from there: no token lost or repeated. The answer's text goes to stdout exactly;
// everything else to stderr. Exit status: 0 for a complete answer, 1 otherwise.
import { EventSource } from 'eventsource'

const base = (process.argv[2] ?? 'http://localhost:8080').replace(/\/+$/, '')
const arg = process.argv[3] ?? 'Hello!'
const body = arg.startsWith('{') ? JSON.parse(arg) : { messages: [{ role: 'user', content: arg }] }
const auth = process.env.RELAY_API_KEY ? { authorization: `Bearer ${process.env.RELAY_API_KEY}` } : {}

const started = await fetch(`${base}/v1/chat`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...auth },
  body: JSON.stringify(body)
})
if (started.status !== 201) {
  console.error(`HTTP ${started.status}: ${await started.text()}`)
  process.exit(1)
}
const { streamUrl } = await started.json()

const es = new EventSource(new URL(streamUrl, `${base}/`), {
  // The browser's EventSource cannot send headers; this one can, through its fetch.
  fetch: (input, init) => fetch(input, { ...init, headers: { ...init?.headers, ...auth } })
})

// Unnamed events: the deltas, finish, usage and the [DONE] sentinel.
es.addEventListener('message', (ev) => {
  if (ev.data === '[DONE]') return
  const message = JSON.parse(ev.data)
  if (message.type === 'delta') process.stdout.write(message.content)
})

// `close` ends the answer. Without es.close() EventSource would reconnect when the server
// closes the connection, forever: that is what it is designed to do.
es.addEventListener('close', (ev) => {
  es.close()
  const { reason } = JSON.parse(ev.data)
  console.error(`\n[close: ${reason}]`)
  process.exitCode = reason === 'done' ? 0 : 1
})

// One listener, two meanings: the relay's `event: error` (a MessageEvent with data) and
// EventSource's own connection errors (no data; it is already reconnecting, unless closed).
es.addEventListener('error', (ev) => {
  if (typeof ev.data === 'string') {
    console.error(`\n[error: ${ev.data}]`)
  } else if (es.readyState === EventSource.CLOSED) {
    console.error(`\n[connection failed: ${ev.message ?? 'closed'}]`)
    process.exitCode = 1
  } else {
    console.error(`\n[connection lost: ${ev.message ?? ''}; reconnecting]`)
  }
})
