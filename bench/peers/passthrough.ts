/**
 * The floor: the upstream's body piped downstream unparsed (undici `Pool.stream` straight into
 * the response). Any relay that understands the stream costs at least this much per token.
 */
import Fastify from 'fastify'
import { Pool } from 'undici'
import { serve, upstreamUrl } from '../servers/harness.js'

const base = new URL(upstreamUrl())
const pool = new Pool(base.origin, { connections: 100_000, headersTimeout: 0, bodyTimeout: 0 })
const path = `${base.pathname}/chat/completions`
const app = Fastify({ logger: false })

app.post('/v1/chat/stream', async (request, reply) => {
  reply.hijack()
  const res = reply.raw
  const controller = new AbortController()
  res.on('close', () => { if (!res.writableFinished) controller.abort() })
  const body = { ...(request.body as Record<string, unknown>), stream: true }
  try {
    await pool.stream({
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(body),
      signal: controller.signal
    }, ({ statusCode }) => {
      res.writeHead(statusCode, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' })
      return res
    })
  } catch {
    if (!res.headersSent) res.writeHead(502)
    res.destroy()
  }
})

await serve(app)
