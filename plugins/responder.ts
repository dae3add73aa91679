import type { FastifyReply, FastifyRequest } from 'fastify'
import { RelayError } from '../lib/relay/errors.js'
import type { Generation } from '../lib/relay/generation.js'
import type { JournalListener } from '../lib/relay/journal.js'
import { OpenAIChunkWriter } from '../lib/relay/openai-format.js'
import type { ResumeVia } from '../lib/relay/metrics.js'
import type { Relay } from '../lib/relay/relay.js'
import type { SseStream } from '../lib/sse/stream.js'
import { modelOf } from '../lib/upstream/types.js'
import type { ChatRequestBody } from '../lib/upstream/types.js'
import { ownerOf } from './identify.js'
import type { Identify } from './identify.js'
import { sendError, sseListener, tagLogs, unsubscribeOnClose } from './relay-http.js'
import type { StreamSettings } from './relay-http.js'

/** Options of `reply.relay()`: who owns the generation, its conversation, and the wire format. */
export interface RelayReplyOptions {
  /**
   * The conversation it answers (1–128 of `A–Z a–z 0–9 _ . : -`): a new generation supersedes
   * the conversation's running one (its readers get `close` with reason `superseded`), and
   * `GET /v1/conversations/:id/stream` finds it.
   */
  conversationId?: string | undefined
  /**
   * Who owns it: only this owner can resume, attach to or stop it through the built-in routes
   * (others get 404). `null`: anyone with the stream id. @default the plugin's `identify(request)`, or `null` without one
   */
  owner?: string | null | undefined
  /** Whom `maxStreamsPerClient` counts. @default the owner, or the client's address when anonymous */
  client?: string | undefined
  /**
   * The wire format: the relay's events (`relay`: deltas, `[DONE]`, `close`; resumable), or
   * OpenAI Chat Completions chunks (`openai`: what the OpenAI SDKs read). @default 'relay'
   */
  format?: 'relay' | 'openai'
  /** `openai` format: the model its chunks name. @default the body's `model`, or the upstream's default */
  model?: string | undefined
  /** `openai` format: send the usage chunk. @default the body's `stream_options.include_usage` */
  includeUsage?: boolean | undefined
}

/** How a journal is written to a stream: the relay's format, or OpenAI chunks of a model. */
type Format = { openai: false } | { openai: true, model: string, includeUsage: boolean }

const RELAY_FORMAT: Format = { openai: false }

/** Conversation ids: what a client can safely pick (and a log line can safely hold). */
export const CONVERSATION_ID = /^[A-Za-z0-9_.:-]{1,128}$/

const notFound = (): RelayError => new RelayError('not_found', 404, 'no such stream (unknown, expired, or not yours)')

/**
 * The one path from an HTTP request to a generation and back: starts generations, commits their
 * streams late, and writes journals to readers, for the built-in routes and `reply.relay()` alike.
 */
export class Responder {
  readonly #relay: Relay
  readonly #settings: StreamSettings
  readonly #identify: Identify | undefined
  readonly #defaultModel: string
  /** One options object per format, so the SSE plugin resolves each once, not per reply. */
  readonly #openAISse: StreamSettings['sse']

  constructor (relay: Relay, settings: StreamSettings, identify: Identify | undefined, defaultModel: string) {
    this.#relay = relay
    this.#settings = settings
    this.#identify = identify
    this.#defaultModel = defaultModel
    // OpenAI clients know no `retry:` field.
    this.#openAISse = { ...settings.sse, retry: undefined }
  }

  /** The owner of what `request` starts or reads (the plugin's `identify`, or anonymous). */
  async ownerOf (request: FastifyRequest): Promise<string | null> {
    return this.#identify === undefined ? null : await ownerOf(this.#identify, request)
  }

