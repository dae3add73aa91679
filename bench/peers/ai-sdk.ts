/**
 * The Vercel AI SDK (`ai` 5) with its OpenAI-compatible provider: `streamText` piped to the
 * response as a UI message stream (what `useChat` reads). Provider options named after the
 * provider are merged into the upstream body, which is how the mock's script gets through.
 */
import Fastify from 'fastify'
import { streamText } from 'ai'
import type { ModelMessage } from 'ai'
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import { serve, upstreamUrl } from '../servers/harness.js'

const provider = createOpenAICompatible({ name: 'bench', baseURL: upstreamUrl(), apiKey: 'bench' })
const app = Fastify({ logger: false })

app.post('/v1/chat/stream', async (request, reply) => {
  const { messages, model, ...rest } = request.body as { messages: ModelMessage[], model?: string } & Record<string, unknown>
  const controller = new AbortController()
  reply.raw.on('close', () => controller.abort())
  const result = streamText({
    model: provider.chatModel(model ?? 'mock-model'),
    messages,
    maxRetries: 0,
    abortSignal: controller.signal,
    providerOptions: { bench: rest as Record<string, never> }
  })
  reply.hijack()
  result.pipeUIMessageStreamToResponse(reply.raw)
})

await serve(app)
