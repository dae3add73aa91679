import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AnswerBuilder, promptChars } from '../lib/relay/answer.js'
import { RelayError } from '../lib/relay/errors.js'
import { DONE } from '../lib/relay/events.js'
import type { RelayEvent } from '../lib/relay/events.js'
import type { Generation } from '../lib/relay/generation.js'
import type { EndReason, JournalEntry, JournalListener } from '../lib/relay/journal.js'
import { completionObject, OpenAIChunkWriter } from '../lib/relay/openai-format.js'
import type { Relay } from '../lib/relay/relay.js'
import type { SseStream } from '../lib/sse/stream.js'
import { UpstreamError } from '../lib/upstream/types.js'
import type { ChatRequestBody } from '../lib/upstream/types.js'
import { chatBodySchema, lastEventIdOf, streamParamsSchema, conversationParamsSchema } from './relay-schema.js'

/** Options of the relay plugin. */
export interface RelayPluginOptions {
  /** The relay core (generations, store, limits). */
  relay: Relay
  /** Bearer keys for `/v1/*` (`RELAY_API_KEYS`); empty = open. @default [] */
  apiKeys?: string[]
  /** Model named in OpenAI-format answers when the request names none (`UPSTREAM_MODEL`). @default 'gpt-4o-mini' */
  defaultModel?: string
  /** `: ping` interval on every stream (`HEARTBEAT_MS`). @default 15000 */
  heartbeatMs?: number
  /** The `retry:` sent first on every stream, in ms. @default 3000 */
  retryMs?: number
  /** Per-reader byte budget before `slow_consumer`. @default 1048576 */
  maxBufferedBytes?: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Key identity of an authenticated `/v1/*` request (`null` when the relay runs open). */
    relayOwner: string | null
  }
}

/**
 * The relay's HTTP face (CONTRACT.md "Endpoints"): maps requests onto the {@link Relay} core and
 * journal readers onto `reply.sse()`. Checks run in the contract's order: authentication
 * (onRequest), then the body (Fastify's parser and schema), then limits (in the handler).
 */
