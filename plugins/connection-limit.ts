/**
 * The per-client limit on open connections of the streaming routes (`MAX_CONNECTIONS_PER_CLIENT`,
 * README "Configuration"): channel streams, demos, resumes and generation streams all count, as
 * each holds a connection (and a reader) for as long as it is open. A route takes part with
 * `config: { sseConnection: true }`; an application's own SSE routes may do the same.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { CappedCounts } from '../lib/relay/capped-counts.js'
import { RelayError } from '../lib/relay/errors.js'
import { bearerOf, keyId } from './identify.js'
import { sendError } from './relay-http.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route holds a connection open (a stream, or a generation being waited for): counted by the per-client connection limit. */
    sseConnection?: boolean
  }
}

/** Route options of a streaming route: `app.get('/x', SSE_CONNECTION_ROUTE, handler)`. */
export const SSE_CONNECTION_ROUTE = { config: { sseConnection: true } } as const

/** Open connections per client, on this instance. */
export class ConnectionLimiter {
  readonly #open = new CappedCounts()

  /** @param max most open connections per client; 0 = no limit */
  constructor (readonly max: number) {}

  /** Counts one more connection of `client`; false (and nothing counted) when it is at the limit. */
  acquire (client: string): boolean {
    return this.#open.take(client, this.max > 0 ? this.max : Infinity)
  }

  release (client: string): void {
    this.#open.give(client)
  }

  /** Open connections of `client`. */
  count (client: string): number {
    return this.#open.count(client)
  }
}

/**
 * Whom the limit counts: with keys (`identified`), a bearer token's digest — the owner the key
 * identifies (plugins/identify.ts); otherwise, and for a request without a token, the client's
 * address. An open relay ignores tokens: any made-up token would be a fresh client.
 */
export function connectionClient (request: FastifyRequest, identified: boolean): string {
  const token = identified ? bearerOf(request) : undefined
  return token === undefined ? `ip:${request.ip}` : keyId(token)
}

/**
 * Enforces `limiter` on every `sseConnection` route of `fastify` (and its children): over the
 * limit, a `429 too_many_connections` with `retry-after`, before identity, body or handler run;
 * otherwise the connection is counted until its response closes, however it ends.
 */
export function limitConnections (fastify: FastifyInstance, limiter: ConnectionLimiter, identified: boolean): void {
  if (limiter.max === 0) return
  fastify.addHook('onRequest', (request, reply, done) => {
    if (request.routeOptions.config.sseConnection !== true) return done()
    const client = connectionClient(request, identified)
    if (!limiter.acquire(client)) {
      sendError(reply, new RelayError('too_many_connections', 429, `at most ${limiter.max} open streams per client`, 1))
      return
    }
    // (`on`: a response closes once; see countResponses in llm-relay.ts.)
    reply.raw.on('close', () => limiter.release(client))
    done()
  })
}
