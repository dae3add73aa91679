import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { AnswerBuilder, promptChars } from '../lib/relay/answer.js'
import { RelayError } from '../lib/relay/errors.js'
import { DONE } from '../lib/relay/events.js'
import type { RelayEvent } from '../lib/relay/events.js'
import type { Generation } from '../lib/relay/generation.js'
import type { EndReason } from '../lib/relay/journal.js'
import { completionObject } from '../lib/relay/openai-format.js'
import type { Relay } from '../lib/relay/relay.js'
import { applyPolicy } from '../lib/relay/request-policy.js'
import type { RequestPolicy } from '../lib/relay/request-policy.js'
import type { ChatRequestBody } from '../lib/upstream/types.js'
import { SSE_CONNECTION_ROUTE } from './connection-limit.js'
import type { PrepareRequest } from './options.js'
import { sendError } from './relay-http.js'
import { includeUsageOf } from './responder.js'
import type { Responder } from './responder.js'
import { chatBodySchema, conversationParamsSchema, lastEventIdOf, streamParamsSchema } from './relay-schema.js'

/** Options of {@link chatRoutes}. */
export interface ChatRouteOptions {
  relay: Relay
  responder: Responder
  /** What the operator allows a client to ask of the upstream. */
  policy: RequestPolicy
  prepareRequest: PrepareRequest | undefined
  /** The start routes (`POST /chat/stream`, `POST /chat`). */
  start: boolean
  /** Resume, attach and stop. */
  streams: boolean
  /** `POST /chat/completions`. */
  completions: boolean
}

type ChatRequest = FastifyRequest<{ Body: ChatRequestBody }>

/** The generation endpoints (README "Endpoints"), including the OpenAI-compatible one, relative to the routes' prefix. */
export async function chatRoutes (app: FastifyInstance, options: ChatRouteOptions): Promise<void> {
  const { relay, responder, policy, prepareRequest } = options

  /**
   * The upstream body of a client's request: the operator's policy first (a refused model or
   * token count never reaches the upstream), then the application's `prepareRequest`.
   */
  const upstreamBody = async (request: ChatRequest): Promise<{ body: ChatRequestBody, conversationId: string | undefined }> => {
    const { conversationId, ...clientBody } = request.body
    let body = applyPolicy(clientBody, policy)
    if (prepareRequest !== undefined) body = await prepareRequest(request, body) ?? body
    return { body, conversationId: typeof conversationId === 'string' ? conversationId : undefined }
  }

  const start = async (request: ChatRequest, reply: FastifyReply): Promise<Generation> => {
    const { body, conversationId } = await upstreamBody(request)
    return await responder.start(request, reply, body, { conversationId, owner: request.relayOwner })
  }

  const schema = { body: chatBodySchema }

  if (options.start) {
    app.post<{ Body: ChatRequestBody }>('/chat/stream', { schema, ...SSE_CONNECTION_ROUTE }, async (request, reply) =>
      await responder.commit(request, reply, await start(request, reply)))

    app.post<{ Body: ChatRequestBody }>('/chat', { schema }, async (request, reply) => {
      const { streamId } = (await start(request, reply)).info
      return reply.code(201).send({ streamId, streamUrl: `${app.prefix}/chat/stream/${streamId}` })
    })
  }

  if (options.streams) {
    app.get<{ Params: { streamId: string } }>('/chat/stream/:streamId', { schema: { params: streamParamsSchema }, ...SSE_CONNECTION_ROUTE }, async (request, reply) =>
      await responder.resume(request, reply, request.params.streamId, request.relayOwner, lastEventIdOf(request)))

    app.get<{ Params: { conversationId: string } }>('/conversations/:conversationId/stream', { schema: { params: conversationParamsSchema }, ...SSE_CONNECTION_ROUTE }, async (request, reply) => {
      const afterId = lastEventIdOf(request)
      const streamId = await relay.findActive(request.params.conversationId, request.relayOwner)
      if (streamId === undefined) return reply.code(204).send()
      return await responder.resume(request, reply, streamId, request.relayOwner, afterId, 'conversation')
    })

    app.delete<{ Params: { streamId: string } }>('/chat/stream/:streamId', { schema: { params: streamParamsSchema } }, async (request) =>
      await responder.cancel(request.params.streamId, request.relayOwner))
  }

  if (options.completions) {
    // Counted with or without `stream`: a client waiting for the whole answer holds its connection as long.
    app.post<{ Body: ChatRequestBody }>('/chat/completions', { schema, ...SSE_CONNECTION_ROUTE }, async (request, reply) => {
      const generation = await start(request, reply)
      const model = responder.modelOf(request.body)
      if (request.body.stream !== true) return await collectCompletion(request, reply, generation, model)
      return await responder.commit(request, reply, generation, { openai: true, model, includeUsage: includeUsageOf(request.body) })
    })
  }

  /** `stream: false`: the whole answer as one `chat.completion`, or the error with its status. */
  const collectCompletion = async (request: ChatRequest, reply: FastifyReply, generation: Generation, model: string): Promise<unknown> => {
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
      reply.raw.on('close', () => { if (!reply.raw.writableFinished) stop() })
      void generation.ended.then(() => stop())
    })
    if (reason === 'done') return completionObject(`chatcmpl-${streamId}`, model, answer, promptChars(request.body))
    const failure = await generation.firstEvent.then(() => undefined, (err: RelayError) => err)
    if (failure !== undefined) return sendError(reply, failure)
    // An error after the first token: only its code is journaled; timeouts are 504 (README "The wire format").
    return sendError(reply, error !== undefined
      ? new RelayError(error.code as RelayError['code'], error.code.endsWith('_timeout') ? 504 : 502, error.message)
      : new RelayError(reason === 'error' ? 'internal' : reason, reason === 'timeout' ? 504 : 409, `the generation ended early: ${reason}`))
  }
}
