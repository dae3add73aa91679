// Stream an answer through the relay with the official OpenAI SDK: the relay's
// POST /v1/chat/completions speaks OpenAI's own streaming format, so only the base URL changes.
//
//   node openai-sdk.mjs [BASE_URL] [PROMPT | JSON_BODY]
//
// The provider key stays on the relay (UPSTREAM_API_KEY); the SDK sends RELAY_API_KEY, which the
// relay checks only when it has RELAY_API_KEYS. The answer's text goes to stdout exactly.
import OpenAI from 'openai'

const base = (process.argv[2] ?? 'http://localhost:8080').replace(/\/+$/, '')
const arg = process.argv[3] ?? 'Hello!'
const body = arg.startsWith('{') ? JSON.parse(arg) : { messages: [{ role: 'user', content: arg }] }

const client = new OpenAI({
  baseURL: `${base}/v1`,
  // The SDK refuses to start without a key; any string will do for an open relay.
  apiKey: process.env.RELAY_API_KEY ?? 'no-key',
  // A cut stream is not retried by the SDK; a failure before the first token is, like any request.
  maxRetries: 2
})

try {
  // Fields the SDK does not know (like the mock's `mock` script) are sent as they are.
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', ...body, stream: true })
  let finish
  for await (const chunk of stream) {
    const choice = chunk.choices[0]
    if (choice?.delta?.content) process.stdout.write(choice.delta.content)
    if (choice?.finish_reason) finish = choice.finish_reason
  }
  console.error(`\n[finish: ${finish}]`)
  process.exitCode = finish === undefined ? 1 : 0
} catch (err) {
  console.error(`\n[${err.status ?? ''} ${err.message}]`)
  process.exitCode = 1
}
