/**
 * The plugin's options ({@link LlmRelayOptions}), checked once at registration — boot fails with
 * a TypeError naming the first bad one: a bad option would otherwise fail every request, and a
 * stream only once its generation had started upstream — with the defaults applied.
 */
import type { FastifyRequest } from 'fastify'
import type { Channels } from '../lib/relay/channels.js'
import type { RelayHooks, UpstreamStreamer } from '../lib/relay/generation.js'
import type { RelayMetrics } from '../lib/relay/metrics.js'
import type { Relay } from '../lib/relay/relay.js'
import type { RequestPolicy } from '../lib/relay/request-policy.js'
import type { RelayStore } from '../lib/relay/store.js'
import type { RedisStoreOptions } from '../lib/relay/stores/redis.js'
import { SSE_DEFAULTS, MAX_TIMER_MS, resolveSseOptions } from '../lib/sse/options.js'
import type { SseOptions } from '../lib/sse/types.js'
import type { ChatRequestBody, UpstreamClientOptions } from '../lib/upstream/types.js'
import type { AuthorizeChannel } from './channel-routes.js'
import { bearerKeys } from './identify.js'
import type { Identify } from './identify.js'
import type { StreamObserver } from './relay-http.js'

export const PLUGIN_NAME = 'fastify-llm-relay'

const WHERE = `${PLUGIN_NAME}: `

/**
 * Rewrites (or refuses) the upstream body of a request to the built-in start routes, after the
 * operator's policy (`models`, `maxOutputTokens`, `systemPrompt`, `maxChoices`) was applied:
 * return the body to send (or nothing, to send it as it is); throw an error with a 4xx
 * `statusCode` to refuse (answered in the relay's error shape; use {@link RelayError} for a code
 * of your own choosing). Runs before the limits, so a refused request costs no slot.
 */
export type PrepareRequest = (request: FastifyRequest, body: ChatRequestBody) => ChatRequestBody | undefined | Promise<ChatRequestBody | undefined>

/** Which built-in routes are served, and under which prefix. */
export interface RouteOptions {
  /** Where the routes live. @default '/v1' */
  prefix?: string
  /**
   * The start routes, whose body the client writes (within the operator's policy):
   * `POST /chat/stream`, `POST /chat`. Off for an application that starts every generation from
   * its own routes with `reply.relay()`. @default true
   */
  start?: boolean
  /** Resume, attach and stop: `GET`/`DELETE /chat/stream/:id`, `GET /conversations/:id/stream`. @default true */
  streams?: boolean
  /** `POST /chat/completions`, OpenAI-compatible. @default true */
  completions?: boolean
  /** `GET /models`, OpenAI's list shape. @default true */
  models?: boolean
  /** `GET /channels/:channel/stream`, `POST /channels/:channel/events`. @default true */
  channels?: boolean
}

/**
 * Options of the `fastify-llm-relay` plugin. Everything not given is made by the plugin (and
 * closed by it when the app closes); everything given is used as is and left for the
 * application to close.
 */
export interface LlmRelayOptions {
  /**
   * The upstream: options to make an `UpstreamClient` from (`url`, `apiKey`, `model`, `format`,
   * timeouts), or an `UpstreamClient` (or any {@link UpstreamStreamer}) to use. Required unless
   * `relay` is given.
   */
  upstream?: UpstreamClientOptions | UpstreamStreamer
  /** Where journals, conversations and limits live. @default a MemoryStore (or a RedisStore with `redis`) */
  store?: RelayStore
  /**
   * A Redis URL (`redis://…`, `rediss://…`) or `RedisStore` options (`{ url }`, `{ cluster: nodes }`,
   * `{ sentinels, name }`, with tuning): the plugin makes a RedisStore (loaded only then).
   */
  redis?: string | RedisStoreOptions
  /** A Relay core to use as is (it brings its upstream, store, hooks and limits). */
  relay?: Relay
  /** Channels for application events (`app.channels`): given, made on the store (`true`), or none (`false`). @default true */
  channels?: Channels | boolean
  /** The Prometheus metrics (`app.relayMetrics`): given, made (`true`), or none (`false`). @default true */
  metrics?: RelayMetrics | boolean
  /** Application hooks: persist answers (`onFinish`), … */
  hooks?: RelayHooks

