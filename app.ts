import Fastify from 'fastify'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { readConfig } from './lib/config.js'
import type { RelayConfig } from './lib/config.js'
import { startMockUpstream } from './lib/mock/index.js'
import { RelayError } from './lib/relay/errors.js'
import type { RelayHooks, UpstreamStreamer } from './lib/relay/generation.js'
import type { RelayStore } from './lib/relay/store.js'
import type { UpstreamClientOptions } from './lib/upstream/index.js'
import type { AuthorizeChannel } from './plugins/channel-routes.js'
import chatPage from './plugins/chat-page.js'
import type { Identify } from './plugins/identify.js'
import llmRelay from './plugins/llm-relay.js'
import type { PrepareRequest } from './plugins/options.js'
import { sendError } from './plugins/relay-http.js'
import { LazyChildLogger } from './plugins/lazy-logger.js'
import { answerClientError, answerRefusedRequests } from './plugins/client-errors.js'
import { RequestLogController, serializeRequest } from './plugins/request-log.js'
import corsPlugin from './plugins/cors.js'
import { metricsRoute, serveMetricsApart } from './plugins/metrics-route.js'
import demoRoutes from './examples/demo-routes.js'

/** Options of {@link buildApp}; everything not given comes from the environment. */
export interface AppOptions {
  /** Environment to read (README "Configuration"). @default process.env */
  env?: Record<string, string | undefined>
  /** Pino logger options, or false. @default { level: LOG_LEVEL } */
  logger?: boolean | Record<string, unknown>
  /** Where the default logger writes (a pino destination), instead of stdout; ignored with `logger`. */
  logStream?: { write: (line: string) => unknown }
  /** Application hooks (persist answers, …). */
  hooks?: RelayHooks
  /** Replace the upstream client (tests of the relay against a scripted source). */
  upstream?: UpstreamStreamer
  /** Replace the store. */
  store?: RelayStore
  /** Who owns a request's streams (instead of `RELAY_API_KEYS`). */
  identify?: Identify
  /** Rewrites or refuses the upstream body of the built-in start routes. */
  prepareRequest?: PrepareRequest
  /** Who may read which channel; denied readers get 404. @default everyone who passed RELAY_API_KEYS */
  authorizeChannel?: AuthorizeChannel
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The configuration the service runs with. */
    relayConfig: RelayConfig
  }
}

/**
 * The service (what `npm start` runs): the `fastify-llm-relay` plugin configured from the
 * environment, with the embedded mock upstream when no `UPSTREAM_URL` is set, the chat page, the
 * demos, health, readiness and metrics. Boot fails with a message naming the variable when the
 * configuration is wrong.
 */
