// The nginx config and the docker-compose file, checked without a relay: the template renders
// and passes `nginx -t`, the compose file validates and runs that same template with every
// placeholder filled, the limits agree with the relay's, and the nginx fixture starts and stops.
/* eslint no-template-curly-in-string: "off" -- nginx/envsubst placeholders are ${NAME} in plain strings */
import { execFile, execFileSync } from 'node:child_process'
import { connect as connectHttp2 } from 'node:http2'
import { existsSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { readConfig } from '../../lib/config.js'
import {
  nginxBin, nginxDir, renderNginx, renderTemplate, startNginx, templatePath, templatePlaceholders,
  testNginxConfig
} from '../fixtures/nginx.js'
import { freePort } from '../fixtures/free-port.js'

const execFileP = promisify(execFile)
const root = resolve(nginxDir, '..')
// docker-compose substitutes ${UPSTREAM_URL} & co. from the environment: run it with none of
// ours, so the assertions see the file's defaults.
const composeEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' }

for (const template of ['relay', 'unconfigured'] as const) {
  t.test(`nginx -t accepts the rendered ${template} template, without warnings`, async (t) => {
    const rendered = await renderNginx({ relays: ['127.0.0.1:1', '127.0.0.1:2'], template, httpPort: await freePort(), httpsPort: await freePort() })
    t.teardown(() => rm(rendered.dir, { recursive: true, force: true }))
    const output = await testNginxConfig(rendered.dir, rendered.conf)
    t.match(output, /test is successful/)
    t.notMatch(output, /\[(warn|emerg|alert|crit)\]/, 'no warnings')
  })
}

t.test('a placeholder without a value is an error, not an empty directive', async (t) => {
  t.throws(() => renderTemplate('listen ${NGINX_HTTP_LISTEN};', {}), /NGINX_HTTP_LISTEN/)
  t.equal(renderTemplate('proxy_set_header Host $host; listen ${P};', { P: '80' }), 'proxy_set_header Host $host; listen 80;')
})

t.test('the relay template has the directives SSE needs', async (t) => {
  const text = await readFile(templatePath('relay'), 'utf8')
  const directives = text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '')
  for (const d of [
    'proxy_http_version 1.1;', 'proxy_set_header Connection "";', 'proxy_buffering off;',
    'proxy_cache off;', 'gzip off;', 'keepalive 32;', 'listen ${NGINX_HTTPS_LISTEN} ssl http2;',
    'proxy_set_header X-Forwarded-For   $remote_addr;', 'proxy_set_header X-Forwarded-Proto $scheme;',
    'proxy_set_header X-Real-IP         $remote_addr;'
  ]) {
    t.ok(directives.includes(d), d)
  }
})

t.test("nginx's body limit is the relay's MAX_BODY_BYTES", async (t) => {
  const text = await readFile(templatePath('relay'), 'utf8')
  const m = /^\s*client_max_body_size (\d+)([km]?);/m.exec(text)
  t.ok(m, 'client_max_body_size is set')
  const unit = { '': 1, k: 1024, m: 1024 * 1024 }[m?.[2] as '' | 'k' | 'm']
  t.equal(Number(m?.[1]) * unit, readConfig({}).maxBodyBytes)
})

