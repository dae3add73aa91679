/** Errors the relay answers with as JSON `{"error":{"code","message"}}` and a status. */
export class RelayError extends Error {
  override readonly name = 'RelayError'
  readonly code: string
  readonly status: number
  /** Seconds, for `retry-after`. */
  readonly retryAfter: number | undefined

  constructor (code: string, status: number, message: string, retryAfter?: number) {
    super(message)
    this.code = code
    this.status = status
    this.retryAfter = retryAfter
  }
}

/** Why a running generation was stopped by the relay (not by the upstream). */
export type StopReason = 'cancelled' | 'superseded' | 'abandoned' | 'timeout' | 'shutdown'

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
