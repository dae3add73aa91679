// Stream an answer with an EventSource (the `eventsource` package: the browser API for Node).
//
//   node node-eventsource.mjs [BASE_URL] [PROMPT | JSON_BODY]
//
// BASE_URL: the argument, else $RELAY_URL, else http://127.0.0.1:3000 (`npm start`; nginx in
// docker-compose.yml is http://localhost:8080). The second argument is a prompt, or, when it
// starts with "{", the whole request body. Set RELAY_API_KEY when the relay has RELAY_API_KEYS.
//
// EventSource can only GET, so the generation is started with POST /v1/chat, and the
// EventSource reads GET /v1/chat/stream/:id. Its automatic reconnect sends Last-Event-ID, and the
// relay resumes from there: no token lost or repeated. The answer's text goes to stdout exactly;
// everything else to stderr. Exit status: 0 for a complete answer; otherwise 1, with one line
// saying why (relay unreachable, an error answer, a failed answer).
import { EventSource } from 'eventsource'

const base = (process.argv[2] ?? process.env.RELAY_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '')
const arg = process.argv[3] ?? 'Hello!'
const body = arg.startsWith('{') ? JSON.parse(arg) : { messages: [{ role: 'user', content: arg }] }
const auth = process.env.RELAY_API_KEY ? { authorization: `Bearer ${process.env.RELAY_API_KEY}` } : {}

let printed = false
/** One line on stderr (after the text's line, if any), exit 1. */
function fail (why) {
  console.error(`${printed ? '\n' : ''}node-eventsource.mjs: ${why}`)
  process.exit(1)
}

let started
try {
  started = await fetch(`${base}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify(body)
  })
} catch (err) {
  fail(`cannot reach the relay at ${base} (${err.cause?.code ?? err.cause?.message ?? err.message})`)
}
if (started.status !== 201) {
  // Before anything streams, the relay answers with a real status and {"error":{"code","message"}}.
  const text = await started.text()
  let error
  try { error = JSON.parse(text).error } catch {}
  fail(`the relay answered ${started.status} ${error ? `${error.code}: ${error.message}` : text.slice(0, 200).replace(/\s+/g, ' ')}`)
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
  if (message.type === 'delta') {
    process.stdout.write(message.content)
    printed = true
  }
})

let failure
// `close` ends the answer. Without es.close() EventSource would reconnect when the server
// closes the connection, forever: that is what it is designed to do.
es.addEventListener('close', (ev) => {
  es.close()
  const { reason } = JSON.parse(ev.data)
  if (reason !== 'done') fail(failure ?? `the answer ended: ${reason}`)
  console.error(`\n[close: ${reason}]`)
})

// One listener, two meanings: the relay's `event: error` (a MessageEvent with data; `close`
// follows) and EventSource's own connection errors (no data; it is already reconnecting, unless closed).
es.addEventListener('error', (ev) => {
  if (typeof ev.data === 'string') {
    const { code, message } = JSON.parse(ev.data)
    failure = `the answer failed: ${code}: ${message}`
  } else if (es.readyState === EventSource.CLOSED) {
    fail(`lost the stream at ${base} (${ev.message ?? 'closed'})`)
  } else {
    console.error(`\n[connection lost: ${ev.message ?? ''}; reconnecting]`)
  }
})
