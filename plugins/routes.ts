import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Channels } from '../lib/relay/channels.js'
import { RelayError } from '../lib/relay/errors.js'
import type { Relay } from '../lib/relay/relay.js'
import type { RequestPolicy } from '../lib/relay/request-policy.js'
import { channelRoutes } from './channel-routes.js'
import type { AuthorizeChannel } from './channel-routes.js'
import { chatRoutes } from './chat-routes.js'
import { ownerOf } from './identify.js'
import type { Identify } from './identify.js'
import { modelsRoute } from './models-route.js'
import type { ModelLister } from './models-route.js'
import type { PrepareRequest, ResolvedRoutes } from './options.js'
import { clientError, sendError } from './relay-http.js'
import type { StreamSettings } from './relay-http.js'
import { MAX_BODY_DEPTH, nestsDeeperThan } from './relay-schema.js'
import type { Responder } from './responder.js'

/** The methods a 405's `Allow` may list. */
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/** What the built-in routes are made of. */
export interface RoutesContext {
  routes: ResolvedRoutes
  relay: Relay
  responder: Responder
  channels: Channels | undefined
  settings: StreamSettings
  identify: Identify | undefined
  publishKeys: string[]
  authorizeChannel: AuthorizeChannel | undefined
  policy: RequestPolicy
  prepareRequest: PrepareRequest | undefined
  defaultModel: string
  upstream: ModelLister | undefined
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The owner of an identified request to the relay's routes (`null`: anonymous). */
    relayOwner: string | null
  }
  interface FastifyContextConfig {
    /** The route authenticates publishers itself (channel publishing). */
    publish?: boolean
  }
}

/**
 * The relay's built-in routes (README "Endpoints") in a context of their own under the prefix,
 * so an application that registers the relay keeps its own error handler, 404 and hooks for its
 * own routes. Checks run in the README's order: identity (onRequest), then the body (Fastify's
 * parser and schema), then limits (in the handler).
 */
export async function registerRoutes (app: FastifyInstance, context: RoutesContext): Promise<void> {
  const { routes, identify } = context
  app.decorateRequest('relayOwner', null)
  await app.register(async (api) => {
    // The API speaks JSON only: any other body type is a 415, not a string that fails validation.
    api.removeContentTypeParser('text/plain')

    if (identify !== undefined) {
      api.addHook('onRequest', async (request) => {
        if (request.routeOptions.config.publish === true) return
        request.relayOwner = await ownerOf(identify, request)
      })
    }

    // JSON nested thousands deep parses, but overflows the stack of whatever walks it next
    // (serializing it upstream, validating it): refused as a bad body, before the schema.
    api.addHook('preValidation', async (request) => {
      if (nestsDeeperThan(request.body, MAX_BODY_DEPTH)) {
        throw new RelayError('invalid_request', 400, `the body nests deeper than ${MAX_BODY_DEPTH} levels`)
      }
    })

    api.setErrorHandler((err, request, reply) => {
      if (err instanceof RelayError) return sendError(reply, err)
      const e = err as { validation?: unknown, statusCode?: number, code?: string, message: string }
      if (e.validation !== undefined) return sendError(reply, new RelayError('invalid_request', 400, e.message))
      const status = e.statusCode ?? 500
      if (status < 500) return sendError(reply, clientError(e.code, status, e.message, request.headers['content-type']))
      request.log.error({ err }, 'request failed')
      return sendError(reply, new RelayError('internal', 500, 'internal error'))
    })

    // Every other request under the prefix (an unknown path, or a known path with another
    // method) is the API's too: identity first, then a 404 in the relay's shape. The not-found
    // handler lives in a child with no routes of its own, whose onRequest hook (after the
    // identity hook inherited from `api`) answers before the body is read, so the body of a
    // request to no route gets no 400 or 415. Without a prefix the application's 404 stays.
    if (routes.prefix !== '') {
      await api.register(async (unknown) => {
        const notFound = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
          // The path only: a query string can carry anything, and is not echoed back.
          const path = request.url.split('?', 1)[0] as string
          // A known path with another method: 405 and the methods it has (RFC 9110 §15.5.6).
          const allowed = METHODS.filter((method) => unknown.findRoute({ method, url: path }) !== null)
          if (allowed.length > 0) {
            reply.header('allow', allowed.join(', '))
            return sendError(reply, new RelayError('method_not_allowed', 405, `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`))
          }
          return sendError(reply, new RelayError('not_found', 404, `no route ${request.method} ${path}`))
        }
        unknown.addHook('onRequest', notFound)
        unknown.setNotFoundHandler(notFound)
      })
    }

    await chatRoutes(api, { ...context, start: routes.start, streams: routes.streams, completions: routes.completions })
    if (routes.models) modelsRoute(api, { models: context.policy.models, defaultModel: context.defaultModel, upstream: context.upstream })
    if (routes.channels && context.channels !== undefined) {
      await channelRoutes(api, { ...context.settings, channels: context.channels, publishKeys: context.publishKeys, authorize: context.authorizeChannel })
    }
  }, { prefix: routes.prefix })
}
