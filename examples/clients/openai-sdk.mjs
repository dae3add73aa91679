// Stream an answer through the relay with the official OpenAI SDK: the relay's
// POST /v1/chat/completions speaks OpenAI's own streaming format, so only the base URL changes.
//
//   node openai-sdk.mjs [BASE_URL] [PROMPT | JSON_BODY]
//
// BASE_URL: the argument, else $RELAY_URL, else http://127.0.0.1:3000 (`npm start`; nginx in
// docker-compose.yml is http://localhost:8080). The second argument is a prompt, or, when it
// starts with "{", the whole request body.
//
// The provider key stays on the relay (UPSTREAM_API_KEY); the SDK sends RELAY_API_KEY, which the
// relay checks only when it has RELAY_API_KEYS. The answer's text goes to stdout exactly. Exit
// status: 0 for a complete answer; otherwise 1, with one line saying why.
import OpenAI from 'openai'

const base = (process.argv[2] ?? process.env.RELAY_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '')
const arg = process.argv[3] ?? 'Hello!'
const body = arg.startsWith('{') ? JSON.parse(arg) : { messages: [{ role: 'user', content: arg }] }

const client = new OpenAI({
  baseURL: `${base}/v1`,
  // The SDK refuses to start without a key; any string will do for an open relay.
  apiKey: process.env.RELAY_API_KEY ?? 'no-key',
  // A cut stream is not retried by the SDK; a failure before the first token is, like any request.
  maxRetries: 2
})

let printed = false
/** One line on stderr (after the text's line, if any), exit 1. */
function fail (why) {
  console.error(`${printed ? '\n' : ''}openai-sdk.mjs: ${why}`)
  process.exit(1)
}

try {
  // Fields the SDK does not know (like the mock's `mock` script) are sent as they are.
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', ...body, stream: true })
  let finish
  for await (const chunk of stream) {
    const choice = chunk.choices[0]
    if (choice?.delta?.content) {
      process.stdout.write(choice.delta.content)
      printed = true
    }
    if (choice?.finish_reason) finish = choice.finish_reason
  }
  if (finish === undefined) fail('the answer ended without a finish reason')
  console.error(`\n[finish: ${finish}]`)
} catch (err) {
  if (err instanceof OpenAI.APIConnectionError) {
    fail(`cannot reach the relay at ${base} (${err.cause?.cause?.code ?? err.cause?.code ?? err.cause?.message ?? err.message})`)
  }
  // The relay's {"error":{"code","message"}}, as the SDK parsed it (status, code, error.message).
  if (err instanceof OpenAI.APIError && err.status !== undefined) {
    fail(`the relay answered ${err.status} ${err.code ?? ''}: ${err.error?.message ?? err.message}`)
  }
  fail(err.message)
}
