/**
 * `GET /metrics` (README "Logs and metrics"): the relay's Prometheus text, behind a bearer key
 * (`METRICS_KEY`) when one is set, on the main port or on a listener of its own (`METRICS_PORT`).
 */
import Fastify from 'fastify'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ConfigError, listenFailure } from '../lib/config.js'
import { RelayError } from '../lib/relay/errors.js'
import type { RelayMetrics } from '../lib/relay/metrics.js'
import { bearerOf, keyId } from './identify.js'
import { sendError } from './relay-http.js'

/** Options of {@link metricsRoute}. */
export interface MetricsRouteOptions {
  metrics: RelayMetrics
  /** The bearer key a scrape must carry; `undefined`: none. */
  key: string | undefined
}

/** Registers `GET /metrics` on `app`. */
export function metricsRoute (app: FastifyInstance, options: MetricsRouteOptions): void {
  const { registry } = options.metrics
  const allowed = options.key === undefined ? undefined : keyId(options.key)
  app.get('/metrics', async (request: FastifyRequest, reply: FastifyReply) => {
    if (allowed !== undefined) {
      const token = bearerOf(request)
      // Compared as digests (as API keys are): the key's length and bytes do not leak through timing.
      if (token === undefined || keyId(token) !== allowed) {
        reply.header('www-authenticate', 'Bearer realm="metrics"')
        return sendError(reply, new RelayError('unauthorized', 401, token === undefined ? 'missing bearer token (METRICS_KEY is set)' : 'invalid metrics key'))
      }
    }
    return reply.type(registry.contentType).send(await registry.metrics())
  })
}

/**
 * Serves `/metrics` on a listener of its own, on `host:port` (a port a firewall keeps away from
 * the public, where Prometheus scrapes). It starts when `app` is ready — a port in use fails the
 * boot with a {@link ConfigError} naming `METRICS_PORT` — and closes with `app`. Anything else on
 * it is a `404` in the relay's error shape.
 */
export function serveMetricsApart (app: FastifyInstance, options: MetricsRouteOptions & { port: number, host: string }): void {
  const listener = Fastify({ loggerInstance: app.log, forceCloseConnections: true })
  metricsRoute(listener, options)
  listener.setNotFoundHandler((request, reply) => sendError(reply, new RelayError('not_found', 404, 'this port serves GET /metrics only')))
  app.addHook('onReady', async () => {
    try {
      await listener.listen({ port: options.port, host: options.host })
    } catch (err) {
      const why = listenFailure(err as NodeJS.ErrnoException, options.port, options.host, 'METRICS_PORT')
      throw why === undefined ? err : new ConfigError(why)
    }
  })
  app.addHook('onClose', async () => { await listener.close() })
}
