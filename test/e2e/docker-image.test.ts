// The Docker image's final stage installs production dependencies only (`npm ci --omit=dev`)
// and runs `node dist/server.js` (the relays) and `node dist/lib/mock/main.js` (the mock). No
// Docker engine runs here, so check the part that breaks silently: everything those entry points
// import at run time must be a production dependency, or the image crashes at start.
// (With verbatimModuleSyntax, `import type` is erased and every other import is real.)
import { readFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import t from 'tap'
import { nginxDir } from '../fixtures/nginx.js'

const root = resolve(nginxDir, '..')
const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  devDependencies?: Record<string, string>
  scripts?: Record<string, string>
}

/**
 * The packages a module graph imports at run time, following relative imports from `entries`
 * (whose files end up in `seen`); with `dynamic` false, only what loads with the entries: not
 * their `import()`s.
 */
async function runtimePackages (entries: string[], seen = new Set<string>(), dynamic = true): Promise<Map<string, string>> {
  const packages = new Map<string, string>() // package → first file importing it
  const queue = [...entries]
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    if (seen.has(file)) continue
    seen.add(file)
    const text = await readFile(file, 'utf8')
    const specifiers = [
      // import x from 'y' / import { a, b } from 'y' (possibly over several lines), export … from 'y'
      ...[...text.matchAll(/^(?:import|export)\s+(?!type\s)[^'";]*?\sfrom\s+'([^']+)'/gm)].map((m) => m[1]),
      ...[...text.matchAll(/^import\s+'([^']+)'/gm)].map((m) => m[1]),
      ...(dynamic ? [...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]) : [])
    ] as string[]
    for (const spec of specifiers) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'))
        if (existsSync(target)) queue.push(target)
        continue
      }
      if (spec.startsWith('node:') || builtinModules.includes(spec)) continue
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0] as string
      if (!packages.has(name)) packages.set(name, file.slice(root.length + 1))
    }
  }
  return packages
}

t.test('what the image runs, and the package entries, import only production dependencies', async (t) => {
  const entries = ['server.ts', 'lib/mock/main.ts', 'index.ts', 'sse.ts', 'redis.ts', 'mock.ts', 'service.ts']
  const packages = await runtimePackages(entries.map((entry) => join(root, entry)))
  t.ok(packages.has('fastify'), 'the scan finds the imports (fastify among them)')
  for (const [name, from] of packages) {
    // A peer dependency (fastify) is installed by `npm ci --omit=dev` too, and by the application.
    t.ok(pkg.dependencies?.[name] ?? pkg.peerDependencies?.[name], `${name} (imported by ${from}) is in dependencies or peerDependencies`)
  }
  t.same(Object.keys(pkg.peerDependencies ?? {}), ['fastify'], 'fastify is a peer: the application brings its own')
  t.notOk(pkg.dependencies?.fastify, 'and not a dependency')
})

t.test('each entry point loads only what it names', async (t) => {
  const graph = async (entry: string): Promise<{ packages: string[], files: string[] }> => {
    const seen = new Set<string>()
    const packages = await runtimePackages([join(root, entry)], seen, false)
    return { packages: [...packages.keys()].sort(), files: [...seen].map((f) => f.slice(root.length + 1)) }
  }
  const main = await graph('index.ts')
  t.notOk(main.packages.includes('@fastify/static'), 'the root does not load @fastify/static')
  t.notOk(main.packages.includes('ioredis'), 'nor ioredis (the Redis store is loaded only when asked for)')
  t.notOk(main.files.some((f) => f === 'app.ts' || f.startsWith('examples/') || f.startsWith('lib/mock/')), `nor the service, the demos or the mock (${main.files.filter((f) => !f.startsWith('lib/') && !f.startsWith('plugins/')).join(', ')})`)
  const sse = await graph('sse.ts')
  t.same(sse.packages, ['@fastify/error', 'fastify-plugin'], '/sse loads the SSE writer only')
  t.ok(sse.files.every((f) => f === 'sse.ts' || f.startsWith('lib/sse/') || f === 'plugins/sse.ts'), `/sse: ${sse.files.join(', ')}`)
  t.ok((await graph('redis.ts')).packages.includes('ioredis'), '/redis loads ioredis')
  t.ok((await graph('service.ts')).packages.includes('@fastify/static'), '/service loads the service')
})

t.test('the Dockerfile builds with dev dependencies and runs without them, as a non-root user', async (t) => {
  const text = await readFile(join(root, 'Dockerfile'), 'utf8')
  const stages = text.split(/^FROM /m).slice(1)
  t.equal(stages.length, 2, 'two stages')
  t.match(stages[0], /RUN npm ci --no-audit/)
  if (pkg.scripts?.prepare !== undefined) {
    t.match(stages[0], /RUN npm ci [^\n]*--ignore-scripts/, 'the package\'s prepare (a build) does not run before the sources are copied')
  }
  t.match(stages[0], /npm run build/)
  t.match(stages[1], /RUN npm ci --omit=dev/)
  t.match(stages[1], /^USER node$/m)
  t.match(stages[1], /^HEALTHCHECK .*\n?.*\/healthz/m)
  t.match(stages[1], /^CMD \["node", "dist\/server\.js"\]$/m)
  // The build context keeps what the build compiles: examples/demo-routes.ts is part of the app.
  const ignore = (await readFile(join(root, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim())
  for (const needed of ['lib', 'plugins', 'public', 'examples', 'package.json', 'package-lock.json']) {
    t.notOk(ignore.includes(needed), `${needed} is in the build context`)
  }
})
