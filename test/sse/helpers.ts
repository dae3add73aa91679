/** Shared setup of the SSE tests: a real Fastify server on 127.0.0.1, port 0, closed at teardown. */
import Fastify from 'fastify'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import ssePlugin from '../../plugins/sse.js'
import type { SsePluginOptions } from '../../plugins/sse.js'

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
