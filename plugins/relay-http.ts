import type { FastifyReply, FastifyRequest } from 'fastify'
import { RelayError } from '../lib/relay/errors.js'
import type { ResumeVia } from '../lib/relay/metrics.js'
import type { EndReason, JournalEntry, JournalListener, Unsubscribe } from '../lib/relay/journal.js'
import type { SseOptions } from '../lib/sse/types.js'
import type { SseStream } from '../lib/sse/stream.js'
import { LazyChildLogger } from './lazy-logger.js'

/** Counts downstream streams (the relay's metrics). */
export interface StreamObserver {
  opened: () => void
  closed: (reason: string) => void
  /** A reader resumed or re-attached, and by which route. */
  resumed: (via: ResumeVia) => void
}

/** What the relay's routes share: the SSE options of every stream, and its metrics. */
export interface StreamSettings {
  sse: SseOptions
  observer: StreamObserver | undefined
}

/**
 * Seconds a `429` asks the client to wait when nobody said how long (an upstream 429 without
 * `retry-after`, an in-band rate-limit error): the contract's 429 always carries the header, and
 * the relay's own limits say the same.
 */
const DEFAULT_RETRY_AFTER_S = 1

/** The JSON error shape of the contract, `{"error":{"code","message"}}`, with `retry-after` when known (always on a 429). */
export function sendError (reply: FastifyReply, err: Error): FastifyReply {
  const e = err as Partial<RelayError>
  const status = typeof e.status === 'number' ? e.status : 500
  const code = typeof e.code === 'string' ? e.code : 'internal'
  const retryAfter = e.retryAfter ?? (status === 429 ? DEFAULT_RETRY_AFTER_S : undefined)
  if (retryAfter !== undefined) reply.header('retry-after', String(Math.max(0, Math.ceil(retryAfter))))
  return reply.code(status).type('application/json; charset=utf-8').send({ error: { code, message: err.message } })
}

/** Fastify's own 4xx (body parsing) as relay errors, with stable codes and a message that says what to send. */
export function clientError (code: string | undefined, status: number, message: string, contentType: string | undefined): RelayError {
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new RelayError('body_too_large', status, message)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new RelayError('unsupported_media_type', status, `the body must be application/json (got ${contentType === undefined ? 'no content-type' : JSON.stringify(contentType.split(';', 1)[0]?.trim())})`)
    case 'FST_ERR_CTP_INVALID_JSON_BODY': return new RelayError('invalid_json', status, message)
    default: return new RelayError(status === 404 ? 'not_found' : 'invalid_request', status, message)
  }
}

/**
 * Every log line about a stream carries its id, including the SSE plugin's own. The child logger
 * is made on the first line logged at an enabled level, not per request.
 */
export function tagLogs (request: FastifyRequest, reply: FastifyReply, fields: Record<string, string>): void {
  const log = new LazyChildLogger(request.log, fields)
  request.log = log
  reply.log = log
}

/** Writes journal entries as relay-format frames (each entry's made once, see `JournalEntry.frame`), and the end as `close`. */
export function sseListener (stream: SseStream): JournalListener {
  return {
    onEntries (entries: readonly JournalEntry[]) {
      for (const entry of entries) if (!stream.writeFrame(entry.frame)) return
    },
    onEnd (reason: EndReason) {
      // The producing instance died, or the store failed this reader: the journal has no error
      // entry for it, so the reader says why.
      if (reason === 'producer_lost') void stream.error({ code: 'producer_lost', message: 'the instance producing this answer went away' })
      else if (reason === 'store_error') void stream.error({ code: 'store_error', message: 'the relay\'s store failed while reading this stream; resume it with Last-Event-ID' })
      else void stream.close(reason)
    }
  }
}

/** Ends a journal subscription with its stream, counts the stream, and logs a slow reader being dropped. */
export function unsubscribeOnClose (request: FastifyRequest, stream: SseStream, unsubscribe: Unsubscribe, observer: StreamObserver | undefined): void {
  observer?.opened()
  stream.onClose((reason) => {
    unsubscribe()
    observer?.closed(reason)
    // (A client leaving is logged at info by the SSE plugin, with the ids from tagLogs.)
    if (reason === 'slow_consumer') request.log.warn('slow reader dropped')
  })
}
