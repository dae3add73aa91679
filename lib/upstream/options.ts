import type { UpstreamClientOptions, UpstreamFormat } from './types.js'

/** {@link UpstreamClientOptions} with every default applied and the URL parsed. */
export interface ResolvedOptions {
  url: URL
  apiKey: string | undefined
  model: string
  format: UpstreamFormat
  connectTimeoutMs: number
  headersTimeoutMs: number
  firstTokenTimeoutMs: number
  idleTimeoutMs: number
  totalTimeoutMs: number
  maxRetries: number
  connections: number
  maxEventSize: number
}

const FORMATS: readonly UpstreamFormat[] = ['openai', 'openai-responses', 'anthropic']

/** Option name → the environment variable that feeds it, so a boot error names both. */
const ENV: Record<string, string> = {
  url: 'UPSTREAM_URL',
  apiKey: 'UPSTREAM_API_KEY',
  model: 'UPSTREAM_MODEL',
  format: 'UPSTREAM_FORMAT',
  connectTimeoutMs: 'UPSTREAM_CONNECT_TIMEOUT_MS',
  headersTimeoutMs: 'UPSTREAM_HEADERS_TIMEOUT_MS',
  firstTokenTimeoutMs: 'UPSTREAM_FIRST_TOKEN_TIMEOUT_MS',
  idleTimeoutMs: 'UPSTREAM_IDLE_TIMEOUT_MS',
  totalTimeoutMs: 'STREAM_MAX_DURATION_MS',
  maxRetries: 'UPSTREAM_MAX_RETRIES'
}

/** The endpoint paths the adapters append to the base URL (`RequestShape.path`). */
const ENDPOINT = /\/(chat\/completions|responses|messages)\/*$/

/**
 * When `url` already ends in an endpoint path (`/chat/completions`, `/responses`, `/messages`,
 * with or without a trailing slash): that path and the base URL meant. The client appends the
 * endpoint itself, so such a URL would POST `…/chat/completions/chat/completions`: a 404 from the
 * upstream on every request. `undefined` for a base URL (or one that does not parse).
 */
export function endpointInUrl (text: string): { endpoint: string, base: string } | undefined {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return undefined
  }
  const match = ENDPOINT.exec(url.pathname)
  if (match === null) return undefined
  return { endpoint: `/${match[1] as string}`, base: url.origin + url.pathname.slice(0, match.index) + url.search }
}

/** The boot error for a URL that ends in an endpoint path, naming the fix. */
export function endpointMessage (found: { endpoint: string, base: string }): string {
  return `must be the API's base URL, without the endpoint: it ends in ${found.endpoint}, which the relay appends itself; use ${found.base}`
}

function fail (name: string, rule: string): never {
  const env = ENV[name]
  throw new TypeError(`upstream option ${name}${env === undefined ? '' : ` (${env})`} ${rule}`)
}

function integer (options: UpstreamClientOptions, name: keyof UpstreamClientOptions, fallback: number, min: number): number {
  const value = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    fail(name, min === 0 ? 'must be a non-negative integer' : `must be an integer >= ${min}`)
  }
  return value
}

/**
 * Validates and normalises client options once, at construction. Timer options accept `0` to
 * turn that timer off. Messages name the option and its environment variable.
 */
export function resolveOptions (options: UpstreamClientOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('upstream options must be an object')
  if (typeof options.url !== 'string' || options.url === '') fail('url', 'must be a non-empty string')
  let url: URL
  try {
    url = new URL(options.url)
  } catch {
    fail('url', `must be an absolute URL, got ${JSON.stringify(options.url)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('url', 'must use http: or https:')
  if (url.username !== '' || url.password !== '') fail('url', 'must not carry credentials; use apiKey')
  const endpoint = endpointInUrl(options.url)
  if (endpoint !== undefined) fail('url', endpointMessage(endpoint))
  if (options.apiKey !== undefined && typeof options.apiKey !== 'string') fail('apiKey', 'must be a string')
  if (options.model !== undefined && (typeof options.model !== 'string' || options.model === '')) {
    fail('model', 'must be a non-empty string')
  }
  const format = options.format ?? 'openai'
  if (!FORMATS.includes(format)) fail('format', `must be one of ${FORMATS.join(', ')}`)
  return {
    url,
    apiKey: options.apiKey === '' ? undefined : options.apiKey,
    model: options.model ?? 'gpt-4o-mini',
    format,
    connectTimeoutMs: integer(options, 'connectTimeoutMs', 10_000, 0),
    headersTimeoutMs: integer(options, 'headersTimeoutMs', 30_000, 0),
    firstTokenTimeoutMs: integer(options, 'firstTokenTimeoutMs', 60_000, 0),
    idleTimeoutMs: integer(options, 'idleTimeoutMs', 30_000, 0),
    totalTimeoutMs: integer(options, 'totalTimeoutMs', 0, 0),
    maxRetries: integer(options, 'maxRetries', 2, 0),
    // A streamed answer holds its HTTP/1.1 connection from request to [DONE], so this is the most
    // generations that can run at once: any lower than MAX_STREAMS (10000) and the rest wait in
    // undici's queue for a socket — with 256, the 257th concurrent answer did not start until
    // another ended (bench: 500 streams × 20 tok/s delivered 5.1k of 10k tok/s).
    connections: integer(options, 'connections', 10_000, 1),
    maxEventSize: integer(options, 'maxEventSize', 1_048_576, 1)
  }
}
