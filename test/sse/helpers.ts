/** Shared setup of the SSE tests: a real Fastify server on 127.0.0.1, port 0, closed at teardown. */
import http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import ssePlugin from '../../plugins/sse.js'
import type { SsePluginOptions } from '../../plugins/sse.js'
import { SseStream } from '../../lib/sse/index.js'
import type { SseStreamOptions } from '../../lib/sse/index.js'

interface Teardown {
  teardown: (fn: () => unknown) => void
}

/** Builds an app with the SSE plugin, lets `routes` add to it, listens, and closes at teardown. */
export async function startApp (
  t: Teardown,
  routes: (app: FastifyInstance) => void | Promise<void>,
  options: { plugin?: SsePluginOptions, fastify?: FastifyServerOptions, listen?: boolean } = {}
): Promise<{ app: FastifyInstance, url: string }> {
  const app = Fastify(options.fastify ?? {})
  t.teardown(() => app.close())
  await app.register(ssePlugin, options.plugin ?? {})
  await routes(app)
  if (options.listen === false) {
    await app.ready()
    return { app, url: '' }
  }
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, url }
}

/** Resolves when `predicate` holds, polling; rejects after `timeoutMs` (generous: no flaky timing). */
export async function waitFor (predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A stream made by a plain node:http server (no Fastify): what `lib/sse` is on its own. */
export interface RawStreamHandle {
  stream: SseStream
  req: IncomingMessage
  res: ServerResponse
}

/**
 * A node:http server whose every request becomes an `SseStream` with `options`; `next()` yields
 * them in order, so a test drives the server side directly.
 */
export async function startRawServer (t: Teardown, options: SseStreamOptions = {}): Promise<{ url: string, next: () => Promise<RawStreamHandle> }> {
  const made: RawStreamHandle[] = []
  const waiting: Array<(h: RawStreamHandle) => void> = []
  const server = http.createServer((req, res) => {
    const handle = { stream: new SseStream(res, options), req, res }
    const waiter = waiting.shift()
    if (waiter === undefined) made.push(handle)
    else waiter(handle)
  })
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => { resolve() })
  }))
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    next: () => {
      const handle = made.shift()
      return handle === undefined ? new Promise((resolve) => { waiting.push(resolve) }) : Promise.resolve(handle)
    }
  }
}
