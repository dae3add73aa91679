/**
 * Cross-origin access for browser pages on other origins (`CORS_ORIGINS`, README "CORS"), with
 * @fastify/cors: `EventSource` and `fetch` from a listed origin may read the streams and call
 * the API; any other origin gets no CORS header at all, so its browser refuses the answer.
 *
 * The headers are set in `onRequest`, before any handler: `reply.sse()` keeps the headers set
 * on the reply before it (plugins/sse.ts), so streams carry them, and so do the JSON errors
 * (`401`, `429`…) a page needs to read.
 *
 * ```ts
 * await app.register(corsPlugin, { origins: ['https://app.example.com'], credentials: false })
 * ```
 */
import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/** Options of {@link corsPlugin}. */
export interface CorsPluginOptions {
  /** Origins as browsers send them (`https://app.example.com`), or `['*']` for any. Empty: the plugin does nothing. */
  origins: readonly string[]
  /**
   * Let listed pages send cookies (`fetch(…, { credentials: 'include' })`,
   * `new EventSource(url, { withCredentials: true })`); not with `*`. Not needed for
   * `Authorization: Bearer`, which a page sets itself.
   * @default false
   */
  credentials?: boolean
}

/** Headers a page's script may read besides the basic ones: the stream's id, how long to wait after a 429. */
const EXPOSED_HEADERS = ['x-stream-id', 'retry-after']
/** Request headers a page may send: the relay key, the JSON body, a resume point. */
const ALLOWED_HEADERS = ['authorization', 'content-type', 'last-event-id']
/** How long a browser may reuse a preflight's answer (seconds): one preflight per endpoint per 10 minutes. */
const PREFLIGHT_MAX_AGE_S = 600

async function cors (app: FastifyInstance, options: CorsPluginOptions): Promise<void> {
  const { origins, credentials = false } = options
  if (origins.length === 0) return
  if (credentials && origins.includes('*')) throw new TypeError('corsPlugin: credentials need listed origins, not "*"')
  const listed = new Set(origins)
  await app.register(fastifyCors, {
    // A function, so an origin that is not listed gets no header at all (with a list,
    // @fastify/cors still sends the expose/credentials headers to everyone).
    origin: listed.has('*') ? '*' : (origin, callback) => { callback(null, origin !== undefined && listed.has(origin) ? origin : false) },
    credentials,
    methods: ['GET', 'HEAD', 'POST', 'DELETE'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_S,
    // An OPTIONS without Access-Control-Request-Method is not refused with a text/plain 400.
    strictPreflight: false
  })
}

/** `fastify-llm-relay-cors`: registers @fastify/cors on the instance it is registered in (not encapsulated). */
export const corsPlugin = fp(cors, { name: 'fastify-llm-relay-cors', fastify: '5.x' })

export default corsPlugin
