/**
 * The quick start as a user runs it: `npm start` (it builds, then runs `node dist/server.js`)
 * with no UPSTREAM_URL, so the embedded mock answers. A chat streams to its end, and SIGTERM
 * stops the server cleanly. The other tests run the TypeScript sources; this one is the only
 * run of the compiled output.
 */
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort } from '../fixtures/free-port.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, textOf } from '../fixtures/stack.js'
import { waitUntilOk } from '../fixtures/wait.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

t.test('npm start: builds, serves a chat through the embedded mock, stops on SIGTERM', async (t) => {
  const port = await freePort()
  const env: Record<string, string | undefined> = { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' }
  delete env.UPSTREAM_URL
  delete env.REDIS_URL
  // Its own process group: npm runs the server through a shell, and the signal must reach the server.
  const child = spawn('npm', ['start'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(-(child.pid as number), name)
    } catch {} // already gone
  }
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      signal('SIGKILL')
      await exited
    }
  })

  const url = `http://127.0.0.1:${port}`
  // The build (tsc) comes first: generous on a loaded machine.
  await waitUntilOk(async () => (await fetch(`${url}/readyz`)).status === 200, 120_000, `npm start ready\n${output}`)

  const tokens = Array.from({ length: 20 }, (_, i) => `w${i} `)
  const res = await collectSse(`${url}/v1/chat/stream`, {
    method: 'POST',
    body: { messages: [{ role: 'user', content: 'Hello' }], mock: { tokens, tokenDelayMs: 5, firstTokenDelayMs: 0 } },
    timeoutMs: 10_000
  })
  t.equal(res.status, 200)
  t.equal(textOf(res.events), tokens.join(''), 'the whole answer')
  t.ok(res.events.some((e) => e.data === '[DONE]'), '[DONE]')
  t.equal(closeReason(res.events), 'done', 'then close done')
  t.equal((await fetch(`${url}/`)).status, 200, 'the chat page is served')

  // SIGTERM to the server, as an orchestrator sends it (npm passes its exit code on).
  const server = serverPid(child.pid as number)
  t.ok(server !== undefined, 'the server process runs node dist/server.js')
  process.kill(server as number, 'SIGTERM')
  const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 15_000))])
  t.equal(code, 0, 'SIGTERM: exit 0', { output })
  t.match(output, /shutting down/, 'and says so')
})

/** The pid of `node dist/server.js` in the process group `group` (Linux /proc). */
function serverPid (group: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0')
      // Field 5 of stat is the process group; the command name (field 2) may hold spaces, so count after its ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
      if (pgrp === group && cmdline.includes('dist/server.js')) return Number(name)
    } catch {} // gone meanwhile
  }
  return undefined
}
