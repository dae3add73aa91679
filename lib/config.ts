import type { RedisConnection, RedisNodeAddress } from './relay/stores/redis/connection.js'
import { MAX_TIMER_MS } from './sse/options.js'
import { endpointInUrl, endpointMessage } from './upstream/options.js'
import type { UpstreamFormat } from './upstream/types.js'

/** The service's configuration, from the environment (README "Configuration"). */
export interface RelayConfig {
  port: number
  host: string
  /** `undefined`: start the embedded mock upstream. */
  upstreamUrl: string | undefined
  upstreamApiKey: string | undefined
  upstreamModel: string
  upstreamFormat: UpstreamFormat
  upstreamConnectTimeoutMs: number
  /** Request sent → response headers (`UPSTREAM_HEADERS_TIMEOUT_MS`); 0 = none. */
  upstreamHeadersTimeoutMs: number
  upstreamFirstTokenTimeoutMs: number
  upstreamIdleTimeoutMs: number
  upstreamMaxRetries: number
  streamMaxDurationMs: number
  heartbeatMs: number
  /** Per-reader byte budget before `slow_consumer` (`MAX_BUFFERED_BYTES`), on top of the kernel's socket buffer. */
  maxBufferedBytes: number
  /** Frames straight to the socket on HTTP/1.1 (`SSE_FAST_PATH`; lib/sse/direct-write.ts). */
  sseFastPath: boolean
  detachGraceMs: number
  retainMs: number
  /** Where the Redis store's Redis is (`REDIS_URL`, or `REDIS_CLUSTER_NODES`, or `REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`; `REDIS_PASSWORD`); `undefined`: the memory store. */
  redis: RedisConnection | undefined
  relayApiKeys: string[]
  relayPublishKeys: string[]
  maxStreamsPerClient: number
  maxStreams: number
  /** Open streams per client, of every kind (`MAX_CONNECTIONS_PER_CLIENT`); 0 = no limit; `undefined`: the plugin's default (twice MAX_STREAMS_PER_CLIENT, at least 16). */
  maxConnectionsPerClient: number | undefined
  maxBodyBytes: number
  /** Fastify's `trustProxy` (`TRUST_PROXY`): unset = trust no proxy headers. */
  trustProxy: string | boolean | undefined
  /** How long running generations may finish on SIGTERM before they are closed (`SHUTDOWN_GRACE_MS`). */
  shutdownGraceMs: number
  /** Longest a client may take to send a whole request, headers and body (`REQUEST_TIMEOUT_MS`); 0 = no limit. */
  requestTimeoutMs: number
  /** Pino level (`LOG_LEVEL`). */
  logLevel: string
  /** Models a request may name (`UPSTREAM_MODELS`); `undefined`: any. */
  upstreamModels: string[] | undefined
  /** Cap on a request's output tokens (`MAX_OUTPUT_TOKENS`); `undefined`: none. */
  maxOutputTokens: number | undefined
  /** A system message put first in every request of the built-in routes (`SYSTEM_PROMPT`). */
  systemPrompt: string | undefined
  /** Most choices (`n`) per request (`MAX_CHOICES`). */
  maxChoices: number
  /** With no token after this long, a stream commits (`COMMIT_AFTER_MS`); 0 = never. */
  commitAfterMs: number
  /** Origins whose pages may call the relay (`CORS_ORIGINS`, normalized); `['*']`: any; empty: no CORS headers. */
  corsOrigins: string[]
  /** Whether those pages may send cookies along (`CORS_CREDENTIALS`). */
  corsCredentials: boolean
  /** Bearer key `/metrics` asks for (`METRICS_KEY`); `undefined`: none. */
  metricsKey: string | undefined
  /** Port of a listener of its own for `/metrics` on HOST (`METRICS_PORT`), which the main port then does not serve; `undefined`: the main port. */
  metricsPort: number | undefined
}

/** A configuration variable has a value the relay cannot use. The message names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

const FORMATS: readonly UpstreamFormat[] = ['openai', 'openai-responses', 'anthropic']
/** pino's levels: another name would end the boot in a stack trace from pino itself. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

/**
 * A `CORS_ORIGINS` entry as browsers send it in `Origin` (`scheme://host[:port]`, lower case,
 * no default port), so it can be compared exactly; `*` stays `*`.
 */
function origin (entry: string): string {
  if (entry === '*') return entry
  let url: URL | undefined
  try {
    url = new URL(entry)
  } catch {}
  // Only an origin: no path, query, fragment or user.
  if (url === undefined || !/^https?:$/.test(url.protocol) || url.href !== `${url.origin}/`) {
    throw new ConfigError(`CORS_ORIGINS entries must be origins like https://app.example.com (scheme, host, optional port; no path), got ${JSON.stringify(entry)}`)
  }
  return url.origin
}

