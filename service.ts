/**
 * `fastify-llm-relay/service`: the ready-to-run service (what `npm start` runs) — the plugin
 * configured from the environment, the chat page, the demos, health, readiness and metrics.
 *
 * ```ts
 * import { buildApp } from 'fastify-llm-relay/service'
 * const app = await buildApp()
 * await app.listen({ port: 3000 })
 * ```
 *
 * @packageDocumentation
 */
export { buildApp } from './app.js'
export type { AppOptions } from './app.js'
export { readConfig, ConfigError } from './lib/config.js'
export type { RelayConfig } from './lib/config.js'