export async function buildApp (options: AppOptions = {}): Promise<FastifyInstance> {
  const config = readConfig(options.env ?? process.env)
  const app = Fastify({
    logger: options.logger ?? {
      level: config.logLevel,
      // Keys never reach a log line, whatever a request carries: nor does a query string (plugins/request-log.ts).
      redact: ['req.headers.authorization', 'req.headers["x-api-key"]'],
      serializers: { req: serializeRequest },
      ...(options.logStream === undefined ? {} : { stream: options.logStream })
    },
    logController: new RequestLogController(),
    bodyLimit: config.maxBodyBytes,
    trustProxy: config.trustProxy ?? false,
    // Receiving a whole request (headers and body) has a deadline, or a client that stalls its body
    // holds a connection for ever. It ends once the request is in: a stream it answers is not cut.
    requestTimeout: config.requestTimeoutMs,
    http: nodeServerTimers(config.requestTimeoutMs),
    // While closing, the plugin drains (running answers finish within SHUTDOWN_GRACE_MS): requests
    // meanwhile are still answered by the routes — /readyz says draining, a new generation gets
    // the relay's 503 shutting_down, a reader resumes — not by Fastify's bare 503.
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // Conversation and channel ids in paths may have 128 characters (Fastify's default stops at 100).
    routerOptions: { maxParamLength: 256 },
    // A URL the router cannot take gets the relay's JSON error too, without echoing the path.
    frameworkErrors: (error, _request, reply) => {
      sendError(reply, ROUTER_ERRORS[error.code] ?? new RelayError('internal', 500, 'internal error'))
    },
    // ...and so does a request Node's parser refuses (plugins/client-errors.ts).
    clientErrorHandler: answerClientError,
    // Each request's logger (its reqId) is made when it first logs at an enabled level.
    ...(options.logger === false ? {} : { childLoggerFactory: lazyRequestLogger })
  })
  answerRefusedRequests(app.server)

  let upstream: UpstreamStreamer | UpstreamClientOptions | undefined = options.upstream
  if (upstream === undefined) {
    let url = config.upstreamUrl
    if (url === undefined) {
      // No UPSTREAM_URL: the embedded mock, so `npm start` needs no key and no network.
      const mock = await startMockUpstream({ log: (line: string) => app.log.info(line) })
      url = mock.url
      app.addHook('onClose', async () => { await mock.close() })
      app.log.info({ upstream: mock.url }, 'using the embedded mock upstream (set UPSTREAM_URL for a real one)')
    }
    upstream = {
      url,
      apiKey: config.upstreamApiKey,
      model: config.upstreamModel,
      format: config.upstreamFormat,
      connectTimeoutMs: config.upstreamConnectTimeoutMs,
      headersTimeoutMs: config.upstreamHeadersTimeoutMs,
      firstTokenTimeoutMs: config.upstreamFirstTokenTimeoutMs,
      idleTimeoutMs: config.upstreamIdleTimeoutMs,
      maxRetries: config.upstreamMaxRetries
    }
  }

  app.decorate('relayConfig', config)
  // First, so its headers are on every answer, streams and errors included (plugins/cors.ts).
  await app.register(corsPlugin, { origins: config.corsOrigins, credentials: config.corsCredentials })
  // The whole relay in one call: the service is one use of the plugin.
  await app.register(llmRelay, {
    upstream,
    ...(options.store !== undefined ? { store: options.store } : { redis: config.redis }),
    hooks: options.hooks,
    maxStreamsPerClient: config.maxStreamsPerClient,
    maxStreams: config.maxStreams,
    maxConnectionsPerClient: config.maxConnectionsPerClient,
    maxDurationMs: config.streamMaxDurationMs,
    detachGraceMs: config.detachGraceMs,
    retainMs: config.retainMs,
    commitAfterMs: config.commitAfterMs,
    shutdownGraceMs: config.shutdownGraceMs,
    identify: options.identify,
    apiKeys: config.relayApiKeys,
    publishKeys: config.relayPublishKeys,
    authorizeChannel: options.authorizeChannel,
    prepareRequest: options.prepareRequest,
    models: config.upstreamModels,
    maxOutputTokens: config.maxOutputTokens,
    systemPrompt: config.systemPrompt,
    maxChoices: config.maxChoices,
    defaultModel: config.upstreamModel,
    heartbeatMs: config.heartbeatMs,
    maxBufferedBytes: config.maxBufferedBytes,
    fastPath: config.sseFastPath
  })
  await app.register(demoRoutes, { channels: app.channels })

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (request, reply) => {
    const { relay } = app
    const { draining, store } = relay
    const storeReady = store.ready
    const ready = !draining && storeReady
    // `reason` says why not (draining, or what the store waits for), for the operator reading it.
    const reason = draining ? 'draining' : storeReady ? undefined : store.notReady ?? 'the store is unavailable'
    return reply.code(ready ? 200 : 503).send({ ready, draining, store: storeReady ? 'ok' : 'unavailable', reason })
  })

  // /metrics: behind METRICS_KEY when set, and on its own port with METRICS_PORT (README "Logs and metrics").
  const metricsOptions = { metrics: app.relayMetrics, key: config.metricsKey }
  if (config.metricsPort === undefined) metricsRoute(app, metricsOptions)
  else serveMetricsApart(app, { ...metricsOptions, port: config.metricsPort, host: config.host })

  await app.register(chatPage)
  return app
}

/** The router's own refusals, as the contract's errors. */
const ROUTER_ERRORS: Record<string, RelayError> = {
  FST_ERR_BAD_URL: new RelayError('invalid_url', 400, 'the URL is malformed (bad percent-encoding)'),
  FST_ERR_MAX_PARAM_LENGTH: new RelayError('uri_too_long', 414, 'a path segment is too long')
}

/**
 * What Node's server needs for `requestTimeout` to act: it checks its deadlines every
 * `connectionsCheckingInterval` (30 s by default: a short deadline would mean nothing), and it
 * enforces none while `headersTimeout` (60 s by default) is longer than the request's.
 */
function nodeServerTimers (requestTimeoutMs: number): { connectionsCheckingInterval: number, headersTimeout?: number } {
  if (requestTimeoutMs === 0) return { connectionsCheckingInterval: 30_000 }
  return {
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(requestTimeoutMs / 4))),
    headersTimeout: Math.min(60_000, requestTimeoutMs)
  }
}

/**
 * Fastify's per-request child logger, made lazily ({@link LazyChildLogger}): a request that logs
 * nothing at the active level pays no pino child. A route's own log level or serializers make a
 * different child, so that one is made at once.
 */
function lazyRequestLogger (logger: FastifyBaseLogger, bindings: Record<string, unknown>, options: object): FastifyBaseLogger {
  for (const key in options) if (Object.hasOwn(options, key)) return logger.child(bindings, options)
  return new LazyChildLogger(logger, bindings)
}
