/** Validation and defaults of {@link SseOptions}: one place, used by `SseStream` and the plugin. */
import type { SseOptions } from './types.js'

/** The defaults of {@link SseOptions}. */
export const SSE_DEFAULTS = Object.freeze({
  retry: 3000,
  heartbeatMs: 15_000,
  maxBufferedBytes: 1024 * 1024,
  timeoutMs: 0,
  flushHeaders: true,
  fastPath: true
})

/** {@link SseOptions} with every default applied (`retry` may still be `undefined`: none). */
export interface ResolvedSseOptions {
  retry: number | undefined
  heartbeatMs: number
  maxBufferedBytes: number
  timeoutMs: number
  flushHeaders: boolean
  fastPath: boolean
}

/**
 * The longest delay a timer can have: Node runs a `setTimeout`/`setInterval` whose delay is above
 * 2^31-1 ms (about 24.8 days) after 1 ms instead, with a TimeoutOverflowWarning. Every millisecond
 * option here (`retry`, the client's reconnection delay, included) and every `*_MS` setting in
 * `lib/config.ts` refuses larger values.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1

function integerOption (where: string, name: string, value: unknown, min: 0 | 1, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const kind = min === 0 ? 'a non-negative integer' : 'a positive integer'
    const bound = max < Number.MAX_SAFE_INTEGER ? ` no larger than ${max}` : ''
    throw new TypeError(`${where}${name} must be ${kind}${bound} (got ${describe(value)})`)
  }
}

function describe (value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value)
}

/**
 * Checks `options` and applies the defaults. `retry` keeps the caller's explicit `undefined`
 * (no `retry:` line) apart from an absent key (the default, 3000).
 *
 * @param where prefix of error messages, e.g. `'fastify-llm-relay-sse: '`.
 * @throws {TypeError} naming the first invalid option.
 */
export function resolveSseOptions (options: SseOptions = {}, where = ''): ResolvedSseOptions {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`${where}options must be an object (got ${describe(options)})`)
  }
  const hasRetry = Object.hasOwn(options, 'retry')
  const resolved: ResolvedSseOptions = {
    retry: hasRetry ? options.retry : SSE_DEFAULTS.retry,
    heartbeatMs: options.heartbeatMs ?? SSE_DEFAULTS.heartbeatMs,
    maxBufferedBytes: options.maxBufferedBytes ?? SSE_DEFAULTS.maxBufferedBytes,
    timeoutMs: options.timeoutMs ?? SSE_DEFAULTS.timeoutMs,
    flushHeaders: options.flushHeaders ?? SSE_DEFAULTS.flushHeaders,
    fastPath: options.fastPath ?? SSE_DEFAULTS.fastPath
  }
  if (resolved.retry !== undefined) integerOption(where, 'retry', resolved.retry, 0, MAX_TIMER_MS)
  integerOption(where, 'heartbeatMs', resolved.heartbeatMs, 0, MAX_TIMER_MS)
  integerOption(where, 'timeoutMs', resolved.timeoutMs, 0, MAX_TIMER_MS)
  integerOption(where, 'maxBufferedBytes', resolved.maxBufferedBytes, 1)
  for (const name of ['flushHeaders', 'fastPath'] as const) {
    if (typeof resolved[name] !== 'boolean') {
      throw new TypeError(`${where}${name} must be a boolean (got ${describe(resolved[name])})`)
    }
  }
  return resolved
}
