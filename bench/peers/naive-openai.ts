/**
 * What most blog posts do: the `openai` SDK's stream, each token written with `reply.raw.write`.
 * (Numbered `id:` lines, so the load generator can check for gaps like it does for the relay.)
 */
import Fastify from 'fastify'
import OpenAI from 'openai'
import { serve, upstreamUrl } from '../servers/harness.js'

const openai = new OpenAI({ baseURL: upstreamUrl(), apiKey: 'bench', maxRetries: 0 })
const app = Fastify({ logger: false })

app.post('/v1/chat/stream', async (request, reply) => {
  const controller = new AbortController()
  reply.raw.on('close', () => controller.abort())
  const body = request.body as OpenAI.ChatCompletionCreateParamsStreaming
  const stream = await openai.chat.completions.create({ ...body, stream: true }, { signal: controller.signal })
  reply.hijack()
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
  let id = 0
  try {
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta?.content
      if (content) reply.raw.write(`id: ${++id}\ndata: ${JSON.stringify({ content })}\n\n`)
    }
    reply.raw.write('data: [DONE]\n\n')
  } catch {
    // The client left (abort) or the upstream failed: nothing more to send.
  }
  reply.raw.end()
})

await serve(app)
