import { buildApp } from './app.js'
import { ConfigError, listenFailure, readConfig } from './lib/config.js'

/**
 * The service entry: `npm start`. Listens on HOST:PORT and shuts down gracefully on
 * SIGTERM/SIGINT: readiness turns false, new generations get 503, running ones may finish for
 * SHUTDOWN_GRACE_MS, the rest close with reason `shutdown` (all of it in `app.close()`: the
 * plugin drains before the streams close), then the process exits.
 */
async function main (): Promise<void> {
  let config
  try {
    config = readConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`fastify-llm-relay: ${err.message}`)
      process.exit(1)
    }
    throw err
  }
  const app = await buildApp()
  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    // The metrics listener's own failure comes as a ConfigError naming METRICS_PORT (app.ts).
    const why = err instanceof ConfigError ? err.message : listenFailure(err as NodeJS.ErrnoException, config.port, config.host)
    if (why === undefined) throw err
    console.error(`fastify-llm-relay: ${why}`)
    await app.close()
    process.exit(1)
  }

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    app.log.info({ signal }, 'shutting down')
    app.close().then(() => process.exit(0), (err: unknown) => {
      app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}

await main()
