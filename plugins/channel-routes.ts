import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Channels } from '../lib/relay/channels.js'
import type { ChannelEvent } from '../lib/relay/channels.js'
import { RelayError } from '../lib/relay/errors.js'
import { bearerOf, keyId, sendError, sseListener, tagLogs, unsubscribeOnClose } from './relay-http.js'
import type { StreamSettings } from './relay-http.js'
import { lastEventIdOf } from './relay-schema.js'

/**
 * Decides whether a request may read a channel (e.g. a user sees only their own order's
 * channel). A denied reader gets 404, the same as for a channel that cannot exist.
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

/** `GET /v1/channels/:channel/stream` and `POST /v1/channels/:channel/events` (CONTRACT.md). */
export async function channelRoutes (app: FastifyInstance, options: ChannelRouteOptions): Promise<void> {
  const { channels, authorize } = options
  const publishKeys = new Set(options.publishKeys.map(keyId))

  app.get<{ Params: { channel: string } }>('/v1/channels/:channel/stream', { schema: { params: channelParams } }, async (request, reply) => {
    const { channel } = request.params
    const afterId = lastEventIdOf(request)
    if (authorize !== undefined && !await authorize(request, channel)) {
      throw new RelayError('not_found', 404, 'no such channel (or not yours)')
    }
    tagLogs(request, reply, { channel })
    const sse = reply.sse(options.sse)
    unsubscribeOnClose(request, sse, await channels.read(channel, afterId, sseListener(sse)), options.observer)
    return reply
  })

  app.post<{ Params: { channel: string }, Body: unknown }>('/v1/channels/:channel/events', {
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

export { Channels }
