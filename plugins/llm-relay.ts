/**
 * `fastify-llm-relay`: the relay in one `register` call. It makes what it is not given (the
 * upstream client, the store, the Relay core, channels, metrics), registers `reply.sse()` when
 * absent, decorates the instance (`relay`, `channels`, `relayMetrics`) and the reply
 * (`reply.relay()`), serves the built-in routes, and owns the lifecycle of what it made.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { Channels } from '../lib/relay/channels.js'
import type { UpstreamStreamer } from '../lib/relay/generation.js'
import { RelayMetrics } from '../lib/relay/metrics.js'
import { Relay } from '../lib/relay/relay.js'
import type { RelayStore, StoreLog } from '../lib/relay/store.js'
import { MemoryStore } from '../lib/relay/stores/memory.js'
import { UpstreamClient } from '../lib/upstream/client.js'
import type { ChatRequestBody, UpstreamClientOptions } from '../lib/upstream/types.js'
import { ConnectionLimiter, limitConnections } from './connection-limit.js'
import type { ModelLister } from './models-route.js'
import { PLUGIN_NAME, resolveOptions } from './options.js'
import type { LlmRelayOptions, ResolvedOptions } from './options.js'
import { Responder } from './responder.js'
import type { RelayReplyOptions } from './responder.js'
import { registerRoutes } from './routes.js'
import ssePlugin, { beforeSseClose } from './sse.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The relay core: generations, their store, limits, drain (plugin `fastify-llm-relay`). */
    relay: Relay
    /**
     * Publish application events to channels: `await app.channels.publish('order:42', { data: { progress: 50 } })`.
     * Not decorated when the plugin runs with `channels: false`.
     */
    channels: Channels
    /** The relay's Prometheus metrics (`relayMetrics.registry`). Not decorated with `metrics: false`. */
    relayMetrics: RelayMetrics
    /** Open connections of the streaming routes per client (`maxConnectionsPerClient`). */
    relayConnections: ConnectionLimiter
  }
  interface FastifyReply {
    /**
     * Starts a generation of `body` — an upstream request body the application built (its own
     * prompt, history, model) — and streams it on this reply, like the built-in routes: the
     * stream commits late (a failure before the first token is a JSON error with its real
     * status), carries `x-stream-id`, and can be resumed from any id, stopped and superseded
     * through the built-in routes by its owner. Every failure is answered: it never rejects.
     * Return its promise from the handler: `return reply.relay(body, { conversationId, owner })`.
     */
    relay: (body: ChatRequestBody, options?: RelayReplyOptions) => Promise<FastifyReply>
  }
}

async function llmRelayPlugin (fastify: FastifyInstance, options: LlmRelayOptions): Promise<void> {
  const resolved = resolveOptions(options)
  /** Closers of what the plugin made, run in order when the app closes. */
  const made: Array<() => Promise<void>> = []
  fastify.addHook('onClose', async () => {
    for (const close of made) await close()
  })
  // The store's and the relay's reports (a failing hook or reader, Redis away), as the app's log lines.
  const log: StoreLog = (level, msg, fields) => fastify.log[level](fields ?? {}, msg)

  const upstream = resolved.relay === undefined ? makeUpstream(resolved, made) : undefined
  // The gauges read the relay and the store at scrape time, once both exist.
  const metrics: RelayMetrics | undefined = resolved.metrics === true
    ? new RelayMetrics({
      activeGenerations: () => relay.local.size,
      journalBytes: () => (store as Partial<MemoryStore>).bytes,
      journals: () => (store as Partial<MemoryStore>).size
    })
    : resolved.metrics === false ? undefined : resolved.metrics
  const store: RelayStore = resolved.relay?.store ?? resolved.store ?? await makeStore(resolved, log, made, metrics)
  const { maxStreamsPerClient, maxStreams, maxDurationMs, detachGraceMs, commitAfterMs } = resolved.limits
  const relay: Relay = resolved.relay ?? new Relay({
    upstream: upstream as UpstreamStreamer,
    store,
    hooks: resolved.hooks,
    maxStreamsPerClient,
    maxStreams,
    maxDurationMs,
    detachGraceMs,
    commitAfterMs,
    observer: metrics,
    defaultModel: resolved.defaultModel,
    log
  })
  const channels = resolved.channels === true
    ? new Channels({ store, retention: { maxAgeMs: resolved.limits.retainMs } })
    : resolved.channels === false ? undefined : resolved.channels

  fastify.decorate('relay', relay)
  if (channels !== undefined) fastify.decorate('channels', channels)
  if (metrics !== undefined) {
    fastify.decorate('relayMetrics', metrics)
    countResponses(fastify, metrics)
  }

  // Every stream of the instance (channels, demos, the application's own) gets the same settings.
  if (!fastify.hasReplyDecorator('sse')) {
    const { heartbeatMs, maxBufferedBytes, fastPath } = resolved.sse
    await fastify.register(ssePlugin, { heartbeatMs, maxBufferedBytes, fastPath })
  }
  // Drain before the streams are closed: running answers may finish (their readers get all of
  // them) within the grace time; the rest end with `shutdown`, resumable on another instance.
  if (resolved.relay === undefined) beforeSseClose(fastify, async () => { await relay.shutdown(resolved.shutdownGraceMs) })

  const settings = { sse: resolved.sse, observer: resolved.observer ?? metrics }
  const responder = new Responder(relay, settings, resolved.identify, resolved.defaultModel)
  fastify.decorateReply('relay', function (this: FastifyReply, body: ChatRequestBody, replyOptions?: RelayReplyOptions) {
    return responder.relay(this.request, this, body, replyOptions)
  })

  const connections = new ConnectionLimiter(resolved.limits.maxConnectionsPerClient)
  limitConnections(fastify, connections, resolved.identify !== undefined)
  fastify.decorate('relayConnections', connections)

  fastify.log.info(startupFields(resolved), 'llm relay started')

  if (resolved.routes !== false) {
    await registerRoutes(fastify, {
      routes: resolved.routes,
      relay,
      responder,
      channels,
      settings,
      identify: resolved.identify,
      publishKeys: resolved.publishKeys,
      authorizeChannel: resolved.authorizeChannel,
      policy: resolved.policy,
      prepareRequest: resolved.prepareRequest,
      defaultModel: resolved.defaultModel,
      upstream: upstream as ModelLister | undefined
    })
  }
}

