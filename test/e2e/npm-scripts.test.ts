/**
 * The scripts a developer runs, as package.json defines them: `npm start` builds only when a
 * source changed since the last build (`prestart`), and `npm run dev` serves from the sources
 * with readable (pino-pretty) log lines. test/e2e/npm-start.test.ts is the quick start itself.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, symlink, writeFile, copyFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { freePort } from '../fixtures/free-port.js'
import { waitUntilOk } from '../fixtures/wait.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }

/** Runs `npm ARGS` in `cwd` to its end: exit code and output. */
async function npm (cwd: string, args: string[]): Promise<{ code: number | null, output: string }> {
  const child = spawn('npm', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve))
  return { code, output }
}

/** A TypeScript server entry that prints `server WORD` (typed, so tsc has something to strip). */
const sourceSaying = (word: string): string => `const word: string = ${JSON.stringify(word)}\nconsole.log('server ' + word)\n`

t.test('npm start builds a project only when one of its sources changed', async (t) => {
  // A one-file project with this package's scripts and tsconfig files, and its node_modules (tsc).
  const dir = await mkdtemp(join(tmpdir(), 'relay-npm-start-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'package.json'), JSON.stringify({
    name: 'build-check',
    type: 'module',
    private: true,
    scripts: { build: pkg.scripts.build, prestart: pkg.scripts.prestart, start: pkg.scripts.start }
  }))
  for (const file of ['tsconfig.json', 'tsconfig.build.json']) await copyFile(join(root, file), join(dir, file))
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'))
  const source = join(dir, 'server.ts')
  const built = join(dir, 'dist', 'server.js')
  await writeFile(source, sourceSaying('first'))

  const first = await npm(dir, ['start'])
  t.equal(first.code, 0, first.output)
  t.match(first.output, /server first/, 'a fresh tree is built, then started')
  const builtAt = (await stat(built)).mtimeMs

  const second = await npm(dir, ['start'])
  t.equal(second.code, 0, second.output)
  t.match(second.output, /server first/)
  t.equal((await stat(built)).mtimeMs, builtAt, 'nothing changed: nothing is compiled again')

  await writeFile(source, sourceSaying('second'))
  const third = await npm(dir, ['start'])
  t.equal(third.code, 0, third.output)
  t.match(third.output, /server second/, 'a changed source is compiled before the start')
})

t.test('npm run dev serves from the sources with readable log lines', async (t) => {
  const port = await freePort()
  const env: Record<string, string | undefined> = { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' }
  delete env.UPSTREAM_URL
  delete env.REDIS_URL
  // Its own process group, so the watcher, the server and pino-pretty all stop at the end.
  const child = spawn('npm', ['run', 'dev'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(async () => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL')
    } catch {} // gone already
    await exited
  })
  await waitUntilOk(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, 60_000, `npm run dev ready\n${output}`)
  await waitUntilOk(() => /Server listening/.test(output), 10_000, `the listening line\n${output}`)
  const line = output.split('\n').find((l) => l.includes('Server listening')) ?? ''
  t.match(line, /INFO/, `a pretty line with its level: ${line}`)
  t.notMatch(line, /^\{"level"/, 'not pino\'s JSON')
  t.match(output, /tsx|watch/i, 'run by the watcher') // npm echoes the script it runs
})
