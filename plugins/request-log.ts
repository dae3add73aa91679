/**
 * What a log line may say about a request: its URL without the query string, because a query
 * can carry anything (a key sent by mistake as `?api_key=…` would land in the log). Only the
 * parameters the relay itself defines and that hold no secret are kept: `lastEventId` with a
 * number (README "Endpoints").
 *
 * ```ts
 * Fastify({ logger: { serializers: { req: serializeRequest } }, logController: new RequestLogController() })
 * ```
 */
import { LogController } from 'fastify'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** Query parameters a log line keeps, each with the only shape of value it keeps. */
const SAFE_PARAMS: ReadonlyMap<string, RegExp> = new Map([['lastEventId', /^\d{1,20}$/]])

/** `url` with only the {@link SAFE_PARAMS} of its query string (`/v1/x?lastEventId=5&api_key=k` → `/v1/x?lastEventId=5`). */
export function loggableUrl (url: string): string {
  const q = url.indexOf('?')
  if (q === -1) return url
  const kept = url.slice(q + 1).split('&').filter((pair) => {
    const eq = pair.indexOf('=')
    const shape = eq === -1 ? undefined : SAFE_PARAMS.get(pair.slice(0, eq))
    return shape?.test(pair.slice(eq + 1)) === true
  })
  return kept.length === 0 ? url.slice(0, q) : `${url.slice(0, q)}?${kept.join('&')}`
}

/** The `req` of Fastify's log lines ("incoming request", errors), with {@link loggableUrl}. */
export function serializeRequest (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: loggableUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}

/** Fastify's own request log lines, of which one (a route not found) writes the URL as text. */
export class RequestLogController extends LogController {
  override routeNotFound (request: FastifyRequest, _reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return
    request.log.info(`Route ${request.method}:${loggableUrl(request.url)} not found`)
  }
}