  /**
   * `reply.relay()`: starts a generation of `body` and streams it, committing late: a failure
   * before the first token is a JSON error with its real status, never a 200 stream. Never
   * rejects: every failure is answered.
   */
  async relay (request: FastifyRequest, reply: FastifyReply, body: ChatRequestBody, options: RelayReplyOptions = {}): Promise<FastifyReply> {
    try {
      const owner = options.owner !== undefined ? options.owner : await this.ownerOf(request)
      const generation = await this.start(request, reply, body, { ...options, owner })
      return await this.commit(request, reply, generation, this.#format(body, options))
    } catch (err) {
      if (reply.sent) return reply
      const failure = RelayError.from(err)
      if (failure.code === 'internal') request.log.error({ err }, 'reply.relay() failed')
      return sendError(reply, failure)
    }
  }

  /**
   * Starts a generation (limits, supersede) and tags the request's log lines with its id.
   * @throws {RelayError} 400 for a bad conversation id, 429/503 for the limits.
   */
  async start (request: FastifyRequest, reply: FastifyReply, body: ChatRequestBody, options: RelayReplyOptions & { owner: string | null }): Promise<Generation> {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new TypeError('reply.relay(): the upstream body must be an object')
    const { conversationId, owner } = options
    if (conversationId !== undefined && (typeof conversationId !== 'string' || !CONVERSATION_ID.test(conversationId))) {
      throw new RelayError('invalid_request', 400, 'conversationId must be 1 to 128 letters, digits, or "_", ".", ":", "-"')
    }
    const generation = await this.#relay.start({
      owner,
      // Who the per-client limit counts: the owner, or the address when anonymous.
      client: options.client ?? owner ?? `ip:${request.ip}`,
      conversationId,
      body
    })
    tagLogs(request, reply, { streamId: generation.info.streamId })
    return generation
  }

  /**
   * Commit late ({@link Relay.awaitCommit}): the request waits as a reader until the first event
   * (or the commit-after time), then the stream opens and reads the journal from its start. A
   * failure before is answered with its status; a client that left gets nothing.
   */
  async commit (request: FastifyRequest, reply: FastifyReply, generation: Generation, format: Format = RELAY_FORMAT): Promise<FastifyReply> {
    const left = new AbortController()
    const leave = (): void => left.abort()
    reply.raw.on('close', leave)
    try {
      await this.#relay.awaitCommit(generation, left.signal)
    } catch (err) {
      // Stopped by a superseding request or a DELETE while waiting, or failed upstream (after retries).
      if (!reply.raw.destroyed) sendError(reply, err as RelayError)
      return reply
    } finally {
      reply.raw.off('close', leave)
    }
    if (reply.raw.destroyed) return reply
    return this.read(request, reply, generation.info.streamId, 0, format)
  }

  /**
   * A generation's stream for a reader that asks by id (resume, a second tab, another instance)
   * or by conversation (`via`): from the first event, or after `afterId`. `404` when it is
   * unknown, expired or not the owner's. Counted as a resume when it starts after an event, and
   * always by conversation: that route only ever re-attaches (a page reload, another device).
   */
  async resume (request: FastifyRequest, reply: FastifyReply, streamId: string, owner: string | null, afterId: number, via: Exclude<ResumeVia, 'channel'> = 'stream'): Promise<FastifyReply> {
    if (await this.#relay.find(streamId, owner) === undefined) throw notFound()
    tagLogs(request, reply, { streamId })
    if (afterId > 0 || via === 'conversation') {
      request.log.info({ lastEventId: afterId, via }, 'stream resumed')
      this.#settings.observer?.resumed(via)
    }
    return this.read(request, reply, streamId, afterId, RELAY_FORMAT)
  }

  /** Stops a generation now, wherever it runs. `404` when it is not the owner's. */
  async cancel (streamId: string, owner: string | null): Promise<{ streamId: string, cancelled: boolean }> {
    if (await this.#relay.find(streamId, owner) === undefined) throw notFound()
    return { streamId, cancelled: await this.#relay.cancel(streamId, owner) }
  }

  /** Opens the SSE response and reads the journal into it from `afterId`, in the relay's format or as OpenAI chunks. */
  read (request: FastifyRequest, reply: FastifyReply, streamId: string, afterId: number, format: Format): FastifyReply {
    const sse = reply.header('x-stream-id', streamId).sse(format.openai ? this.#openAISse : this.#settings.sse)
    const listener = format.openai ? openAIListener(sse, `chatcmpl-${streamId}`, format.model, format.includeUsage) : sseListener(sse)
    unsubscribeOnClose(request, sse, this.#relay.read(streamId, afterId, listener), this.#settings.observer)
    return reply
  }

  /** The OpenAI format's model and usage choice for `body`, or the relay's format. */
  #format (body: ChatRequestBody, options: RelayReplyOptions): Format {
    if (options.format !== 'openai') {
      if (options.format !== undefined && options.format !== 'relay') throw new TypeError('reply.relay(): format must be "relay" or "openai"')
      return RELAY_FORMAT
    }
    return { openai: true, model: this.modelOf(body, options.model), includeUsage: options.includeUsage ?? includeUsageOf(body) }
  }

  /** The model an OpenAI-format answer names. */
  modelOf (body: ChatRequestBody, model?: string): string {
    return model ?? modelOf(body, this.#defaultModel)
  }
}

/** Whether an OpenAI body asks for the usage chunk (`stream_options.include_usage`), as OpenAI sends it only then. */
export function includeUsageOf (body: ChatRequestBody): boolean {
  return (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true
}

/** Writes the journal as OpenAI chunks; OpenAI clients know no `close` event, so the response just ends. */
function openAIListener (sse: SseStream, completionId: string, model: string, includeUsage: boolean): JournalListener {
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