t.test('a body over the limit gets the JSON error from nginx, before reaching a relay', async (t) => {
  // No relay behind it (port 1): the answer can only come from nginx itself.
  const nginx = await startNginx({ relays: ['127.0.0.1:1'] })
  t.teardown(() => nginx.stop())
  const res = await fetch(`${nginx.httpUrl}/v1/chat/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(1024 * 1024) }] })
  })
  t.equal(res.status, 413)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.same(await res.json(), { error: { code: 'body_too_large', message: 'request body is larger than 1048576 bytes' } })
})

t.test('startNginx: serves on 127.0.0.1, answers HTTPS with h2, stops and cleans up', async (t) => {
  const nginx = await startNginx({ relays: ['127.0.0.1:1'] })
  t.match(nginx.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.match(nginx.httpsUrl, /^https:\/\/127\.0\.0\.1:\d+$/)
  const res = await fetch(`${nginx.httpUrl}/healthz`)
  t.equal(res.status, 502, 'proxied to the (absent) relay')
  const session = connectHttp2(nginx.httpsUrl as string, { ca: nginx.ca })
  t.teardown(() => session.close())
  await new Promise((resolve, reject) => session.once('connect', resolve).once('error', reject))
  t.equal(session.alpnProtocol, 'h2', 'TLS with the test CA, HTTP/2 by ALPN')
  session.close()
  await res.arrayBuffer()
  t.match(nginx.accessLog().join('\n'), /GET \/healthz 502 127\.0\.0\.1:1/)
  t.ok(existsSync(join(nginx.dir, 'nginx.pid')))
  await nginx.stop()
  t.notOk(existsSync(nginx.dir), 'prefix directory removed')
  await t.rejects(fetch(`${nginx.httpUrl}/healthz`), 'port closed')
})

t.test('startNginx reports why nginx did not start', async (t) => {
  await t.rejects(startNginx({ relays: ['127.0.0.1:1'], proxyReadTimeout: 'not-a-time' }), /nginx exited at start.*invalid value/s)
})

t.test('docker-compose config validates docker-compose.yml', async (t) => {
  const { stdout, stderr } = await execFileP('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: root, env: composeEnv })
  t.equal(stdout, '')
  t.equal(stderr, '')
})

t.test('docker-compose runs the same nginx template, with every placeholder given', async (t) => {
  // `config` resolves paths and merges anchors; PyYAML ships with docker-compose (its dependency).
  const { stdout } = await execFileP('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: root, env: composeEnv })
  const json = execFileSync('/usr/bin/python3', ['-c',
    'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: stdout, encoding: 'utf8' })
  const config = JSON.parse(json) as {
    services: Record<string, { volumes?: string[], environment?: Record<string, string | null>, command?: string[] }>
  }
  const nginx = config.services.nginx
  t.ok(nginx, 'an nginx service')
  // The official image envsubsts /etc/nginx/templates/*.template into /etc/nginx/conf.d/.
  const mount = (nginx?.volumes ?? []).map((v) => v.split(':')).find((v) => v[1]?.startsWith('/etc/nginx/templates/'))
  t.equal(mount?.[0], templatePath('relay'), 'mounts nginx/relay.conf.template')
  t.match(mount?.[1], /\.template$/)
  const text = await readFile(templatePath('relay'), 'utf8')
  const env = nginx?.environment ?? {}
  for (const name of templatePlaceholders(text)) {
    t.ok(typeof env[name] === 'string' && env[name] !== '', `nginx service sets ${name}`)
  }
  t.equal(env.NGINX_PROXY_READ_TIMEOUT, '15m')

  t.same(Object.keys(config.services).filter((name) => !name.startsWith('redis-')).sort(), ['certs', 'mock', 'nginx', 'redis', 'relay1', 'relay2'], 'the services (the Redis Cluster profile\'s: test/redis/compose-cluster.test.ts)')
  t.same(config.services.mock?.command, ['node', 'dist/lib/mock/main.js'])
  for (const relay of ['relay1', 'relay2']) {
    const renv = config.services[relay]?.environment ?? {}
    t.equal(renv.REDIS_URL, 'redis://redis:6379', `${relay} shares Redis`)
    t.equal(renv.UPSTREAM_URL, 'http://mock:4000/v1', `${relay} uses the mock unless UPSTREAM_URL is set`)
    t.equal(renv.MAX_BODY_BYTES, '1048576')
    t.equal(renv.UPSTREAM_API_KEY, null, 'the key is passed through from the environment, never written')
    t.ok(renv.TRUST_PROXY, 'trusts nginx')
    t.equal(readConfig(Object.fromEntries(Object.entries(renv).map(([k, v]) => [k, v ?? undefined]))).trustProxy, '172.28.0.10')
  }
})

t.test('nginx runs as root and as an unprivileged user', async (t) => {
  // Tests run as root here and in CI, where nginx's workers drop to `nobody`; check the fixture's
  // config also works for a developer who is not root (no `user` directive to warn about, high
  // ports, everything in its own prefix). `nginx -t` binds the ports, so they must be free ones.
  if (process.getuid?.() !== 0) {
    t.pass('not root: the other tests already ran nginx unprivileged')
    return
  }
  const rendered = await renderNginx({ relays: ['127.0.0.1:1'], httpPort: await freePort(), httpsPort: await freePort() })
  t.teardown(() => rm(rendered.dir, { recursive: true, force: true }))
  await execFileP('chown', ['-R', 'nobody', rendered.dir])
  const { stderr } = await execFileP('runuser', ['-u', 'nobody', '--', nginxBin.includes('/') ? nginxBin : '/usr/sbin/nginx',
    '-t', '-p', rendered.dir, '-c', rendered.conf])
  t.match(stderr, /test is successful/)
  t.notMatch(stderr, /\[warn\]/)
})