/**
 * `relay_http_responses_total{route,status}` for every route of the instance (the plugin is not
 * encapsulated). Counted when the response closes, not in `onResponse`: an SSE stream the client
 * left never finishes, and would not be counted there. The route is its pattern, never the URL
 * (ids and query strings would make a series per request); `unmatched` for none.
 */
function countResponses (fastify: FastifyInstance, metrics: RelayMetrics): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    const raw = reply.raw
    // `on`: a response closes once, and `once` would hold a wrapper (a bound function and its
    // state) as long as the response, which for a stream is its whole life.
    raw.on('close', () => {
      // A client that left before any answer: nginx's 499 ("client closed request").
      metrics.responded(request.routeOptions.url ?? 'unmatched', raw.headersSent ? raw.statusCode : 499)
    })
    done()
  })
}

/**
 * What the startup line says (README "Logs and metrics"): where the answers come from and with
 * which limits. Only the upstream's host: its URL's path and query may hold a secret (Azure
 * deployments put keys there), and the key is never read here. The Redis is named by its kind
 * only, for the same reason (a password in REDIS_URL).
 */
function startupFields (resolved: ResolvedOptions): Record<string, unknown> {
  const given = resolved.upstream as Partial<UpstreamClientOptions & UpstreamStreamer> | undefined
  const client = given !== undefined && typeof given.stream !== 'function' ? given : undefined
  const redis = resolved.redis as Record<string, unknown> | undefined
  const store = resolved.relay !== undefined || resolved.store !== undefined
    ? 'custom'
    : redis === undefined ? 'memory' : 'cluster' in redis ? 'redis-cluster' : 'sentinels' in redis ? 'redis-sentinel' : 'redis'
  const { maxStreamsPerClient, maxStreams, maxConnectionsPerClient, maxDurationMs } = resolved.limits
  return {
    upstream: client?.url === undefined ? 'custom' : hostOf(client.url),
    model: resolved.defaultModel,
    format: client === undefined ? undefined : client.format ?? 'openai',
    store,
    limits: { maxStreamsPerClient, maxStreams, maxConnectionsPerClient, maxDurationMs }
  }
}

/** The host (and port) of a URL, nothing else; `'invalid'` when it does not parse (the client refuses it next). */
function hostOf (url: string): string {
  try {
    return new URL(url).host
  } catch {
    return 'invalid'
  }
}

/** The upstream given, or an `UpstreamClient` made from options (and closed with the app). */
function makeUpstream (resolved: ResolvedOptions, made: Array<() => Promise<void>>): UpstreamStreamer {
  const given = resolved.upstream as UpstreamStreamer | UpstreamClientOptions
  if (typeof (given as Partial<UpstreamStreamer>).stream === 'function') return given as UpstreamStreamer
  // UpstreamClient checks its own options (a TypeError naming the option and its variable).
  const client = new UpstreamClient(given as UpstreamClientOptions)
  made.push(async () => { await client.close() })
  return client
}

/** A store made from the options: Redis (loaded only then) or memory; closed with the app. */
async function makeStore (resolved: ResolvedOptions, log: StoreLog, made: Array<() => Promise<void>>, metrics: RelayMetrics | undefined): Promise<RelayStore> {
  const { retainMs, maxDurationMs, detachGraceMs } = resolved.limits
  let store: RelayStore
  if (resolved.redis !== undefined) {
    const { RedisStore } = await import('../lib/relay/stores/redis.js')
    store = new RedisStore({
      retainMs,
      // Slots of an instance that died are freed once no generation could still hold them.
      slotTtlMs: maxDurationMs > 0 ? maxDurationMs + detachGraceMs + 60_000 : undefined,
      log,
      // Redis errors other than a lost connection, counted by code.
      onError: (code: string) => metrics?.storeError(code),
      ...resolved.redis
    })
  } else {
    store = new MemoryStore({ retainMs, log })
  }
  made.push(async () => { await store.close() })
  return store
}

/**
 * The relay as a Fastify plugin: `await app.register(llmRelay, { upstream: { url, apiKey } })`.
 * See {@link LlmRelayOptions}.
 */
export const llmRelay = fp(llmRelayPlugin, { name: PLUGIN_NAME, fastify: '5.x' })

export default llmRelay