  /** Concurrent generations per owner (or per address when anonymous); over it: 429. @default 8 */
  maxStreamsPerClient?: number
  /** Concurrent generations on this instance; over it: 503. @default 10000 */
  maxStreams?: number
  /**
   * Open connections of the streaming routes per client on this instance (generation streams,
   * resumes, channels, and any route with `config: { sseConnection: true }`); over it: 429; 0 = no limit.
   * @default twice `maxStreamsPerClient`, at least 16 (each generation's stream and a resume of it, so
   * raising the generation limit never leaves it out of reach)
   */
  maxConnectionsPerClient?: number
  /** A generation is closed with reason `timeout` after this; 0 = never. @default 600000 */
  maxDurationMs?: number
  /** How long a generation runs with no reader before its upstream is aborted. @default 15000 */
  detachGraceMs?: number
  /** How long a finished generation stays replayable (stores the plugin makes). @default 300000 */
  retainMs?: number
  /** With no token after this long, a stream commits (200, heartbeats); 0 = never. @default 10000 */
  commitAfterMs?: number
  /** On close, how long running generations may finish before they end with `shutdown`. @default 10000 */
  shutdownGraceMs?: number

  /** Who owns a request's streams; throws to refuse it. @default everyone is anonymous (`null`), or `apiKeys` */
  identify?: Identify
  /** Bearer keys (`RELAY_API_KEYS`): shorthand for `identify: bearerKeys(apiKeys)`. */
  apiKeys?: string[]
  /** Bearer keys that may publish to channels over HTTP (`RELAY_PUBLISH_KEYS`). @default [] (publishing over HTTP is off) */
  publishKeys?: string[]
  /** Who may read which channel; denied readers get 404. @default everyone identified */
  authorizeChannel?: AuthorizeChannel
  /** Rewrites or refuses the built-in start routes' upstream bodies (after the policy below). */
  prepareRequest?: PrepareRequest
  /** Models a request may name (`UPSTREAM_MODELS`); listed by `GET /v1/models`. @default any */
  models?: string[]
  /** Cap on a request's output tokens (`MAX_OUTPUT_TOKENS`), filled in when absent. @default none */
  maxOutputTokens?: number
  /** A system message put first in every request of the built-in routes (`SYSTEM_PROMPT`). */
  systemPrompt?: string
  /** Most choices (`n`) a request may ask for. @default 1 */
  maxChoices?: number
  /** Model named in OpenAI-format answers when the request names none (the upstream's default model). @default 'gpt-4o-mini' */
  defaultModel?: string

  /** The built-in routes: which, and where; `false` for none (only `reply.relay()`). @default all, under '/v1' */
  routes?: RouteOptions | false
  /** `: ping` interval on every stream. @default 15000 */
  heartbeatMs?: number
  /** The `retry:` sent first on every relay-format stream, in ms. @default 3000 */
  retryMs?: number
  /** Per-reader byte budget before `slow_consumer`. @default 1048576 */
  maxBufferedBytes?: number
  /** HTTP/1.1 frames straight to the socket (the `fastPath` SSE option). @default true */
  fastPath?: boolean
  /** Counts downstream streams (opened, closed by reason, resumed); the metrics do by default. */
  observer?: StreamObserver
}

/** The routes with every default applied. */
export interface ResolvedRoutes {
  prefix: string
  start: boolean
  streams: boolean
  completions: boolean
  models: boolean
  channels: boolean
}

/** {@link LlmRelayOptions} checked, with the defaults applied. */
export interface ResolvedOptions {
  upstream: UpstreamClientOptions | UpstreamStreamer | undefined
  store: RelayStore | undefined
  redis: RedisStoreOptions | undefined
  relay: Relay | undefined
  channels: Channels | boolean
  metrics: RelayMetrics | boolean
  hooks: RelayHooks | undefined
  limits: {
    maxStreamsPerClient: number
    maxStreams: number
    maxConnectionsPerClient: number
    maxDurationMs: number
    detachGraceMs: number
    retainMs: number
    commitAfterMs: number
  }
  shutdownGraceMs: number
  identify: Identify | undefined
  publishKeys: string[]
  authorizeChannel: AuthorizeChannel | undefined
  prepareRequest: PrepareRequest | undefined
  policy: RequestPolicy
  defaultModel: string
  routes: ResolvedRoutes | false
  /** Only the SSE options the relay sets: the SSE plugin's own defaults apply to the others. */
  sse: Pick<SseOptions, 'heartbeatMs' | 'retry' | 'maxBufferedBytes' | 'fastPath'>
  observer: StreamObserver | undefined
}

