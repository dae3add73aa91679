import { createHash } from 'node:crypto'
import type { Usage } from './answer.js'
import type { EndReason } from './journal.js'

/** How one generation went: what its log line says and what the metrics count when it ends. */
export interface GenerationSummary {
  streamId: string
  /** The owner as the relay keeps it (a key digest, or the application's string); `null` when open. Never logged as is: see {@link ownerDigest}. */
  owner: string | null
  /** The model asked of the upstream (the client's default filled in), or `'unknown'` for an upstream that does not say. */
  model: string
  reason: EndReason
  /** Set when `reason` is `error`. */
  errorCode: string | undefined
  /** HTTP status of the upstream's last response; `undefined` when none came (DNS, connect failure) or the upstream does not say. */
  upstreamStatus: number | undefined
  /** Upstream attempts (1 + retries); 0 when none was made (stopped before, or an upstream that does not say). */
  attempts: number
  /** Generation start to its first event, in ms; `undefined` when none came. */
  ttftMs: number | undefined
  durationMs: number
  /** The upstream's content tokens: answer text pieces (`delta` events). */
  tokens: number
  /** The upstream's usage, or an estimate (`usageEstimated`). */
  usage: Usage
  usageEstimated: boolean
}

/** Where a generation reports (the relay's log). */
export type ReportLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void

/**
 * A short digest of an owner for log lines (12 base64url characters of SHA-256): lines of one
 * owner can be grouped, while neither a key nor an application's user id ever reaches a log.
 * `null` (an open relay) stays `null`.
 */
export function ownerDigest (owner: string | null): string | null {
  return owner === null ? null : createHash('sha256').update(owner).digest('base64url').slice(0, 12)
}

/** The one info line per finished generation (README "Logs and metrics"). */
export function logFinished (log: ReportLog, summary: GenerationSummary): void {
  const { usage } = summary
  log('info', 'generation finished', {
    streamId: summary.streamId,
    owner: ownerDigest(summary.owner),
    model: summary.model,
    reason: summary.reason,
    errorCode: summary.errorCode,
    upstreamStatus: summary.upstreamStatus,
    attempts: summary.attempts,
    ttftMs: summary.ttftMs === undefined ? undefined : Math.round(summary.ttftMs),
    tokens: summary.tokens,
    promptTokens: usage.prompt_tokens,
    completionTokens: usage.completion_tokens,
    reasoningTokens: usage.reasoning_tokens,
    usageEstimated: summary.usageEstimated,
    durationMs: Math.round(summary.durationMs)
  })
}

/**
 * The warn line of a generation the upstream failed (after its retries): the relay's error code,
 * the upstream's HTTP status when one came, the network error code when none did (`ENOTFOUND`,
 * `ECONNRESET`), and the message (already cleaned of the upstream key by the upstream client).
 */
export function logUpstreamFailure (log: ReportLog, fields: { streamId: string, code: string, message: string, upstreamStatus: number | undefined, attempts: number, cause: unknown }): void {
  const causeCode = (fields.cause as { code?: unknown } | null | undefined)?.code
  log('warn', 'upstream failed', {
    streamId: fields.streamId,
    code: fields.code,
    upstreamStatus: fields.upstreamStatus,
    networkCode: typeof causeCode === 'string' ? causeCode : undefined,
    attempts: fields.attempts,
    message: fields.message
  })
}
