// The package as a user gets it. `npm pack` builds it (prepare) and ships dist, the licence and
// the page, not the tests; a consumer project installs the tarball with npm and type-checks
// against every entry point under the module resolutions TypeScript users have (NodeNext,
// Node16, Bundler) with skipLibCheck off; another installs it from the git checkout (npm clones
// it, installs its dev dependencies, builds it on prepare) and streams with `/sse` alone.
// npm talks to a registry on 127.0.0.1 that serves this project's locked packages from npm's
// cache (test/fixtures/local-registry.ts): a real install, no traffic beyond the loopback.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { nginxDir } from '../fixtures/nginx.js'
import { startLocalRegistry } from '../fixtures/local-registry.js'

// npm installs and three type-checks: minutes on a busy two-core machine.
t.setTimeout(10 * 60_000)

const run = promisify(execFile)
const root = resolve(nginxDir, '..')
const ourPackage = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string, devDependencies: Record<string, string>, overrides: unknown }
const registry = await startLocalRegistry(join(root, 'package-lock.json'))
const work = await mkdtemp(join(tmpdir(), 'llm-relay-package-'))
t.teardown(async () => {
  await registry.close()
  await rm(work, { recursive: true, force: true })
})

/** npm as a user runs it: this registry, no audit, none of the settings of the `npm test` that runs us. */
async function npm (cwd: string, args: string[]): Promise<string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) if (!key.toLowerCase().startsWith('npm_') && value !== undefined) env[key] = value
  Object.assign(env, { npm_config_registry: registry.url, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' })
  const { stdout } = await run('npm', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 })
  return stdout
}

async function project (name: string, manifest: Record<string, unknown>, files: Record<string, string>): Promise<string> {
  const dir = join(work, name)
  await run('mkdir', ['-p', dir])
  // A consumer on Node 20 like this project, with its overrides: Fastify's light-my-request asks
  // for cookie 2, which needs Node 22 (the local registry has only what this project locked).
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, private: true, type: 'module', overrides: ourPackage.overrides, ...manifest }, null, 2))
  for (const [file, text] of Object.entries(files)) await writeFile(join(dir, file), text)
  return dir
}

let tarball = ''

