import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AnswerBuilder, promptChars } from '../lib/relay/answer.js'
import { RelayError } from '../lib/relay/errors.js'
import { DONE } from '../lib/relay/events.js'
import type { RelayEvent } from '../lib/relay/events.js'
import type { Generation } from '../lib/relay/generation.js'
import type { EndReason, JournalListener } from '../lib/relay/journal.js'
import { completionObject, OpenAIChunkWriter } from '../lib/relay/openai-format.js'
import type { Relay } from '../lib/relay/relay.js'
import type { ChatRequestBody } from '../lib/upstream/types.js'
import { sendError, sseListener, tagLogs, unsubscribeOnClose } from './relay-http.js'
import type { StreamSettings } from './relay-http.js'
import { chatBodySchema, conversationParamsSchema, lastEventIdOf, streamParamsSchema } from './relay-schema.js'

/** Options of {@link chatRoutes}. */
export interface ChatRouteOptions extends StreamSettings {
  relay: Relay
  /** Model named in OpenAI-format answers when the request names none. */
  defaultModel: string
}

const notFound = (): RelayError => new RelayError('not_found', 404, 'no such stream (unknown, expired, or not yours)')

/** The generation endpoints of CONTRACT.md, including the OpenAI-compatible one. */
export async function chatRoutes (app: FastifyInstance, options: ChatRouteOptions): Promise<void> {
  const { relay, defaultModel } = options
  // One object per format, so the SSE plugin resolves each once, not per reply.
  const openAISse = { ...options.sse, retry: undefined }

  const start = async (request: FastifyRequest<{ Body: ChatRequestBody }>, reply: FastifyReply): Promise<Generation> => {
    const { conversationId, ...body } = request.body
    const generation = await relay.start({
      owner: request.relayOwner,
      // Who the per-client limit counts: the key, or the address when the relay runs open.
      client: request.relayOwner ?? `ip:${request.ip}`,
      conversationId: typeof conversationId === 'string' ? conversationId : undefined,
      body
    })
    tagLogs(request, reply, { streamId: generation.info.streamId })
    return generation
  }

  /**
   * Commit late: holds the request (counted as a reader, so the grace clock does not run) until
   * the first event is journaled. A failure before it becomes a real status, not a 200 stream.
   * A client that leaves meanwhile stops being a reader at once: the upstream is then stopped
   * after the grace time, not only once its first token comes (which a stalled upstream may
   * never send).
   */
  const awaitFirstEvent = async (generation: Generation, reply: FastifyReply): Promise<boolean> => {
    generation.attach()
    let attached = true
    const leave = (): void => {
      if (!attached) return
      attached = false
      generation.detach()
    }
    reply.raw.once('close', leave)
    try {
      await generation.firstEvent
    } catch (err) {
      // Stopped by a superseding request or a DELETE while waiting, or failed upstream (after retries).
      if (!reply.raw.destroyed) sendError(reply, err as Error)
      return false
    } finally {
      reply.raw.off('close', leave)
      leave()
    }
    return !reply.raw.destroyed
  }

  /** Opens the SSE response and reads the generation's journal into it from `afterId`, in the relay's format or as OpenAI chunks. */
  const stream = (request: FastifyRequest, reply: FastifyReply, streamId: string, afterId: number, openai?: OpenAIStreamOptions): FastifyReply => {
    const sse = reply.header('x-stream-id', streamId).sse(openai === undefined ? options.sse : openAISse)
    const listener: JournalListener = openai === undefined ? sseListener(sse) : openAIListener(sse, `chatcmpl-${streamId}`, openai)
    unsubscribeOnClose(request, sse, relay.read(streamId, afterId, listener), options.observer)
    return reply
  }

  app.post<{ Body: ChatRequestBody }>('/v1/chat/stream', { schema: { body: chatBodySchema } }, async (request, reply) => {
    const generation = await start(request, reply)
    if (!await awaitFirstEvent(generation, reply)) return reply
    return stream(request, reply, generation.info.streamId, 0)
  })

  app.post<{ Body: ChatRequestBody }>('/v1/chat', { schema: { body: chatBodySchema } }, async (request, reply) => {
    const { streamId } = (await start(request, reply)).info
    return reply.code(201).send({ streamId, streamUrl: `/v1/chat/stream/${streamId}` })
  })

  const resume = async (request: FastifyRequest, reply: FastifyReply, streamId: string): Promise<FastifyReply> => {
    const afterId = lastEventIdOf(request)
    if (await relay.find(streamId, request.relayOwner) === undefined) throw notFound()
    tagLogs(request, reply, { streamId })
    if (afterId > 0) {
      request.log.info({ lastEventId: afterId }, 'stream resumed')
      options.observer?.resumed()
    }
    return stream(request, reply, streamId, afterId)
  }

  app.get<{ Params: { streamId: string } }>('/v1/chat/stream/:streamId', { schema: { params: streamParamsSchema } }, async (request, reply) =>
    await resume(request, reply, request.params.streamId))

  app.get<{ Params: { conversationId: string } }>('/v1/conversations/:conversationId/stream', { schema: { params: conversationParamsSchema } }, async (request, reply) => {
    const streamId = await relay.findActive(request.params.conversationId, request.relayOwner)
    if (streamId === undefined) return reply.code(204).send()
    return await resume(request, reply, streamId)
  })

  app.delete<{ Params: { streamId: string } }>('/v1/chat/stream/:streamId', { schema: { params: streamParamsSchema } }, async (request) => {
    const { streamId } = request.params
    if (await relay.find(streamId, request.relayOwner) === undefined) throw notFound()
    return { streamId, cancelled: await relay.cancel(streamId, request.relayOwner) }
  })

  app.post<{ Body: ChatRequestBody }>('/v1/chat/completions', { schema: { body: chatBodySchema } }, async (request, reply) => {
    const generation = await start(request, reply)
    const model = typeof request.body.model === 'string' ? request.body.model : defaultModel
    if (request.body.stream !== true) return await collectCompletion(request, reply, generation, model)
    if (!await awaitFirstEvent(generation, reply)) return reply
    const includeUsage = (request.body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true
    return stream(request, reply, generation.info.streamId, 0, { model, includeUsage })
  })

  /** `stream: false`: the whole answer as one `chat.completion`, or the error with its status. */
  const collectCompletion = async (request: FastifyRequest<{ Body: ChatRequestBody }>, reply: FastifyReply, generation: Generation, model: string): Promise<unknown> => {
    const { streamId } = generation.info
    const answer = new AnswerBuilder()
    let error: { code: string, message: string } | undefined
    const reason = await new Promise<EndReason>((resolve) => {
      const stop = relay.read(streamId, 0, {
        onEntries (entries) {
          for (const entry of entries) {
            if (entry.data === DONE) continue
            const event = JSON.parse(entry.data) as RelayEvent
            if (event.type === 'error') error = { code: event.code, message: event.message }
            else answer.add(event)
          }
        },
        onEnd: resolve
      })
      // A client that leaves is a reader leaving: the grace clock applies as for a stream.
      reply.raw.once('close', () => { if (!reply.raw.writableFinished) stop() })
      void generation.ended.then(() => stop())
    })
    if (reason === 'done') return completionObject(`chatcmpl-${streamId}`, model, answer, promptChars(request.body))
    const failure = await generation.firstEvent.then(() => undefined, (err: Error) => err)
    if (failure !== undefined) return sendError(reply, failure)
    // An error after the first token: only its code is journaled; timeouts are 504 (CONTRACT.md).
    return sendError(reply, error !== undefined
      ? new RelayError(error.code, error.code.endsWith('_timeout') ? 504 : 502, error.message)
      : new RelayError(reason, reason === 'timeout' ? 504 : 409, `the generation ended early: ${reason}`))
  }
}

/** How `/v1/chat/completions` streams: the model to name in chunks, and whether the client asked for the usage chunk. */
interface OpenAIStreamOptions {
  model: string
  includeUsage: boolean
}

/** Writes the journal as OpenAI chunks; OpenAI clients know no `close` event, so the response just ends. */
function openAIListener (sse: ReturnType<FastifyReply['sse']>, completionId: string, { model, includeUsage }: OpenAIStreamOptions): JournalListener {
  const chunks = new OpenAIChunkWriter(completionId, model, includeUsage)
  return {
    onEntries (entries) {
      for (const entry of entries) {
        const frame = chunks.frame(entry)
        if (frame !== undefined && !sse.writeFrame(frame)) return
      }
    },
    onEnd (reason) {
      const frame = chunks.endFrame(reason)
      if (frame !== undefined) sse.writeFrame(frame)
      sse.end(reason)
    }
  }
}