/** Reads and validates the configuration; throws {@link ConfigError} naming the first bad variable. */
export function readConfig (env: Record<string, string | undefined> = process.env): RelayConfig {
  const str = (name: string): string | undefined => {
    const value = env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }
  const int = (name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER, maxText = String(max)): number => {
    const raw = str(name)
    if (raw === undefined) return fallback
    if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got ${JSON.stringify(raw)}`)
    const value = Number(raw)
    if (value < min) throw new ConfigError(`${name} must be at least ${min}, got ${raw}`)
    if (value > max) throw new ConfigError(`${name} must be at most ${maxText}, got ${raw}`)
    return value
  }
  // Every *_MS setting ends up as a timer's delay, and Node runs a timer whose delay is above
  // MAX_TIMER_MS (Node's limit, 2^31-1) after 1 ms instead: a 30-day grace would end at once.
  const ms = (name: string, fallback: number, min = 0): number =>
    int(name, fallback, min, MAX_TIMER_MS, `${MAX_TIMER_MS} ms (about 24.8 days)`)
  const list = (name: string): string[] => (str(name) ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = str(name)?.toLowerCase()
    if (raw === undefined) return fallback
    if (raw !== 'true' && raw !== 'false') throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`)
    return raw === 'true'
  }

  const upstreamUrl = str('UPSTREAM_URL')
  if (upstreamUrl !== undefined && !/^https?:\/\/[^/]/.test(upstreamUrl)) {
    throw new ConfigError(`UPSTREAM_URL must be an http(s) URL, got ${JSON.stringify(upstreamUrl)}`)
  }
  const endpoint = upstreamUrl === undefined ? undefined : endpointInUrl(upstreamUrl)
  if (endpoint !== undefined) throw new ConfigError(`UPSTREAM_URL ${endpointMessage(endpoint)}`)
  const format = str('UPSTREAM_FORMAT') ?? 'openai'
  if (!FORMATS.includes(format as UpstreamFormat)) {
    throw new ConfigError(`UPSTREAM_FORMAT must be one of ${FORMATS.join(', ')}, got ${JSON.stringify(format)}`)
  }
  const redis = readRedis(str)
  const trust = str('TRUST_PROXY')
  const models = list('UPSTREAM_MODELS')
  const model = str('UPSTREAM_MODEL')
  if (models.length > 0 && model !== undefined && !models.includes(model)) {
    throw new ConfigError(`UPSTREAM_MODEL (${JSON.stringify(model)}) must be one of UPSTREAM_MODELS (${models.join(', ')})`)
  }
  const maxOutputTokens = str('MAX_OUTPUT_TOKENS') === undefined ? undefined : int('MAX_OUTPUT_TOKENS', 0, 1)
  const logLevel = (str('LOG_LEVEL') ?? 'info').toLowerCase()
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`)
  }
  const corsOrigins = list('CORS_ORIGINS').map(origin)
  const corsCredentials = bool('CORS_CREDENTIALS', false)
  if (corsCredentials && corsOrigins.includes('*')) {
    throw new ConfigError('CORS_CREDENTIALS=true needs the origins listed in CORS_ORIGINS (browsers refuse credentials with "*")')
  }

  const port = int('PORT', 3000, 0, 65535)
  const metricsPort = str('METRICS_PORT') === undefined ? undefined : int('METRICS_PORT', 0, 1, 65535)
  if (metricsPort !== undefined && metricsPort === port) throw new ConfigError(`METRICS_PORT must differ from PORT (both ${port})`)
  const metricsKey = str('METRICS_KEY')
  if (metricsKey !== undefined && /\s/.test(metricsKey)) throw new ConfigError('METRICS_KEY must be one bearer token, without spaces')

  return {
    port,
    host: str('HOST') ?? '127.0.0.1',
    upstreamUrl: upstreamUrl?.replace(/\/+$/, ''),
    upstreamApiKey: str('UPSTREAM_API_KEY'),
    // With a list of allowed models, a request naming none gets the first.
    upstreamModel: model ?? models[0] ?? 'gpt-4o-mini',
    upstreamFormat: format as UpstreamFormat,
    upstreamConnectTimeoutMs: ms('UPSTREAM_CONNECT_TIMEOUT_MS', 10_000, 1),
    upstreamHeadersTimeoutMs: ms('UPSTREAM_HEADERS_TIMEOUT_MS', 30_000),
    upstreamFirstTokenTimeoutMs: ms('UPSTREAM_FIRST_TOKEN_TIMEOUT_MS', 60_000, 1),
    upstreamIdleTimeoutMs: ms('UPSTREAM_IDLE_TIMEOUT_MS', 30_000, 1),
    upstreamMaxRetries: int('UPSTREAM_MAX_RETRIES', 2, 0, 10),
    streamMaxDurationMs: ms('STREAM_MAX_DURATION_MS', 600_000),
    heartbeatMs: ms('HEARTBEAT_MS', 15_000),
    maxBufferedBytes: int('MAX_BUFFERED_BYTES', 1_048_576, 1),
    sseFastPath: bool('SSE_FAST_PATH', true),
    detachGraceMs: ms('DETACH_GRACE_MS', 15_000),
    retainMs: ms('RETAIN_MS', 300_000, 1),
    redis,
    relayApiKeys: list('RELAY_API_KEYS'),
    relayPublishKeys: list('RELAY_PUBLISH_KEYS'),
    maxStreamsPerClient: int('MAX_STREAMS_PER_CLIENT', 8, 1),
    maxStreams: int('MAX_STREAMS', 10_000, 1),
    maxConnectionsPerClient: str('MAX_CONNECTIONS_PER_CLIENT') === undefined ? undefined : int('MAX_CONNECTIONS_PER_CLIENT', 0, 0),
    maxBodyBytes: int('MAX_BODY_BYTES', 1_048_576, 1),
    trustProxy: trust === undefined ? undefined : trust === 'true' ? true : trust,
    shutdownGraceMs: ms('SHUTDOWN_GRACE_MS', 10_000),
    requestTimeoutMs: ms('REQUEST_TIMEOUT_MS', 60_000),
    upstreamModels: models.length > 0 ? models : undefined,
    maxOutputTokens,
    // Not trimmed: a prompt is text, and its surrounding whitespace is the operator's.
    systemPrompt: env.SYSTEM_PROMPT === undefined || env.SYSTEM_PROMPT.trim() === '' ? undefined : env.SYSTEM_PROMPT,
    maxChoices: int('MAX_CHOICES', 1, 1, 128),
    commitAfterMs: ms('COMMIT_AFTER_MS', 10_000),
    logLevel,
    corsOrigins,
    corsCredentials,
    metricsKey,
    metricsPort
  }
}

/**
 * A listen error the operator fixes with a variable (`PORT`/`METRICS_PORT`, `HOST`), as one line;
 * `undefined` for anything else (a real crash).
 */
export function listenFailure (err: NodeJS.ErrnoException, port: number, host: string, portVariable = 'PORT'): string | undefined {
  switch (err.code) {
    case 'EADDRINUSE': return `port ${port} on ${host} is in use (set ${portVariable})`
    case 'EACCES': return `no permission to listen on port ${port} of ${host} (ports below 1024 need privileges: set ${portVariable})`
    case 'EADDRNOTAVAIL': return `${host} is not an address of this machine (set HOST)`
    case 'ENOTFOUND':
    case 'EAI_AGAIN': return `HOST ${host} does not resolve to an address (set HOST)`
    default: return undefined
  }
}

/** The Redis of the Redis store: one of three deployments, with a password given once. */
function readRedis (str: (name: string) => string | undefined): RedisConnection | undefined {
  const url = str('REDIS_URL')
  const cluster = str('REDIS_CLUSTER_NODES')
  const sentinels = str('REDIS_SENTINELS')
  const name = str('REDIS_SENTINEL_NAME')
  const password = str('REDIS_PASSWORD')
  const given = [['REDIS_URL', url], ['REDIS_CLUSTER_NODES', cluster], ['REDIS_SENTINELS', sentinels]].filter(([, value]) => value !== undefined).map(([variable]) => variable)
  if (given.length > 1) throw new ConfigError(`${given.join(' and ')} are both set: set one (a single Redis, a Cluster, or Sentinels)`)
  if (name !== undefined && sentinels === undefined) throw new ConfigError('REDIS_SENTINEL_NAME is set without REDIS_SENTINELS')
  if (url !== undefined) {
    if (!/^rediss?:\/\/[^/]/.test(url)) throw new ConfigError(`REDIS_URL must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`)
    if (password !== undefined && URL.canParse(url) && new URL(url).password !== '') throw new ConfigError('REDIS_PASSWORD is set and REDIS_URL carries a password too: give it once')
    return { url, password }
  }
  if (cluster !== undefined) return { cluster: nodes('REDIS_CLUSTER_NODES', cluster), password }
  if (sentinels !== undefined) {
    if (name === undefined) throw new ConfigError('REDIS_SENTINELS needs REDIS_SENTINEL_NAME, the name of the master the Sentinels monitor')
    return { sentinels: nodes('REDIS_SENTINELS', sentinels), name, password }
  }
  if (password !== undefined) throw new ConfigError('REDIS_PASSWORD is set but no Redis is (REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS)')
  return undefined
}

/** `host:port,host:port` (an IPv6 host in brackets: `[::1]:6379`). */
function nodes (variable: string, list: string): RedisNodeAddress[] {
  return list.split(',').map((item) => item.trim()).filter((item) => item !== '').map((item) => {
    const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(item)
    const port = Number(match?.[2])
    if (match === null || port < 1 || port > 65535) throw new ConfigError(`${variable} must be comma-separated host:port, got ${JSON.stringify(item)}`)
    return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port }
  })
}
