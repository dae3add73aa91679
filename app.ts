import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import Fastify from 'fastify'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { readConfig } from './lib/config.js'
import type { RelayConfig } from './lib/config.js'
import { startMockUpstream } from './lib/mock/index.js'
import { Channels } from './lib/relay/channels.js'
import { RelayError } from './lib/relay/errors.js'
import type { RelayHooks, UpstreamStreamer } from './lib/relay/generation.js'
import { RelayMetrics } from './lib/relay/metrics.js'
import { Relay } from './lib/relay/relay.js'
import type { RelayStore, StoreLog } from './lib/relay/store.js'
import { MemoryStore } from './lib/relay/stores/memory.js'
import { RedisStore } from './lib/relay/stores/redis.js'
import { UpstreamClient } from './lib/upstream/index.js'
import type { AuthorizeChannel } from './plugins/channel-routes.js'
import relayPlugin from './plugins/relay.js'
import { sendError } from './plugins/relay-http.js'
import ssePlugin from './plugins/sse.js'
import { LazyChildLogger } from './plugins/lazy-logger.js'
import demoRoutes from './examples/demo-routes.js'

/** Options of {@link buildApp}; everything not given comes from the environment. */
export interface AppOptions {
  /** Environment to read (CONTRACT.md names). @default process.env */
  env?: Record<string, string | undefined>
  /** Pino logger options, or false. @default { level: LOG_LEVEL } */
  logger?: boolean | Record<string, unknown>
  /** Application hooks (persist answers, …). */
  hooks?: RelayHooks
  /** Replace the upstream client (tests of the relay against a scripted source). */
  upstream?: UpstreamStreamer
  /** Replace the store. */
  store?: RelayStore
  /** Who may read which channel; denied readers get 404. @default everyone who passed RELAY_API_KEYS */
  authorizeChannel?: AuthorizeChannel
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The relay core of this service: generations, store, drain. */
    relay: Relay
    /** The configuration the service runs with. */
    relayConfig: RelayConfig
    /** Publish application events to channels: `await app.channels.publish('order:42', { data: { progress: 50 } })`. */
    channels: Channels
  }
}

/**
 * Composes the service from its configuration: the upstream (or the embedded mock), the store,
 * the SSE and relay plugins, the chat page, health and readiness. Boot fails with a message
 * naming the variable when the configuration is wrong.
 */
export async function buildApp (options: AppOptions = {}): Promise<FastifyInstance> {
  const config = readConfig(options.env ?? process.env)
  const app = Fastify({
    logger: options.logger ?? {
      level: config.logLevel,
      // Keys never reach a log line, whatever a request carries.
      redact: ['req.headers.authorization', 'req.headers["x-api-key"]']
    },
    bodyLimit: config.maxBodyBytes,
    trustProxy: config.trustProxy ?? false,
    // Receiving a whole request (headers and body) has a deadline, or a client that stalls its body
    // holds a connection for ever. It ends once the request is in: a stream it answers is not cut.
    requestTimeout: config.requestTimeoutMs,
    http: nodeServerTimers(config.requestTimeoutMs),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // Conversation and channel ids in paths may have 128 characters (Fastify's default stops at 100).
    routerOptions: { maxParamLength: 256 },
    // A URL the router cannot take gets the contract's JSON error too, without echoing the path.
    frameworkErrors: (error, _request, reply) => {
      sendError(reply, ROUTER_ERRORS[error.code] ?? new RelayError('internal', 500, 'internal error'))
    },
    // Each request's logger (its reqId) is made when it first logs at an enabled level.
    ...(options.logger === false ? {} : { childLoggerFactory: lazyRequestLogger })
  })

  let upstreamUrl = config.upstreamUrl
  if (options.upstream === undefined && upstreamUrl === undefined) {
    // No UPSTREAM_URL: the embedded mock, so `npm start` needs no key and no network.
    const mock = await startMockUpstream({ log: (line: string) => app.log.info(line) })
    upstreamUrl = mock.url
    app.addHook('onClose', async () => { await mock.close() })
    app.log.info({ upstream: mock.url }, 'using the embedded mock upstream (set UPSTREAM_URL for a real one)')
  }
  let upstream = options.upstream
  if (upstream === undefined) {
    const client = new UpstreamClient({
      url: upstreamUrl as string,
      apiKey: config.upstreamApiKey,
      model: config.upstreamModel,
      format: config.upstreamFormat,
      connectTimeoutMs: config.upstreamConnectTimeoutMs,
      firstTokenTimeoutMs: config.upstreamFirstTokenTimeoutMs,
      idleTimeoutMs: config.upstreamIdleTimeoutMs,
      maxRetries: config.upstreamMaxRetries
    })
    upstream = client
    app.addHook('onClose', async () => { await client.close() })
  }

  /** The store's and the relay's reports (a failing hook or reader, Redis away), as the app's log lines. */
  const log: StoreLog = (level, msg, fields) => app.log[level](fields ?? {}, msg)
  // A Redis (REDIS_URL, a Cluster, Sentinels): journals, conversations, limits and cancel shared by every instance (lib/relay/stores/redis.ts).
  const store = options.store ?? (config.redis !== undefined
    ? new RedisStore({
      ...config.redis,
      retainMs: config.retainMs,
      // The safety-net expiry of a client's slot counts: longer than any generation runs.
      slotTtlMs: config.streamMaxDurationMs > 0 ? config.streamMaxDurationMs + config.detachGraceMs + 60_000 : undefined,
      log,
      onError: (code) => metrics.storeError(code)
    })
    : new MemoryStore({ retainMs: config.retainMs, log }))
  const metrics: RelayMetrics = new RelayMetrics({
    activeGenerations: () => relay.local.size,
    journalBytes: () => (store as Partial<MemoryStore>).bytes,
    journals: () => (store as Partial<MemoryStore>).size
  })
  const relay: Relay = new Relay({
    observer: metrics,
    upstream,
    store,
    hooks: options.hooks,
    maxDurationMs: config.streamMaxDurationMs,
    detachGraceMs: config.detachGraceMs,
    maxStreamsPerClient: config.maxStreamsPerClient,
    maxStreams: config.maxStreams,
    log
  })
  const channels = new Channels({ store, retention: { maxAgeMs: config.retainMs } })
  app.decorate('relay', relay)
  app.decorate('channels', channels)
  app.decorate('relayConfig', config)
  // Stop producing first (readers get `shutdown` and may resume elsewhere), then the store.
  app.addHook('preClose', async () => { await relay.shutdown(0) })
  app.addHook('onClose', async () => { await store.close() })

  await app.register(ssePlugin, { heartbeatMs: config.heartbeatMs })
  await app.register(relayPlugin, {
    relay,
    channels,
    apiKeys: config.relayApiKeys,
    publishKeys: config.relayPublishKeys,
    observer: metrics,
    authorizeChannel: options.authorizeChannel,
    defaultModel: config.upstreamModel,
    heartbeatMs: config.heartbeatMs
  })
  await app.register(demoRoutes, { channels })

  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (request, reply) => {
    const ready = !relay.draining && store.ready
    return reply.code(ready ? 200 : 503).send({ ready, draining: relay.draining, store: store.ready ? 'ok' : 'unavailable' })
  })

  app.get('/metrics', async (request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })

  await app.register(fastifyStatic, { root: publicDir(), index: ['index.html'], wildcard: false })
  return app
}

/** `public/` beside the package root, whether running from the sources or from `dist/`. */
function publicDir (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  return join(dir, 'public')
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
