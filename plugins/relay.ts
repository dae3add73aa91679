import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Channels } from '../lib/relay/channels.js'
import { RelayError } from '../lib/relay/errors.js'
import type { Relay } from '../lib/relay/relay.js'
import { UpstreamError } from '../lib/upstream/types.js'
import { channelRoutes } from './channel-routes.js'
import type { AuthorizeChannel } from './channel-routes.js'
import { chatRoutes } from './chat-routes.js'
import { bearerOf, clientErrorCode, keyId, sendError } from './relay-http.js'
import type { StreamObserver } from './relay-http.js'
import { PLUGIN_NAME, resolveRelayOptions } from './relay-options.js'
import { MAX_BODY_DEPTH, nestsDeeperThan } from './relay-schema.js'

/** Options of the relay plugin (checked at registration: boot fails with a TypeError naming a bad one). */
export interface RelayPluginOptions {
  /** The relay core (generations, store, limits). */
  relay: Relay
  /** Channels for application events; without it, the channel routes are not served. */
  channels?: Channels
  /** Bearer keys for `/v1/*` (`RELAY_API_KEYS`); empty = open. @default [] */
  apiKeys?: string[]
  /** Bearer keys that may publish to channels over HTTP (`RELAY_PUBLISH_KEYS`). @default [] */
  publishKeys?: string[]
  /** Who may read which channel; denied readers get 404. @default everyone (who passed `apiKeys`) */
  authorizeChannel?: AuthorizeChannel
  /** Model named in OpenAI-format answers when the request names none (`UPSTREAM_MODEL`). @default 'gpt-4o-mini' */
  defaultModel?: string
  /** `: ping` interval on every stream (`HEARTBEAT_MS`). @default 15000 */
  heartbeatMs?: number
  /** The `retry:` sent first on every relay-format stream, in ms (OpenAI-format streams send none). @default 3000 */
  retryMs?: number
  /** Per-reader byte budget before `slow_consumer`. @default 1048576 */
  maxBufferedBytes?: number
  /** Counts downstream streams (opened, closed by reason, resumed). */
  observer?: StreamObserver
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Key identity of an authenticated `/v1/*` request (`null` when the relay runs open). */
    relayOwner: string | null
  }
  interface FastifyContextConfig {
    /** The route authenticates publishers itself (channel publishing). */
    publish?: boolean
  }
}

/**
 * The relay's HTTP face (CONTRACT.md "Endpoints"): maps requests onto the {@link Relay} core and
 * journal readers onto `reply.sse()`. Checks run in the contract's order: authentication
 * (onRequest), then the body (Fastify's parser and schema), then limits (in the handler).
 */
async function relayPlugin (app: FastifyInstance, options: RelayPluginOptions): Promise<void> {
  const resolved = resolveRelayOptions(options)
  const keys = new Set(resolved.apiKeys.map(keyId))
  const settings = { sse: resolved.sse, observer: resolved.observer }

  app.decorateRequest('relayOwner', null)
  // Routes, hooks and the error handler live in their own context, so an application that
  // registers the relay keeps its own error handler for its own routes.
  await app.register(async (api) => {
    // The API speaks JSON only: any other body type is a 415, not a string that fails validation.
    api.removeContentTypeParser('text/plain')

    api.addHook('onRequest', async (request, reply) => {
      if (keys.size === 0 || request.routeOptions.config.publish === true) return
      const token = bearerOf(request)
      const id = token === undefined ? undefined : keyId(token)
      if (id === undefined || !keys.has(id)) {
        return sendError(reply, new RelayError('unauthorized', 401, token === undefined ? 'missing bearer token' : 'invalid bearer token'))
      }
      request.relayOwner = id
    })

    // JSON nested thousands deep parses, but overflows the stack of whatever walks it next
    // (serializing it upstream, validating it): refused as a bad body, before the schema.
    api.addHook('preValidation', async (request) => {
      if (nestsDeeperThan(request.body, MAX_BODY_DEPTH)) {
        throw new RelayError('invalid_request', 400, `the body nests deeper than ${MAX_BODY_DEPTH} levels`)
      }
    })

    api.setErrorHandler((err, request, reply) => {
      if (err instanceof RelayError || err instanceof UpstreamError) return sendError(reply, err)
      const e = err as { validation?: unknown, statusCode?: number, code?: string, message: string }
      if (e.validation !== undefined) return sendError(reply, new RelayError('invalid_request', 400, e.message))
      const status = e.statusCode ?? 500
      if (status < 500) return sendError(reply, new RelayError(clientErrorCode(e.code, status), status, e.message))
      request.log.error({ err }, 'request failed')
      return sendError(reply, new RelayError('internal', 500, 'internal error'))
    })

    // Every other /v1/* request (an unknown path, or a known path with another method: the
    // contract names no 405) is the API's too: key check first, then a 404 in the contract's shape.
    // Not-found handlers are per prefix, hence a '/v1' child (no routes of its own): paths outside
    // /v1 keep the application's 404. The hooks of that child, the auth hook inherited from `api`
    // then its own, run for its not-found handler; its own answers the 404 before the body is read,
    // so the body of a request to no route gets no 400 or 415.
    await api.register(async (v1) => {
      const notFound = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
        // The path only: a query string can carry anything, and is not echoed back.
        const path = request.url.split('?', 1)[0]
        return sendError(reply, new RelayError('not_found', 404, `no route ${request.method} ${path}`))
      }
      v1.addHook('onRequest', notFound)
      v1.setNotFoundHandler(notFound)
    }, { prefix: '/v1' })

    await chatRoutes(api, { ...settings, relay: resolved.relay, defaultModel: resolved.defaultModel })
    if (resolved.channels !== undefined) {
      await channelRoutes(api, { ...settings, channels: resolved.channels, publishKeys: resolved.publishKeys, authorize: resolved.authorizeChannel })
    }
  })
}

export default fp(relayPlugin, { name: PLUGIN_NAME, fastify: '5.x', dependencies: ['fastify-llm-relay-sse'] })