t.test('npm pack builds the package: dist with every entry point, the licence, no tests or sources', async (t) => {
  const packed = JSON.parse(await npm(root, ['pack', '--json', '--pack-destination', work])) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = (packed[0]?.files ?? []).map((f) => f.path)
  tarball = join(work, packed[0]?.filename as string)
  for (const entry of ['index', 'sse', 'redis', 'mock', 'service']) {
    t.ok(files.includes(`dist/${entry}.js`) && files.includes(`dist/${entry}.d.ts`), `dist/${entry}.js and its types`)
  }
  t.ok(files.includes('LICENSE'), 'the licence')
  t.ok(files.includes('public/index.html'), 'the chat page the service serves')
  t.notOk(files.some((f) => f.startsWith('test/') || f.startsWith('dist/test/') || f.startsWith('bench/')), 'no tests, no benchmarks')
  t.notOk(files.some((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')), 'no TypeScript sources')
  t.notOk(files.some((f) => f.endsWith('.tsbuildinfo') || f.endsWith('.map')), 'no build state, no source maps')
  t.notOk(files.some((f) => f.includes('chat-service')), 'the example service (dev dependencies) is not in it')
})

t.test('a TypeScript project installs the tarball and type-checks under NodeNext, Node16 and Bundler', async (t) => {
  const consumer = `import Fastify from 'fastify'
import llmRelay, { bearerKeys, MemoryStore, RelayError } from 'fastify-llm-relay'
import type { GenerationResult, LlmRelayOptions, RelayErrorCode } from 'fastify-llm-relay'
import sse from 'fastify-llm-relay/sse'
import type { SseStream } from 'fastify-llm-relay/sse'
import { RedisStore } from 'fastify-llm-relay/redis'
import { startMockUpstream } from 'fastify-llm-relay/mock'
import { buildApp } from 'fastify-llm-relay/service'

const options: LlmRelayOptions = {
  upstream: { url: 'http://127.0.0.1:1/v1', apiKey: 'k' },
  store: new MemoryStore(),
  identify: bearerKeys(['k']),
  routes: { prefix: '/api', start: false },
  hooks: { onFinish: (result: GenerationResult) => { console.log(result.text, result.usage.total_tokens) } }
}
const app = Fastify()
await app.register(sse)
await app.register(llmRelay, options)
app.post('/ask', async (request, reply) => {
  const code: RelayErrorCode = 'not_found'
  if (request.body === null) throw new RelayError(code, 404, 'no body')
  return reply.relay({ messages: [{ role: 'user', content: 'hi' }] }, { conversationId: 'c1', owner: 'user:1', format: 'openai' })
})
app.get('/clock', async (request, reply) => {
  const stream: SseStream = reply.sse({ heartbeatMs: 1000 })
  await stream.send({ event: 'time', data: { now: Date.now() } })
})
const ids: number[] = await app.channels.publish('news', { data: 1 })
const store: RedisStore | undefined = undefined
const mock = await startMockUpstream()
const service = await buildApp({ env: { UPSTREAM_URL: mock.url } })
console.log(ids, store, service.relayConfig.port, app.relay.draining, app.relayMetrics.registry.contentType)
`
  const dev = ourPackage.devDependencies
  const dir = await project('consumer-types', {
    dependencies: { 'fastify-llm-relay': `file:${tarball}`, fastify: '^5.0.0', typescript: dev.typescript, '@types/node': dev['@types/node'] }
  }, { 'index.ts': consumer })
  await npm(dir, ['install'])
  for (const [resolution, module] of [['nodenext', 'nodenext'], ['node16', 'node16'], ['bundler', 'preserve']]) {
    const config = { compilerOptions: { target: 'ES2022', module, moduleResolution: resolution, strict: true, skipLibCheck: false, noEmit: true, types: ['node'] }, files: ['index.ts'] }
    await writeFile(join(dir, `tsconfig.${resolution}.json`), JSON.stringify(config))
    const checked = await run(join(dir, 'node_modules', '.bin', 'tsc'), ['-p', `tsconfig.${resolution}.json`], { cwd: dir }).then(() => '', (err: { stdout?: string }) => err.stdout ?? String(err))
    t.equal(checked, '', `moduleResolution ${resolution}: no error, declarations included`)
  }
  t.same(registry.misses.filter((m) => !m.includes('/@esbuild/')), [], 'every package came from the local registry')
})

t.test('a project installs the package from the git checkout (built on prepare) and streams with /sse alone', async (t) => {
  const script = `import Fastify from 'fastify'
import sse from 'fastify-llm-relay/sse'

const app = Fastify()
await app.register(sse)
app.get('/count', async (request, reply) => reply.sse((function * () { for (let i = 1; i <= 3; i++) yield { id: i, data: { i } } })()))
await app.listen({ port: 0, host: '127.0.0.1' })
const res = await fetch('http://127.0.0.1:' + app.server.address().port + '/count')
process.stdout.write(res.headers.get('content-type') + '\\n' + await res.text())
await app.close()
`
  // npm blocks dependencies' install scripts unless allowed: building a git dependency is one.
  const dir = await project('consumer-git', { allowScripts: { 'fastify-llm-relay': true } }, { 'main.js': script })
  await npm(dir, ['install', `git+file://${root}`, 'fastify@^5.0.0'])
  const installed = JSON.parse(await readFile(join(dir, 'node_modules', 'fastify-llm-relay', 'package.json'), 'utf8')) as { version: string }
  t.equal(installed.version, ourPackage.version)
  const { stdout } = await run('node', ['main.js'], { cwd: dir, timeout: 30_000 })
  t.match(stdout, /^text\/event-stream; charset=utf-8\n/, 'an SSE response')
  t.match(stdout, /id: 1\ndata: \{"i":1\}\n\n[\s\S]*id: 3\ndata: \{"i":3\}\n\nevent: close\ndata: \{"reason":"done"\}\n\n$/, 'three events and close, from the git-installed build')
})