/**
 * Checks the plugin's options (boot fails with a TypeError naming the first bad one) and applies
 * the defaults. The stream options are checked by the SSE library's own {@link resolveSseOptions}.
 */
export function resolveOptions (options: LlmRelayOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError(`${WHERE}options must be an object (got ${describe(options)})`)
  const { relay, upstream, store, channels, metrics, observer } = options
  if (relay != null) {
    requireMethods('relay', 'a Relay', relay, ['start', 'read', 'find', 'findActive', 'cancel', 'awaitCommit', 'shutdown'])
    for (const part of ['upstream', 'store', 'redis', 'hooks'] as const) {
      if (options[part] != null) throw new TypeError(`${WHERE}${part} cannot be given with relay: the Relay brings its own`)
    }
  } else if (upstream == null) {
    throw new TypeError(`${WHERE}upstream is required: { url, apiKey?, model?, … } or an UpstreamClient (or pass a relay)`)
  } else if (typeof (upstream as Partial<UpstreamStreamer>).stream !== 'function' &&
    typeof (upstream as Partial<UpstreamClientOptions>).url !== 'string') {
    throw new TypeError(`${WHERE}upstream must be UpstreamClient options with a url, or an UpstreamClient (got ${describe(upstream)})`)
  }
  if (store != null) requireMethods('store', 'a RelayStore', store, ['create', 'append', 'subscribe', 'state', 'close'])
  if (store != null && options.redis != null) throw new TypeError(`${WHERE}store and redis cannot both be given`)
  if (channels != null && typeof channels !== 'boolean') requireMethods('channels', 'a Channels', channels, ['publish', 'read'])
  if (metrics != null && typeof metrics !== 'boolean') requireMethods('metrics', 'a RelayMetrics', metrics, ['opened', 'closed', 'resumed', 'ended'])
  if (observer != null) requireMethods('observer', 'a StreamObserver', observer, ['opened', 'closed', 'resumed'])
  for (const fn of ['identify', 'authorizeChannel', 'prepareRequest'] as const) {
    if (options[fn] != null && typeof options[fn] !== 'function') throw new TypeError(`${WHERE}${fn} must be a function (got ${describe(options[fn])})`)
  }
  if (options.hooks != null && typeof options.hooks !== 'object') throw new TypeError(`${WHERE}hooks must be an object (got ${describe(options.hooks)})`)
  const apiKeys = keyList('apiKeys', options.apiKeys)
  if (apiKeys.length > 0 && options.identify != null) throw new TypeError(`${WHERE}apiKeys and identify cannot both be given: apiKeys is one identify (bearerKeys)`)
  const defaultModel = nonEmpty('defaultModel', options.defaultModel) ??
    (upstream != null && typeof (upstream as UpstreamClientOptions).model === 'string' ? (upstream as UpstreamClientOptions).model : undefined) ??
    'gpt-4o-mini'
  const models = options.models == null ? undefined : stringList('models', options.models)
  const systemPrompt = options.systemPrompt == null ? undefined : nonEmpty('systemPrompt', options.systemPrompt)
  const { heartbeatMs, maxBufferedBytes, fastPath } = resolveSseOptions({ heartbeatMs: options.heartbeatMs, maxBufferedBytes: options.maxBufferedBytes, fastPath: options.fastPath }, WHERE)
  // The SSE option is `retry`; the message names this plugin's `retryMs`.
  const { retry } = resolveSseOptions({ retry: options.retryMs ?? SSE_DEFAULTS.retry }, `${WHERE}retryMs: `)
  const maxStreamsPerClient = whole('maxStreamsPerClient', options.maxStreamsPerClient, 8, 1)
  return {
    upstream: upstream ?? undefined,
    store: store ?? undefined,
    redis: typeof options.redis === 'string' ? { url: options.redis } : options.redis ?? undefined,
    relay: relay ?? undefined,
    channels: channels ?? true,
    metrics: metrics ?? true,
    hooks: options.hooks ?? undefined,
    limits: {
      maxStreamsPerClient,
      maxStreams: whole('maxStreams', options.maxStreams, 10_000, 1),
      maxConnectionsPerClient: whole('maxConnectionsPerClient', options.maxConnectionsPerClient, Math.max(16, 2 * maxStreamsPerClient), 0),
      maxDurationMs: whole('maxDurationMs', options.maxDurationMs, 600_000, 0, MAX_TIMER_MS),
      detachGraceMs: whole('detachGraceMs', options.detachGraceMs, 15_000, 0, MAX_TIMER_MS),
      retainMs: whole('retainMs', options.retainMs, 300_000, 1, MAX_TIMER_MS),
      commitAfterMs: whole('commitAfterMs', options.commitAfterMs, 10_000, 0, MAX_TIMER_MS)
    },
    shutdownGraceMs: whole('shutdownGraceMs', options.shutdownGraceMs, 10_000, 0, MAX_TIMER_MS),
    identify: options.identify ?? (apiKeys.length > 0 ? bearerKeys(apiKeys) : undefined),
    publishKeys: keyList('publishKeys', options.publishKeys),
    authorizeChannel: options.authorizeChannel ?? undefined,
    prepareRequest: options.prepareRequest ?? undefined,
    policy: {
      models,
      maxOutputTokens: options.maxOutputTokens == null ? undefined : whole('maxOutputTokens', options.maxOutputTokens, 0, 1),
      systemPrompt,
      maxChoices: whole('maxChoices', options.maxChoices, 1, 1, 128)
    },
    defaultModel: models !== undefined && !models.includes(defaultModel) && options.defaultModel == null ? models[0] as string : defaultModel,
    routes: resolveRoutes(options.routes),
    sse: { heartbeatMs, retry, maxBufferedBytes, fastPath },
    observer: observer ?? undefined
  }
}

