import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { RelayError } from '../lib/relay/errors.js'

/**
 * Who owns what a request starts, reads or stops: the application's own authentication (a
 * session cookie, a JWT, an API key) turned into an owner string. Streams and conversations
 * belong to their owner: another owner gets `404` for them. Return `null` for "anyone with the
 * stream id" (an open relay: the 128-bit id is then the capability).
 *
 * To refuse a request, throw: an error with a 4xx `statusCode` (or `status`) is answered with that
 * status in the relay's error shape (`401` `unauthorized`, `403` `forbidden`, …); any other error
 * is a `401`. The message is passed on, so keep secrets out of it.
 */
export type Identify = (request: FastifyRequest) => string | null | Promise<string | null>

/** Keys are compared by digest: the key itself is never kept where a log could reach it. */
export function keyId (key: string): string {
  return `key:${createHash('sha256').update(key).digest('base64url').slice(0, 22)}`
}

/** The bearer token of a request, if any. The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`. */
export function bearerOf (request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (header === undefined || !/^bearer /i.test(header)) return undefined
  const token = header.slice(7).trim()
  return token === '' ? undefined : token
}

/**
 * {@link Identify} by bearer keys (`RELAY_API_KEYS`): a request must carry one of `keys` as
 * `Authorization: Bearer …`, and owns what it starts under the key's digest (never the key).
 */
export function bearerKeys (keys: readonly string[]): Identify {
  const ids = new Set(keys.map(keyId))
  return (request) => {
    const token = bearerOf(request)
    const id = token === undefined ? undefined : keyId(token)
    if (id === undefined || !ids.has(id)) {
      throw new RelayError('unauthorized', 401, token === undefined ? 'missing bearer token' : 'invalid bearer token')
    }
    return id
  }
}

/**
 * Runs `identify` and maps a refusal to a {@link RelayError}: the relay's error shape whatever
 * the application's auth plugin throws (`@fastify/jwt`'s errors carry a `statusCode`).
 */
export async function ownerOf (identify: Identify, request: FastifyRequest): Promise<string | null> {
  let owner: string | null
  try {
    owner = await identify(request)
  } catch (err) {
    throw refusal(err)
  }
  if (owner !== null && (typeof owner !== 'string' || owner === '')) {
    throw new TypeError(`identify() must return a non-empty string or null (got ${owner === '' ? 'an empty string' : typeof owner})`)
  }
  return owner
}

function refusal (err: unknown): RelayError {
  if (err instanceof RelayError) return err
  const e = (err ?? {}) as { statusCode?: unknown, status?: unknown, message?: unknown }
  const given = typeof e.statusCode === 'number' ? e.statusCode : e.status
  const status = typeof given === 'number' && given >= 400 && given < 500 ? given : 401
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : 'not authenticated'
  return new RelayError(status === 403 ? 'forbidden' : status === 401 ? 'unauthorized' : 'invalid_request', status, message)
}
