import { UpstreamError } from '../upstream/types.js'
import type { UpstreamErrorCode } from '../upstream/types.js'

/** Why a running generation was stopped by the relay (not by the upstream). */
export type StopReason = 'cancelled' | 'superseded' | 'abandoned' | 'timeout' | 'shutdown'

/**
 * Every code of a relay error answer (`{"error":{"code","message"}}`) or `error` event. Callers
 * switch on it, never on the message.
 */
export type RelayErrorCode =
  /** The upstream's failures, with the status a client sees (see {@link UpstreamErrorCode}). */
  | UpstreamErrorCode
  /** A generation stopped before its first event (409, 503 for `shutdown`, 504 for `timeout`). */
  | StopReason
  /** No credentials, or wrong ones (401), or the identity is refused (403). */
  | 'unauthorized'
  | 'forbidden'
  /** Unknown route, stream, conversation or channel (or not the caller's: the same answer). */
  | 'not_found'
  /** A known path with another method (405, with `Allow`). */
  | 'method_not_allowed'
  /** A body or parameter the relay cannot take (400), naming what is wrong. */
  | 'invalid_request'
  | 'invalid_json'
  | 'invalid_last_event_id'
  | 'invalid_url'
  /** A model the operator did not allow (400, naming the allowed ones). */
  | 'model_not_allowed'
  | 'body_too_large'
  | 'uri_too_long'
  | 'unsupported_media_type'
  /** Publishing to channels over HTTP is off (no publish keys). */
  | 'publishing_disabled'
  /** The per-client limit (429) and the per-instance limit (503). */
  | 'too_many_streams'
  /** The per-client limit on open streams of every kind (429). */
  | 'too_many_connections'
  | 'server_busy'
  | 'shutting_down'
  /** The store (Redis) cannot serve, or is full, or could no longer read a journal (the reader may resume). */
  | 'store_unavailable'
  | 'store_error'
  | 'store_full'
  /** The answer outgrew the journal's size limit. */
  | 'answer_too_large'
  /** An instance producing a generation read elsewhere went away. */
  | 'producer_lost'
  | 'internal'

/** Errors the relay answers with as JSON `{"error":{"code","message"}}` and a status. */
export class RelayError extends Error {
  override readonly name = 'RelayError'
  readonly code: RelayErrorCode
  readonly status: number
  /** Seconds, for `retry-after`. */
  readonly retryAfter: number | undefined

  constructor (code: RelayErrorCode, status: number, message: string, retryAfter?: number) {
    super(message)
    this.code = code
    this.status = status
    this.retryAfter = retryAfter
  }

  /**
   * The relay error a failure becomes: relay errors as they are, an upstream failure with its
   * code, status and `retry-after`, anything else `internal` (500) without its message.
   */
  static from (err: unknown): RelayError {
    if (err instanceof RelayError) return err
    if (err instanceof UpstreamError) return new RelayError(err.code, err.status, err.message, err.retryAfter)
    return new RelayError('internal', 500, 'internal error')
  }
}

/** A generation stopped before its first token: the waiting request gets 409 (503 for shutdown, 504 for timeout). */
export class GenerationStopped extends RelayError {
  readonly reason: StopReason

  constructor (reason: StopReason) {
    const status = reason === 'shutdown' ? 503 : reason === 'timeout' ? 504 : 409
    super(reason, status, `the generation was ${reason === 'timeout' ? 'timed out' : reason} before its first token`)
    this.reason = reason
  }
}

/** The store cannot take more events (memory cap, or a closed channel). */
export class StoreFullError extends RelayError {
  constructor (message: string) {
    super('store_full', 503, message, 1)
  }
}
