/**
 * The mock upstream on its own, for docker-compose, nginx setups and benchmarks:
 * `PORT=3001 HOST=127.0.0.1 node dist/lib/mock/main.js`. Optional pacing:
 * `MOCK_TOKEN_DELAY_MS`, `MOCK_FIRST_TOKEN_DELAY_MS`, `MOCK_JITTER_MS`; `MOCK_QUIET=1` turns the
 * log off.
 */
import { startMockUpstream } from './server.js'
import type { MockScript } from './script.js'

function numberFromEnv (name: string): number | undefined {
  const value = process.env[name]
  if (value === undefined || value === '') return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`mock: ${name} must be a non-negative integer, got ${JSON.stringify(value)}\n`)
    process.exit(1)
  }
  return n
}

const defaults: MockScript = {}
const tokenDelayMs = numberFromEnv('MOCK_TOKEN_DELAY_MS')
const firstTokenDelayMs = numberFromEnv('MOCK_FIRST_TOKEN_DELAY_MS')
const jitterMs = numberFromEnv('MOCK_JITTER_MS')
if (tokenDelayMs !== undefined) defaults.tokenDelayMs = tokenDelayMs
if (firstTokenDelayMs !== undefined) defaults.firstTokenDelayMs = firstTokenDelayMs
if (jitterMs !== undefined) defaults.jitterMs = jitterMs

const mock = await startMockUpstream({
  port: numberFromEnv('PORT') ?? 3001,
  host: process.env.HOST ?? '127.0.0.1',
  defaults,
  log: process.env.MOCK_QUIET !== '1'
})
process.stdout.write(`mock upstream listening on ${mock.url} (POST /chat/completions, /responses, /messages)\n`)

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    mock.close().then(() => process.exit(0), () => process.exit(1))
  })
}