async function relayPlugin (app: FastifyInstance, options: RelayPluginOptions): Promise<void> {
  const { relay } = options
  const keys = new Set((options.apiKeys ?? []).map(keyId))
  const defaultModel = options.defaultModel ?? 'gpt-4o-mini'
  const sseOptions = {
    heartbeatMs: options.heartbeatMs ?? 15_000,
    retry: options.retryMs ?? 3000,
    maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024
  }

  app.decorateRequest('relayOwner', null)
  // Routes, hooks and the error handler live in their own context, so an application that
  // registers the relay keeps its own error handler for its own routes.
  await app.register(async (app) => routes(app))

  async function routes (app: FastifyInstance): Promise<void> {
  // The API speaks JSON only: any other body type is a 415, not a string that fails validation.
    app.removeContentTypeParser('text/plain')
    app.addHook('onRequest', async (request, reply) => {
      if (keys.size === 0) return
      const header = request.headers.authorization
      const token = header?.startsWith('Bearer ') === true ? header.slice(7).trim() : undefined
      const id = token === undefined ? undefined : keyId(token)
      if (id === undefined || !keys.has(id)) {
        return sendError(reply, new RelayError('unauthorized', 401, token === undefined ? 'missing bearer token' : 'invalid bearer token'))
      }
      request.relayOwner = id
    })

    app.setErrorHandler((err, request, reply) => {
      if (err instanceof RelayError || err instanceof UpstreamError) return sendError(reply, err)
      const e = err as { validation?: unknown, statusCode?: number, code?: string, message: string }
      if (e.validation !== undefined) return sendError(reply, new RelayError('invalid_request', 400, e.message))
      const status = e.statusCode ?? 500
      if (status < 500) return sendError(reply, new RelayError(clientErrorCode(e.code, status), status, e.message))
      request.log.error({ err }, 'request failed')
      return sendError(reply, new RelayError('internal', 500, 'internal error'))
    })

    /** Who the per-client limit counts: the key, or the address when the relay runs open. */
    const clientOf = (request: FastifyRequest): string => request.relayOwner ?? `ip:${request.ip}`

    const start = async (request: FastifyRequest<{ Body: ChatRequestBody }>, reply: FastifyReply): Promise<Generation> => {
      const { conversationId, ...body } = request.body
      const generation = await relay.start({
        owner: request.relayOwner,
        client: clientOf(request),
        conversationId: typeof conversationId === 'string' ? conversationId : undefined,
        body
      })
      tagLogs(request, reply, generation.info.streamId)
      return generation
    }

    /**
   * Commit late: holds the request (counted as a reader, so the grace clock does not run) until
   * the first event is journaled. A failure before it becomes a real status, not a 200 stream.
   */
    const awaitFirstEvent = async (generation: Generation, reply: FastifyReply): Promise<boolean> => {
      generation.attach()
      try {
        await generation.firstEvent
      } catch (err) {
      // Stopped by a superseding request or a DELETE while waiting, or failed upstream (after retries).
        if (!reply.raw.destroyed) sendError(reply, err as Error)
        return false
      } finally {
        generation.detach()
      }
      return !reply.raw.destroyed
    }

    app.post<{ Body: ChatRequestBody }>('/v1/chat/stream', { schema: { body: chatBodySchema } }, async (request, reply) => {
      const generation = await start(request, reply)
      const streamId = generation.info.streamId
      if (!await awaitFirstEvent(generation, reply)) return reply
      const stream = reply.header('x-stream-id', streamId).sse(sseOptions)
      pipeJournal(request, stream, streamId, 0, sseListener(stream))
      return reply
    })

    app.post<{ Body: ChatRequestBody }>('/v1/chat', { schema: { body: chatBodySchema } }, async (request, reply) => {
      const generation = await start(request, reply)
      const streamId = generation.info.streamId
      return reply.code(201).send({ streamId, streamUrl: `/v1/chat/stream/${streamId}` })
    })

    const readStream = async (request: FastifyRequest, reply: FastifyReply, streamId: string): Promise<FastifyReply> => {
      const afterId = lastEventIdOf(request)
      const state = await relay.find(streamId, request.relayOwner)
      if (state === undefined) throw new RelayError('not_found', 404, 'no such stream (unknown, expired, or not yours)')
      tagLogs(request, reply, streamId)
      const stream = reply.header('x-stream-id', streamId).sse(sseOptions)
      if (afterId > 0) request.log.info({ lastEventId: afterId }, 'stream resumed')
      pipeJournal(request, stream, streamId, afterId, sseListener(stream))
      return reply
    }

    app.get<{ Params: { streamId: string } }>('/v1/chat/stream/:streamId', { schema: { params: streamParamsSchema } }, async (request, reply) =>
      await readStream(request, reply, request.params.streamId))

    app.get<{ Params: { conversationId: string } }>('/v1/conversations/:conversationId/stream', { schema: { params: conversationParamsSchema } }, async (request, reply) => {
      const streamId = await relay.findActive(request.params.conversationId, request.relayOwner)
      if (streamId === undefined) return reply.code(204).send()
      return await readStream(request, reply, streamId)
    })

    app.delete<{ Params: { streamId: string } }>('/v1/chat/stream/:streamId', { schema: { params: streamParamsSchema } }, async (request) => {
      const { streamId } = request.params
      const state = await relay.find(streamId, request.relayOwner)
      if (state === undefined) throw new RelayError('not_found', 404, 'no such stream (unknown, expired, or not yours)')
      const cancelled = await relay.cancel(streamId, request.relayOwner)
      return { streamId, cancelled }
    })

    app.post<{ Body: ChatRequestBody }>('/v1/chat/completions', { schema: { body: chatBodySchema } }, async (request, reply) => {
      const generation = await start(request, reply)
      const { streamId } = generation.info
      const model = typeof request.body.model === 'string' ? request.body.model : defaultModel
      const completionId = `chatcmpl-${streamId}`
      if (request.body.stream !== true) {
        return await collectCompletion(request, reply, generation, completionId, model)
      }
      if (!await awaitFirstEvent(generation, reply)) return reply
      const stream = reply.header('x-stream-id', streamId).sse({ ...sseOptions, retry: undefined })
      const chunks = new OpenAIChunkWriter(completionId, model)
      pipeJournal(request, stream, streamId, 0, {
        onEntries (entries) {
          for (const entry of entries) if (!stream.writeFrame(chunks.frame(entry))) return
        },
        onEnd (reason) {
          const frame = chunks.endFrame(reason)
          if (frame !== undefined) stream.writeFrame(frame)
          // OpenAI clients know no `close` event: the end of the response is the end.
          stream.end(reason)
        }
      })
      return reply
    })

    /** `stream: false`: the whole answer as one `chat.completion`, or the error with its status. */
    const collectCompletion = async (request: FastifyRequest<{ Body: ChatRequestBody }>, reply: FastifyReply, generation: Generation, completionId: string, model: string): Promise<unknown> => {
      const answer = new AnswerBuilder()
      let error: { code: string, message: string } | undefined
      const reason = await new Promise<EndReason>((resolve) => {
        const stop = relay.read(generation.info.streamId, 0, {
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
        reply.raw.once('close', () => { if (!reply.raw.writableFinished) stop() })
        void generation.ended.then(() => stop())
      })
      if (reason === 'done') return completionObject(completionId, model, answer, promptChars(request.body))
      const failure = await generation.firstEvent.then(() => undefined, (err: Error) => err)
      if (failure !== undefined) return sendError(reply, failure)
      return sendError(reply, error !== undefined
        ? new RelayError(error.code, 502, error.message)
        : new RelayError(reason, reason === 'timeout' ? 504 : 409, `the generation ended early: ${reason}`))
    }

    /** Connects a journal to a stream: unsubscribes when the stream closes, logs a client leaving. */
    function pipeJournal (request: FastifyRequest, stream: SseStream, streamId: string, afterId: number, listener: JournalListener): void {
      const unsubscribe = relay.read(streamId, afterId, listener)
      stream.onClose((reason) => {
        unsubscribe()
        // (A client leaving is logged at info by the SSE plugin, with the stream id from tagLogs.)
        if (reason === 'slow_consumer') request.log.warn('slow reader dropped')
      })
    }
  }
}

/** Every log line about a stream carries its id, including the SSE plugin's own. */
function tagLogs (request: FastifyRequest, reply: FastifyReply, streamId: string): void {
  const log = request.log.child({ streamId })
  request.log = log
  reply.log = log
}

/** Writes journal entries as relay-format frames, and the journal's end as `close`. */
function sseListener (stream: SseStream): JournalListener {
  return {
    onEntries (entries: readonly JournalEntry[]) {
      for (const entry of entries) if (!stream.writeFrame(entry.frame)) return
    },
    onEnd (reason: EndReason) {
      // The producing instance died: its journal has no error entry, so the reader says why.
      if (reason === 'producer_lost') void stream.error({ code: 'producer_lost', message: 'the instance producing this answer went away' })
      else void stream.close(reason)
    }
  }
}

/** The JSON error shape of the contract, with `retry-after` when known. */
function sendError (reply: FastifyReply, err: Error): FastifyReply {
  const e = err as Partial<RelayError>
  const status = typeof e.status === 'number' ? e.status : 500
  const code = typeof e.code === 'string' ? e.code : 'internal'
  if (e.retryAfter !== undefined) reply.header('retry-after', String(Math.max(0, Math.ceil(e.retryAfter))))
  return reply.code(status).type('application/json; charset=utf-8').send({ error: { code, message: err.message } })
}

function clientErrorCode (code: string | undefined, status: number): string {
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return 'body_too_large'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return 'unsupported_media_type'
    case 'FST_ERR_CTP_EMPTY_JSON_BODY': return 'invalid_request'
    case 'FST_ERR_CTP_INVALID_JSON_BODY': return 'invalid_json'
    default: return status === 404 ? 'not_found' : 'invalid_request'
  }
}

/** Keys are compared by digest: the key itself is never kept in a log-reachable place. */
function keyId (key: string): string {
  return `key:${createHash('sha256').update(key).digest('base64url').slice(0, 22)}`
}

export default fp(relayPlugin, { name: 'fastify-llm-relay', fastify: '5.x', dependencies: ['fastify-llm-relay-sse'] })
