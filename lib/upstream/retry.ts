import type { UpstreamError } from './types.js'

/** First backoff ceiling; doubles per retry (full jitter, as in AWS's "Exponential Backoff And Jitter"). */
export const BACKOFF_BASE_MS = 250
/** Backoff ceiling, whatever the retry number. */
export const BACKOFF_MAX_MS = 4000
/**
 * Longest `retry-after` the client waits out itself. A longer one is passed to the caller (the
 * relay answers 429 with that `retry-after`): holding a user's request for a minute is worse
 * than telling them when to come back.
 */
export const RETRY_AFTER_CAP_S = 10

/**
 * Longest `retry-after` passed on to a client (README "The wire format"): one hour. An upstream
 * that asks for longer (a 400-digit number, a date in 2099) is broken or means "not today";
 * either way a client is better served by coming back in an hour than by a figure of decades.
 */
export const RETRY_AFTER_MAX_S = 3600

/**
 * A `retry-after` a client can use: whole seconds from 0 to {@link RETRY_AFTER_MAX_S} (a larger
 * figure is clamped to it), or `undefined` for what is not a finite number (NaN, Infinity).
 */
export function saneRetryAfter (seconds: number | undefined): number | undefined {
  if (seconds === undefined || !Number.isFinite(seconds)) return undefined
  return Math.min(RETRY_AFTER_MAX_S, Math.max(0, Math.ceil(seconds)))
}

/**
 * How long to wait before retry number `retry` (0-based) after `error`, or `undefined` when the
 * upstream asked for a longer pause than {@link RETRY_AFTER_CAP_S}.
 */
export function retryDelay (retry: number, error: UpstreamError, random: () => number = Math.random): number | undefined {
  if (error.retryAfter !== undefined) {
    return error.retryAfter > RETRY_AFTER_CAP_S ? undefined : error.retryAfter * 1000
  }
  return Math.floor(random() * Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** retry))
}

/** Waits `ms`, or throws `reason` as soon as `signal` aborts. */
export function sleep (ms: number, signal: AbortSignal, reason: () => unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(reason())
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(reason())
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
