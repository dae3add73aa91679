/**
 * A bad setup stops the real server entry (`server.ts`, what `npm start` runs) with one line that
 * says what to fix, and a non-zero exit: never a stack trace, never a server that half runs.
 */
import t from 'tap'
import type { Test } from 'tap'
import { holdPort } from '../fixtures/free-port.js'
import { runRelayProcessToExit } from '../fixtures/relay-process.js'
import type { FinishedRelayProcess } from '../fixtures/relay-process.js'

/** Exited by itself, non-zero, with exactly one line (on stderr) and no stack trace. */
function oneLineFailure (t: Test, result: FinishedRelayProcess): string {
  const output = `${result.stdout}${result.stderr}`
  t.notOk(result.timedOut, `it stopped by itself:\n${output}`)
  t.not(result.code, 0, 'a non-zero exit code')
  t.not(result.code, null, `an exit, not a signal (${String(result.signal)})`)
  t.equal(result.stdout.trim(), '', 'nothing on stdout')
  const lines = result.stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line on stderr:\n${result.stderr}`)
  t.notMatch(output, /^\s+at /m, 'no stack trace')
  return lines[0] ?? ''
}

t.test('LOG_LEVEL=verbose: one line naming the variable and the levels', async (t) => {
  const line = oneLineFailure(t, await runRelayProcessToExit({ LOG_LEVEL: 'verbose' }))
  t.equal(line, 'fastify-llm-relay: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"')
})

t.test('a port in use: one line naming the port and the variable to change', async (t) => {
  const port = await holdPort(t)
  const line = oneLineFailure(t, await runRelayProcessToExit({ PORT: String(port) }))
  t.equal(line, `fastify-llm-relay: port ${port} on 127.0.0.1 is in use (set PORT)`)
})

t.test('a HOST that is no address of this machine: one line naming HOST', async (t) => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never a local address; binding it fails at once, no traffic.
  const line = oneLineFailure(t, await runRelayProcessToExit({ HOST: '192.0.2.1' }))
  t.equal(line, 'fastify-llm-relay: 192.0.2.1 is not an address of this machine (set HOST)')
})

t.test('METRICS_PORT in use: one line naming METRICS_PORT, not PORT', async (t) => {
  const port = await holdPort(t)
  const line = oneLineFailure(t, await runRelayProcessToExit({ PORT: '0', METRICS_PORT: String(port) }))
  t.equal(line, `fastify-llm-relay: port ${port} on 127.0.0.1 is in use (set METRICS_PORT)`)
})

t.test('METRICS_PORT equal to PORT, a METRICS_KEY with a space: one line each', async (t) => {
  t.equal(oneLineFailure(t, await runRelayProcessToExit({ PORT: '3999', METRICS_PORT: '3999' })), 'fastify-llm-relay: METRICS_PORT must differ from PORT (both 3999)')
  t.equal(oneLineFailure(t, await runRelayProcessToExit({ METRICS_KEY: 'two words' })), 'fastify-llm-relay: METRICS_KEY must be one bearer token, without spaces')
})
