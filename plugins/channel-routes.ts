import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Channels } from '../lib/relay/channels.js'
import type { ChannelEvent } from '../lib/relay/channels.js'
import { RelayError } from '../lib/relay/errors.js'
import type { EndReason, JournalEntry, JournalListener, Unsubscribe } from '../lib/relay/journal.js'
import type { SseStream } from '../lib/sse/stream.js'
import type { SseOptions } from '../lib/sse/types.js'
import { SSE_CONNECTION_ROUTE } from './connection-limit.js'
import { bearerOf, keyId } from './identify.js'
import { sendError, sseListener, tagLogs, unsubscribeOnClose } from './relay-http.js'
import type { StreamSettings } from './relay-http.js'
import { lastEventIdOf } from './relay-schema.js'

/**
 * Decides whether a request may read a channel (e.g. a user sees only their own order's
 * channel). A denied reader gets 404 `not_found`.
 */
export type AuthorizeChannel = (request: FastifyRequest, channel: string) => boolean | Promise<boolean>

/** Options of {@link channelRoutes}. */
export interface ChannelRouteOptions extends StreamSettings {
  channels: Channels
  /** Bearer keys allowed to publish over HTTP (`RELAY_PUBLISH_KEYS`); none: publishing over HTTP is disabled. */
  publishKeys: string[]
  authorize: AuthorizeChannel | undefined
}

/** Most events one HTTP publish may carry. */
const MAX_BATCH = 1000

const channelParams = {
  type: 'object',
  properties: { channel: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' } }
} as const

/** `GET /v1/channels/:channel/stream` and `POST /v1/channels/:channel/events` (README "Channels"), relative to the routes' prefix. */
export async function channelRoutes (app: FastifyInstance, options: ChannelRouteOptions): Promise<void> {
  const { channels, authorize } = options
  const publishKeys = new Set(options.publishKeys.map(keyId))

  app.get<{ Params: { channel: string } }>('/channels/:channel/stream', { schema: { params: channelParams }, ...SSE_CONNECTION_ROUTE }, async (request, reply) => {
    const { channel } = request.params
    const afterId = lastEventIdOf(request)
    if (authorize !== undefined && !await authorize(request, channel)) {
      throw new RelayError('not_found', 404, 'no such channel (or not yours)')
    }
    tagLogs(request, reply, { channel })
    const { stream, unsubscribe } = await openChannelStream(reply, channels, channel, afterId, options.sse)
    if (afterId > 0) options.observer?.resumed('channel')
    unsubscribeOnClose(request, stream, unsubscribe, options.observer)
    return reply
  })

  app.post<{ Params: { channel: string }, Body: unknown }>('/channels/:channel/events', {
    schema: { params: channelParams },
    // Publishers are services with publish keys, not chat clients with API keys.
    config: { publish: true },
    onRequest: async (request, reply) => {
      if (publishKeys.size === 0) {
        return sendError(reply, new RelayError('publishing_disabled', 403, 'publishing over HTTP is disabled (set RELAY_PUBLISH_KEYS)'))
      }
      const token = bearerOf(request)
      if (token === undefined || !publishKeys.has(keyId(token))) {
        return sendError(reply, new RelayError('unauthorized', 401, token === undefined ? 'missing bearer token' : 'invalid publish key'))
      }
    }
  }, async (request, reply) => {
    const body = request.body
    const events = (Array.isArray(body) ? body : [body]) as ChannelEvent[]
    if (body === null || typeof body !== 'object' || events.length === 0 || events.length > MAX_BATCH) {
      throw new RelayError('invalid_request', 400, `body must be an event {"data", "event"?} or an array of 1 to ${MAX_BATCH} of them`)
    }
    let ids: number[]
    try {
      ids = await channels.publish(request.params.channel, events)
    } catch (err) {
      if (err instanceof TypeError) throw new RelayError('invalid_request', 400, err.message)
      throw err
    }
    return reply.code(202).send({ ids })
  })
}

/**
 * Serves a channel as SSE from `afterId`, committing late: the subscription is opened first, and
 * only once it is (the store answered) does `reply.sse()` send 200 and the SSE headers. A store
 * that fails (Redis down or hung: `store_unavailable`) rejects here with nothing sent, so the
 * route's error handler answers a real status with the JSON error, not a 200 stream that would
 * only ever ping.
 *
 * Events delivered between the two steps are not lost: the store may hand over entries as soon
 * as the subscription exists (the memory store replays synchronously inside `subscribe`, the
 * Redis follower as soon as its catch-up read returns), before there is a stream to write them
 * to. A {@link HeldListener} keeps them (and an end) in order and passes them on when the stream
 * is attached, then gets out of the way. (Subscribing only after the headers, as before, is
 * what let a failed subscription leave a 200 stream behind.)
 *
 * The caller ties `unsubscribe` to the stream's end (e.g. `unsubscribeOnClose`); a stream already
 * closed (the client left while the store answered) runs `onClose` callbacks on the next tick.
 */
export async function openChannelStream (reply: FastifyReply, channels: Channels, channel: string, afterId: number, sseOptions?: SseOptions): Promise<{ stream: SseStream, unsubscribe: Unsubscribe }> {
  const held = new HeldListener()
  const unsubscribe = await channels.read(channel, afterId, held)
  let stream: SseStream
  try {
    stream = reply.sse(sseOptions)
  } catch (err) {
    unsubscribe()
    throw err
  }
  held.attach(sseListener(stream))
  return { stream, unsubscribe }
}

/** A journal listener that holds what arrives until its real listener is attached, then forwards. */
class HeldListener implements JournalListener {
  #held: Array<readonly JournalEntry[] | EndReason> = []
  #target: JournalListener | undefined

  onEntries (entries: readonly JournalEntry[]): void {
    if (this.#target !== undefined) this.#target.onEntries(entries)
    else this.#held.push(entries)
  }

  onEnd (reason: EndReason): void {
    if (this.#target !== undefined) this.#target.onEnd(reason)
    else this.#held.push(reason)
  }

  attach (target: JournalListener): void {
    // Anything delivered while this replays is pushed behind and still replayed in order.
    for (const item of this.#held) {
      if (typeof item === 'string') target.onEnd(item)
      else target.onEntries(item)
    }
    this.#held = []
    this.#target = target
  }
}

export { Channels }
