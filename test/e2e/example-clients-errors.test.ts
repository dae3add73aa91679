// The example clients (examples/clients/) when things go wrong, as a new user meets it: with no
// relay at the URL, and with a relay that answers an error, each says so in one line (no stack
// trace) and exits non-zero. The URL comes from the argument or from RELAY_URL, and defaults to
// `npm start`'s. Their streaming and resuming are test/e2e/nginx-clients.test.ts.
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort } from '../fixtures/free-port.js'
import { startRelay } from '../fixtures/relay.js'

const examples = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'clients')

/** Each example: its file and how to run it with the given arguments. */
const clients: Record<string, (args: string[]) => [string, string[]]> = {
  'python-requests.py': (args) => ['/usr/bin/python3', [join(examples, 'python-requests.py'), ...args]],
  'node-eventsource.mjs': (args) => [process.execPath, [join(examples, 'node-eventsource.mjs'), ...args]],
  'fetch-event-source.mjs': (args) => [process.execPath, [join(examples, 'fetch-event-source.mjs'), ...args]],
  'openai-sdk.mjs': (args) => [process.execPath, [join(examples, 'openai-sdk.mjs'), ...args]],
  'curl.sh': (args) => ['sh', [join(examples, 'curl.sh'), ...args]],
  'java/RelayClient.java': (args) => ['java', [join(examples, 'java', 'RelayClient.java'), ...args]]
}

interface Run { code: number | null, stdout: string, stderr: string }

async function run ([command, args]: [string, string[]], env: Record<string, string> = {}): Promise<Run> {
  const childEnv: Record<string, string | undefined> = { ...process.env, LC_ALL: 'C.UTF-8', ...env }
  if (env.RELAY_URL === undefined) delete childEnv.RELAY_URL
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString('utf8') })
  child.stderr.on('data', (b: Buffer) => { stderr += b.toString('utf8') })
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** The non-empty lines a user sees, stdout and stderr together. */
const linesOf = (r: Run): string[] => `${r.stdout}\n${r.stderr}`.split('\n').filter((line) => line.trim() !== '')

/** A port nothing listens on (free a moment ago): connecting is refused. */
const closedPort = await freePort()
const nowhere = `http://127.0.0.1:${closedPort}`

t.test('no relay at the URL: one line saying so, non-zero exit', async (t) => {
  const ways = ['the argument', 'RELAY_URL'] as const
  const runs = await Promise.all(Object.entries(clients).flatMap(([name, command]) => ways.map(async (way) => {
    const r = way === 'RELAY_URL' ? await run(command([]), { RELAY_URL: nowhere }) : await run(command([nowhere, 'hi']))
    return [`${name} (URL from ${way})`, r] as const
  })))
  for (const [name, r] of runs) {
    t.test(name, async (t) => {
      t.not(r.code, 0, 'a non-zero exit')
      t.not(r.code, null, 'it ended by itself')
      t.equal(r.stdout, '', 'nothing on stdout')
      const lines = linesOf(r)
      t.equal(lines.length, 1, `one line:\n${r.stderr}`)
      t.match(lines[0], `cannot reach the relay at ${nowhere}`, 'it names the URL it tried')
      t.notMatch(r.stderr, /^\s+at |Traceback|Exception in thread/m, 'no stack trace')
    })
  }
})

t.test('an error answer from the relay: one line with its status, code and message, non-zero exit', async (t) => {
  const relay = await startRelay({})
  t.teardown(() => relay.close())
  const bad = JSON.stringify({ messages: 'not a list' })
  const runs = await Promise.all(Object.entries(clients).map(async ([name, command]) => [name, await run(command([relay.url, bad]))] as const))
  for (const [name, r] of runs) {
    t.test(name, async (t) => {
      t.not(r.code, 0, 'a non-zero exit')
      const lines = linesOf(r)
      t.equal(lines.length, 1, `one line:\n${r.stdout}${r.stderr}`)
      if (name === 'curl.sh') {
        // curl prints what the relay sends: here, its JSON error (exit 22: curl's "HTTP error").
        t.equal(r.code, 22)
        t.match(JSON.parse(lines[0] ?? ''), { error: { code: 'invalid_request', message: /messages/ } })
      } else {
        t.match(lines[0], /: the relay answered 400 invalid_request: .*messages/, 'status, code and the relay\'s message')
      }
      t.notMatch(`${r.stdout}${r.stderr}`, /^\s+at |Traceback|Exception in thread/m, 'no stack trace')
    })
  }
})

t.test('every example defaults to npm start\'s http://127.0.0.1:3000, overridable, documented at its top', async (t) => {
  for (const name of Object.keys(clients)) {
    const text = await readFile(join(examples, name), 'utf8')
    const head = text.split('\n').slice(0, 14).join('\n')
    t.match(head, /BASE_URL: the argument, else \$RELAY_URL, else http:\/\/127\.0\.0\.1:3000/, `${name}: documented`)
    t.match(text, /RELAY_URL/, `${name}: reads RELAY_URL`)
    t.notMatch(text, /localhost:8080['"]/, `${name}: no other default`)
  }
})