function resolveRoutes (routes: RouteOptions | false | undefined): ResolvedRoutes | false {
  if (routes === false) return false
  if (routes != null && typeof routes !== 'object') throw new TypeError(`${WHERE}routes must be an object or false (got ${describe(routes)})`)
  const given = routes ?? {}
  const prefix = given.prefix ?? '/v1'
  if (typeof prefix !== 'string' || (prefix !== '' && !/^(\/[A-Za-z0-9._~-]+)+$/.test(prefix))) {
    throw new TypeError(`${WHERE}routes.prefix must be '' or a path like '/v1' (got ${describe(prefix)})`)
  }
  const flag = (name: keyof Omit<RouteOptions, 'prefix'>): boolean => {
    const value = given[name] ?? true
    if (typeof value !== 'boolean') throw new TypeError(`${WHERE}routes.${name} must be a boolean (got ${describe(value)})`)
    return value
  }
  return { prefix, start: flag('start'), streams: flag('streams'), completions: flag('completions'), models: flag('models'), channels: flag('channels') }
}

function whole (name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value == null) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `>= ${min}`
    throw new TypeError(`${WHERE}${name} must be a whole number ${range} (got ${describe(value)})`)
  }
  return value
}

function nonEmpty (name: string, value: unknown): string | undefined {
  if (value == null) return undefined
  if (typeof value !== 'string' || value.trim() === '') throw new TypeError(`${WHERE}${name} must be a non-empty string (got ${describe(value)})`)
  return value
}

function stringList (name: string, value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new TypeError(`${WHERE}${name} must be a non-empty array of strings (got ${describe(value)})`)
  value.forEach((item: unknown, i) => { nonEmpty(`${name}[${i}]`, item) })
  return value as string[]
}

function requireMethods (name: string, what: string, value: unknown, methods: string[]): void {
  const isObject = value !== null && typeof value === 'object'
  const missing = isObject ? methods.filter((m) => typeof (value as Record<string, unknown>)[m] !== 'function') : methods
  if (missing.length > 0) {
    throw new TypeError(`${WHERE}${name} must be ${what} (got ${describe(value)}${isObject ? `, without ${missing.join(', ')}` : ''})`)
  }
}

/** A list of bearer keys: non-empty strings a bearer token can equal (it is trimmed). Keys never appear in messages. */
function keyList (name: string, value: unknown): string[] {
  if (value == null) return []
  if (!Array.isArray(value)) throw new TypeError(`${WHERE}${name} must be an array of strings (got ${typeof value === 'string' ? 'a string' : describe(value)})`)
  value.forEach((key: unknown, i) => {
    if (typeof key !== 'string' || key === '' || key.trim() !== key) {
      const got = typeof key !== 'string' ? describe(key) : key === '' ? 'an empty string' : 'a string with surrounding whitespace'
      throw new TypeError(`${WHERE}${name}[${i}] must be a non-empty string without surrounding whitespace (got ${got})`)
    }
  })
  return value as string[]
}

function describe (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'function') return 'a function'
  if (value !== null && typeof value === 'object') return 'an object'
  return String(value)
}
