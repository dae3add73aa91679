/**
 * CORS_ORIGINS in a real Chromium: a page served by a second HTTP server (another port, so
 * another origin) streams from the relay with `fetch` and `EventSource`. The listed origin reads
 * the streams, `x-stream-id` and `retry-after`, resumes with a `Last-Event-ID` header and
 * cancels with DELETE (each a preflight); a page on a third origin is refused by the browser.
 */
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import t from 'tap'
import type { Page } from 'playwright-core'
import { chromiumMissing, launchBrowser, openPage } from '../fixtures/browser.js'
import { startRelay } from '../fixtures/relay.js'
import { startMockUpstream } from '../../lib/mock/index.js'

/** A tiny site on its own port: one empty page, whose origin is `http://127.0.0.1:PORT`. */
async function startSite (title: string): Promise<{ origin: string, server: Server }> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>${title}</title><p>${title}</p>`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { origin: `http://127.0.0.1:${address.port}`, server }
}

const TOKENS = ['Cross', '-origin', ' ünï', 'code 🙂', ' text.']

/** In the page: POST /v1/chat/stream with fetch, read it whole; what the page's script could see. */
async function fetchStream (page: Page, relay: string): Promise<{ ok: boolean, status?: number, streamId?: string | null, body?: string, error?: string }> {
  return await page.evaluate(async ({ relay, tokens }) => {
    try {
      const res = await fetch(`${relay}/v1/chat/stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], mock: { tokens, tokenDelayMs: 5 } })
      })
      return { ok: true, status: res.status, streamId: res.headers.get('x-stream-id'), body: await res.text() }
    } catch (err) {
      return { ok: false, error: String(err) }
    }
  }, { relay, tokens: TOKENS })
}

/** In the page: an EventSource on `url` until `close` (its text and reason), or until the browser gives up. */
async function eventSource (page: Page, url: string, withCredentials = false): Promise<{ text?: string, reason?: string, failed?: boolean }> {
  return await page.evaluate(async ({ url, withCredentials }) => await new Promise((resolve) => {
    const es = new EventSource(url, { withCredentials })
    let text = ''
    es.onmessage = (ev) => {
      if (ev.data === '[DONE]') return
      const message = JSON.parse(ev.data) as { type: string, content?: string }
      if (message.type === 'delta') text += message.content ?? ''
    }
    es.addEventListener('close', (ev) => {
      es.close()
      resolve({ text, reason: (JSON.parse((ev as MessageEvent).data) as { reason: string }).reason })
    })
    // A refused CORS answer is a network error that ends the EventSource (CLOSED), no retry.
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) resolve({ failed: true }) }
    setTimeout(() => { es.close(); resolve({ failed: true }) }, 15_000)
  }), { url, withCredentials })
}

const textOf = (sse: string): string => sse.split('\n')
  .filter((line) => line.startsWith('data: {'))
  .map((line) => JSON.parse(line.slice(6)) as { type: string, content?: string })
  .filter((m) => m.type === 'delta').map((m) => m.content).join('')

t.test('a page on a listed origin streams from the relay; a page on another origin is refused', { skip: chromiumMissing }, async (t) => {
  const mock = await startMockUpstream()
  t.teardown(() => mock.close())
  const allowed = await startSite('allowed')
  t.teardown(() => allowed.server.close())
  const other = await startSite('other')
  t.teardown(() => other.server.close())
  const relay = await startRelay({ env: { UPSTREAM_URL: mock.url, CORS_ORIGINS: allowed.origin, MAX_STREAMS_PER_CLIENT: '1' } })
  t.teardown(() => relay.close())
  const withCookies = await startRelay({ env: { UPSTREAM_URL: mock.url, CORS_ORIGINS: allowed.origin, CORS_CREDENTIALS: 'true' } })
  t.teardown(() => withCookies.close())
  const browser = await launchBrowser()
  t.teardown(() => browser.close())

  const { page, log } = await openPage(browser, allowed.origin)
  t.not(allowed.origin, relay.url, 'the page is on another origin than the relay')

  // fetch, POST with a JSON body: a preflight, then the stream.
  const fetched = await fetchStream(page, relay.url)
  t.equal(fetched.ok, true, `fetch works (${fetched.error ?? ''})`, { log })
  t.equal(fetched.status, 200)
  t.match(fetched.streamId, /\S/, 'x-stream-id is readable by the page')
  t.equal(textOf(fetched.body ?? ''), TOKENS.join(''), 'the whole stream was read')
  t.match(fetched.body, /event: close\ndata: {"reason":"done"}/)

  // EventSource: the same generation from its start, then a resume by fetch with a Last-Event-ID header.
  const replay = await eventSource(page, `${relay.url}/v1/chat/stream/${fetched.streamId}`)
  t.same(replay, { text: TOKENS.join(''), reason: 'done' }, 'EventSource reads the stream cross-origin')
  const resumed = await page.evaluate(async (url) => {
    const res = await fetch(url, { headers: { 'last-event-id': '2' } })
    return await res.text()
  }, `${relay.url}/v1/chat/stream/${fetched.streamId}`)
  t.equal(textOf(resumed), TOKENS.slice(2).join(''), 'a resume with a Last-Event-ID header (an allowed request header)')

  // retry-after on a 429 is readable, and DELETE (another preflight) cancels.
  const limited = await page.evaluate(async ({ relay }) => {
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'slow' }], mock: { tokens: ['a', 'b', 'c'], tokenDelayMs: 5000 } })
    const first = await fetch(`${relay}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    const { streamId } = await first.json() as { streamId: string }
    const second = await fetch(`${relay}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    const cancelled = await fetch(`${relay}/v1/chat/stream/${streamId}`, { method: 'DELETE' })
    return { first: first.status, second: second.status, retryAfter: second.headers.get('retry-after'), error: await second.json(), cancelled: cancelled.status }
  }, { relay: relay.url })
  t.equal(limited.first, 201)
  t.equal(limited.second, 429, 'over MAX_STREAMS_PER_CLIENT')
  t.match(limited.retryAfter, /^\d+$/, 'retry-after is readable by the page')
  t.match(limited.error, { error: { code: String, message: String } }, 'and so is the JSON error')
  t.equal(limited.cancelled, 200, 'DELETE works cross-origin')

  // Cookies need CORS_CREDENTIALS=true.
  const chatUrl = async (base: string): Promise<string> => await page.evaluate(async (base) => {
    const res = await fetch(`${base}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], mock: { tokens: ['x', 'y'] } })
    })
    return `${base}${(await res.json() as { streamUrl: string }).streamUrl}`
  }, base)
  t.same(await eventSource(page, await chatUrl(withCookies.url), true), { text: 'xy', reason: 'done' }, 'withCredentials works with CORS_CREDENTIALS=true')
  t.same(await eventSource(page, await chatUrl(relay.url), true), { failed: true }, 'and is refused without it')

  // Another origin: the browser refuses both.
  const stranger = await openPage(browser, other.origin)
  const refused = await fetchStream(stranger.page, relay.url)
  t.equal(refused.ok, false, 'fetch from another origin fails')
  t.match(refused.error, /TypeError/, 'as a network error (CORS)')
  t.same(await eventSource(stranger.page, `${relay.url}/v1/chat/stream/${fetched.streamId}`), { failed: true }, 'EventSource from another origin fails')
  t.ok(stranger.log.some((line) => /CORS policy/.test(line)), 'Chromium says why: the CORS policy', { log: stranger.log })
})
