// The shipped nginx config keeps /metrics from the public edge (README "Logs and metrics"), however
// the path is spelled, while the relay behind it still serves /metrics directly. A real nginx in
// front of a real relay, on 127.0.0.1.
import { request } from 'node:http'
import t from 'tap'
import { startNginx } from '../fixtures/nginx.js'
import { startRelay } from '../fixtures/relay.js'

/** A GET with the path sent exactly as written (fetch would normalize `//` and `%6D`). */
function get (base: string, path: string): Promise<{ status: number, body: string }> {
  const url = new URL(base)
  return new Promise((resolve, reject) => {
    request({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    }).on('error', reject).end()
  })
}

t.test('nginx answers /metrics itself with a 404 in the error shape; the relay still serves it directly', async (t) => {
  const relay = await startRelay()
  t.teardown(() => relay.close())
  const nginx = await startNginx({ relays: [`127.0.0.1:${relay.port}`] })
  t.teardown(() => nginx.stop())

  const direct = await get(relay.url, '/metrics')
  t.equal(direct.status, 200, 'the relay serves /metrics to whoever reaches it directly')
  t.match(direct.body, /relay_tokens_total/)

  for (const path of ['/metrics', '/metrics?format=text', '//metrics', '/%6Detrics']) {
    const res = await get(nginx.httpUrl, path)
    t.equal(res.status, 404, `${path}: 404 at the edge`)
    t.same(JSON.parse(res.body), { error: { code: 'not_found', message: 'not found' } }, `${path}: the error shape`)
  }
  const healthz = await get(nginx.httpUrl, '/healthz')
  t.equal(healthz.status, 200, 'everything else is still proxied')
  t.notOk(nginx.accessLog().some((line) => /metrics \d+ 127\.0\.0\.1:\d+/.test(line)), 'no /metrics request reached a relay')
})
