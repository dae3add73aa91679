/**
 * The relay plugin's options, checked once at registration (boot fails with a TypeError naming
 * the first bad one: a bad option would otherwise fail every request, and a stream only once its
 * generation had started upstream), with the defaults applied.
 */
import type { Channels } from '../lib/relay/channels.js'
import type { Relay } from '../lib/relay/relay.js'
import { SSE_DEFAULTS, resolveSseOptions } from '../lib/sse/index.js'
import type { SseOptions } from '../lib/sse/index.js'
import type { AuthorizeChannel } from './channel-routes.js'
import type { StreamObserver } from './relay-http.js'
import type { RelayPluginOptions } from './relay.js'

export const PLUGIN_NAME = 'fastify-llm-relay'

const WHERE = `${PLUGIN_NAME}: `

/** {@link RelayPluginOptions} checked, with the defaults applied. */
export interface ResolvedRelayOptions {
  relay: Relay
  channels: Channels | undefined
  apiKeys: string[]
  publishKeys: string[]
  authorizeChannel: AuthorizeChannel | undefined
  defaultModel: string
  /** Only the SSE options the relay sets: the SSE plugin's own defaults apply to the others. */
  sse: Pick<SseOptions, 'heartbeatMs' | 'retry' | 'maxBufferedBytes'>
  observer: StreamObserver | undefined
}

/**
 * Checks the plugin's options (boot fails with a TypeError naming the first bad one) and applies
 * the defaults. The stream options are checked by the SSE library's own {@link resolveSseOptions}.
 */
export function resolveRelayOptions (options: RelayPluginOptions): ResolvedRelayOptions {
  if (options === null || typeof options !== 'object') throw new TypeError(`${WHERE}options must be an object (got ${describe(options)})`)
  const { relay, channels, authorizeChannel, defaultModel, observer } = options
  if (relay === undefined || relay === null) throw new TypeError(`${WHERE}relay is required: the Relay that runs the generations`)
  requireMethods('relay', 'a Relay', relay, ['start', 'read', 'find', 'findActive', 'cancel'])
  if (channels != null) requireMethods('channels', 'a Channels', channels, ['publish', 'read'])
  if (authorizeChannel != null && typeof authorizeChannel !== 'function') {
    throw new TypeError(`${WHERE}authorizeChannel must be a function (got ${describe(authorizeChannel)})`)
  }
  if (defaultModel != null && (typeof defaultModel !== 'string' || defaultModel.trim() === '')) {
    throw new TypeError(`${WHERE}defaultModel must be a non-empty string (got ${describe(defaultModel)})`)
  }
  if (observer != null) requireMethods('observer', 'a StreamObserver', observer, ['opened', 'closed', 'resumed'])
  const { heartbeatMs, maxBufferedBytes } = resolveSseOptions({ heartbeatMs: options.heartbeatMs, maxBufferedBytes: options.maxBufferedBytes }, WHERE)
  // The SSE option is `retry`; the message names this plugin's `retryMs`.
  const { retry } = resolveSseOptions({ retry: options.retryMs ?? SSE_DEFAULTS.retry }, `${WHERE}retryMs: `)
  return {
    relay,
    channels: channels ?? undefined,
    apiKeys: keyList('apiKeys', options.apiKeys),
    publishKeys: keyList('publishKeys', options.publishKeys),
    authorizeChannel: authorizeChannel ?? undefined,
    defaultModel: defaultModel ?? 'gpt-4o-mini',
    sse: { heartbeatMs, retry, maxBufferedBytes },
    observer: observer ?? undefined
  }
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
