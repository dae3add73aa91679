// Real clients through nginx, each reconstructing the exact text: the example files users copy
// (examples/clients/) are run as they are, so they stay true. The text has the characters that
// break naive clients: newlines, a CR, U+2028 (Python's str.splitlines splits on it), "[DONE]",
// "data: " inside content, quotes, backslashes, multi-byte characters.
// Then the clients that resume are cut mid-answer by nginx and must still print the exact text.
import { spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import { createParser } from 'eventsource-parser'
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import { nginxDir, startNginx } from '../fixtures/nginx.js'
import { startRelay } from '../fixtures/relay.js'

const examples = join(resolve(nginxDir, '..'), 'examples', 'clients')
const TOKENS = ['Hel', 'lo,\n', 'wörld ', '🙂 ', '[DONE] ', 'data: x\r\n', '"q" \\ ', '\u2028', 'ünïcode ', 'end.']
const TEXT = TOKENS.join('')

interface Run { code: number | null, stdout: string, stderr: string, ms: number }

/** Runs one example client to completion (bounded), capturing its output as UTF-8. */
async function run (command: string, args: string[], timeoutMs = 60_000): Promise<Run> {
  const start = Date.now()
  // LC_ALL=C.UTF-8: the examples print text; a C locale would make Python refuse non-ASCII.
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C.UTF-8' } })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (b: Buffer) => out.push(b))
  child.stderr.on('data', (b: Buffer) => err.push(b))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)))
  clearTimeout(timer)
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: Date.now() - start }
}

/** The clients that print the text themselves: command line for base URL + request body. */
const textClients: Record<string, (base: string, body: string) => [string, string[]]> = {
  'python-requests.py': (base, body) => ['/usr/bin/python3', [join(examples, 'python-requests.py'), base, body]],
  'node-eventsource.mjs': (base, body) => [process.execPath, [join(examples, 'node-eventsource.mjs'), base, body]],
  'fetch-event-source.mjs': (base, body) => [process.execPath, [join(examples, 'fetch-event-source.mjs'), base, body]],
  'openai-sdk.mjs': (base, body) => [process.execPath, [join(examples, 'openai-sdk.mjs'), base, body]],
  // One file run by `java` itself (compiled in memory: a few seconds on a loaded machine).
  'java/RelayClient.java': (base, body) => ['java', [join(examples, 'java', 'RelayClient.java'), base, body]]
}

/** curl prints the raw stream: the text is the `delta` contents a spec parser finds in it. */
function textOfRawSse (raw: string): { text: string, events: string[] } {
  let text = ''
  const events: string[] = []
  const parser = createParser({
    onEvent (ev) {
      events.push(ev.event ?? 'message')
      if (ev.event === undefined && ev.data.startsWith('{')) {
        const m = JSON.parse(ev.data) as { type: string, content?: string }
        if (m.type === 'delta') text += m.content
      }
    }
  })
  parser.feed(raw)
  return { text, events }
}

const mock = await startMockUpstream()
t.teardown(() => mock.close())

t.test('every example client prints the exact text through nginx', async (t) => {
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url } })
  t.teardown(() => relay.close())
  const nginx = await startNginx({ relays: [`127.0.0.1:${relay.port}`] })
  t.teardown(() => nginx.stop())
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], mock: { tokens: TOKENS, tokenDelayMs: 20, jitterMs: 0 } })

  const runs = await Promise.all([
    ...Object.entries(textClients).map(async ([name, cmd]) => [name, await run(...cmd(nginx.httpUrl, body))] as const),
    run('sh', [join(examples, 'curl.sh'), nginx.httpUrl, body]).then((r) => ['curl.sh', r] as const)
  ])
  for (const [name, r] of runs) {
    t.test(name, async (t) => {
      t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.trim()})`)
      if (name === 'curl.sh') {
        const { text, events } = textOfRawSse(r.stdout)
        t.equal(text, TEXT, 'exact text in the raw stream')
        t.same(events.slice(-2), ['message', 'close'], 'ends with [DONE] and close')
      } else {
        t.equal(r.stdout, TEXT, 'exact text on stdout')
      }
      t.comment(`${name}: ${r.ms} ms`)
    })
  }
})

t.test('the resuming clients survive a cut mid-answer and print the exact text once', async (t) => {
  // The cut: no heartbeats and a 1 s proxy_read_timeout, with the upstream pausing 2.5 s after
  // the first half. nginx drops the connection; each client reconnects with Last-Event-ID
  // (after the stream's `retry: 3000`, or 1 s for fetch-event-source) and gets the rest.
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, HEARTBEAT_MS: '0' } })
  t.teardown(() => relay.close())
  const nginx = await startNginx({ relays: [`127.0.0.1:${relay.port}`], proxyReadTimeout: '1s' })
  t.teardown(() => nginx.stop())
  const half = ['first half: ', 'ö\n', '🙂 ']
  const rest = ['second ', 'half.']
  const bodyFor = (): string => JSON.stringify({
    messages: [{ role: 'user', content: 'hi' }],
    // tokenDelayMs applies before every token after the first: 2 tokens, one 2.5 s pause.
    mock: { tokens: [half.join(''), rest.join('')], firstTokenDelayMs: 0, tokenDelayMs: 2500, jitterMs: 0 }
  })
  const resumable = ['python-requests.py', 'node-eventsource.mjs', 'fetch-event-source.mjs', 'java/RelayClient.java'] as const
  const runs = await Promise.all(resumable.map(async (name) => {
    const cmd = textClients[name]
    if (cmd === undefined) throw new Error(name)
    return [name, await run(...cmd(nginx.httpUrl, bodyFor()))] as const
  }))
  const resumes = nginx.accessLog().filter((l) => /^GET \/v1\/chat\/stream\/\S+ 200 /.test(l))
  for (const [name, r] of runs) {
    t.test(name, async (t) => {
      t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.trim()})`)
      t.equal(r.stdout, half.join('') + rest.join(''), 'exact text, nothing repeated')
      t.match(r.stderr, /resum|reconnect/i, 'it noticed the cut')
      t.comment(`${name}: ${r.ms} ms`)
    })
  }
  // python, fetch-event-source and Java resume once each; EventSource reads with GET from the start.
  t.ok(resumes.length >= 5, `${resumes.length} GET resumes through nginx`)
  t.match(nginx.errorLog(), /upstream timed out/, 'nginx did cut the streams')
})
