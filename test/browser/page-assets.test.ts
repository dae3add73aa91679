/**
 * How the relay serves the chat page (plugins/chat-page.ts): the page and its modules from the
 * relay itself, nothing from elsewhere; the vendored modules from node_modules as JavaScript,
 * cached by ETag; nothing else under /vendor/ (no way out of the package folder); the
 * Content-Security-Policy on every page response. Plain HTTP, no browser.
 */
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { startRelay } from '../fixtures/relay.js'

const relay = await startRelay()
t.teardown(() => relay.close())
const get = async (path: string, headers: Record<string, string> = {}) => await fetch(`${relay.url}${path}`, { headers })

t.test('every module the page imports is served, and from the relay only', async (t) => {
  const html = await (await get('/')).text()
  t.notMatch(html, /(src|href)="(https?:)?\/\//, 'the page loads nothing from another origin')
  // Follow the imports from app.js: every module the page needs, served as JavaScript.
  const seen = new Set<string>()
  const queue = ['/app.js']
  while (queue.length > 0) {
    const path = queue.shift() as string
    if (seen.has(path)) continue
    seen.add(path)
    const res = await get(path)
    t.equal(res.status, 200, `${path} is served`)
    t.match(res.headers.get('content-type'), /^(text|application)\/javascript/, `${path} as JavaScript`)
    const source = await res.text()
    for (const [, spec] of source.matchAll(/(?:^|\n)\s*import\s[^'"]*['"]([^'"]+)['"]/g)) {
      t.match(spec, /^\.\//, `${path} imports ${spec} relatively: from the relay`)
      queue.push(new URL(spec as string, `http://x${path}`).pathname)
    }
  }
  t.ok(seen.has('/vendor/marked.js') && seen.has('/vendor/purify.js') && seen.has('/vendor/highlight/core.js'), `the vendored modules are among them (${seen.size} modules)`)
})

t.test('vendored modules are the packages\' own files, cached by ETag', async (t) => {
  const res = await get('/vendor/marked.js')
  const body = await res.text()
  t.equal(body, await readFile(new URL('../../node_modules/marked/lib/marked.esm.js', import.meta.url), 'utf8'), 'marked\'s ESM build, as it ships')
  const etag = res.headers.get('etag')
  t.ok(etag, `an ETag: ${etag}`)
  t.equal(res.headers.get('cache-control'), 'no-cache', 'revalidated on each load (it changes with npm install)')
  const again = await get('/vendor/marked.js', { 'if-none-match': etag as string })
  t.equal(again.status, 304, 'a revalidation answers 304')
  t.equal((await get('/vendor/highlight/python.js')).status, 200, 'a highlight.js grammar the package ships')
})

t.test('nothing else is served under /vendor/', async (t) => {
  for (const path of [
    '/vendor/highlight/not-a-language.js',
    '/vendor/highlight/python',
    '/vendor/highlight/..%2F..%2F..%2Fpackage.json',
    '/vendor/highlight/..%2fcore.min.js',
    '/vendor/highlight/%2e%2e.js',
    '/vendor/package.json',
    '/vendor/marked.esm.js',
    '/vendor/../package.json'
  ]) {
    const res = await get(path)
    t.equal(res.status, 404, `${path}: 404`)
    const text = await res.text()
    t.notMatch(text, /"name":\s*"/, `${path}: no package file`)
  }
})

t.test('the page and its files carry the security headers', async (t) => {
  for (const path of ['/', '/app.js', '/style.css', '/vendor/purify.js']) {
    const res = await get(path)
    t.match(res.headers.get('content-security-policy'), /script-src 'self'(;|$)/, `${path}: scripts only from the relay, none inline`)
    t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${path}: no type sniffing`)
  }
  const api = await get('/healthz')
  t.equal(api.headers.get('content-security-policy'), null, 'the API\'s responses are left as they are')
})
