/**
 * `@fastify/sse` + the `openai` SDK: the SDK's stream mapped to SSE messages and handed to
 * `reply.sse.send()` (which awaits each write).
 */
import Fastify from 'fastify'
import { fastifySSE as fastifySse } from '@fastify/sse'
import type { SSEReplyInterface } from '@fastify/sse'
import OpenAI from 'openai'
import { serve, upstreamUrl } from '../servers/harness.js'

const openai = new OpenAI({ baseURL: upstreamUrl(), apiKey: 'bench', maxRetries: 0 })
const app = Fastify({ logger: false })
await app.register(fastifySse)

// This repository's own plugin (plugins/sse.ts) also declares `reply.sse` for the type checker;
// at run time only @fastify/sse is registered here, so its own types are the true ones.
const sseOf = (reply: unknown): SSEReplyInterface => (reply as { sse: SSEReplyInterface }).sse

app.post('/v1/chat/stream', { sse: 'manual' } as object, async (request, reply) => {
  const sse = sseOf(reply)
  const controller = new AbortController()
  sse.onClose(() => controller.abort())
  const body = request.body as OpenAI.ChatCompletionCreateParamsStreaming
  const stream = await openai.chat.completions.create({ ...body, stream: true }, { signal: controller.signal })
  async function * events (): AsyncGenerator<{ id: string, data: unknown }> {
    let id = 0
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content
      if (content) yield { id: String(++id), data: { content } }
    }
    yield { id: String(++id), data: '[DONE]' }
  }
  try {
    await sse.send(events())
  } catch {
    // The client left: the SDK stream was aborted.
  }
  sse.close()
})

await serve(app)
