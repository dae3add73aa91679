import { EventEmitter, once } from 'node:events'
import { createServer } from 'node:http'
import type { IncomingMessage, IncomingHttpHeaders, ServerResponse } from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import { defaultAnswer, promptTokens, tokenize } from './answer.js'
import { LIFELIKE, pause } from './script.js'
import type { MockFault, MockFormat, MockScript } from './script.js'
import { createFrames, Wire } from './wire.js'

/** Options of {@link startMockUpstream}. */
export interface MockUpstreamOptions {
  /** @default 0 (any free port) */
  port?: number
  /** @default '127.0.0.1' */
  host?: string
  /** Server-wide script defaults, under each request's `mock` object (e.g. `{ tokenDelayMs: 0 }` in tests). */
  defaults?: MockScript
  /** `true` logs to stderr; a function receives each line. @default false */
  log?: boolean | ((line: string) => void)
}

/** What the mock saw and did for one request. Times are `Date.now()` milliseconds. */
export interface MockRequestRecord {
  id: number
  tag: string | undefined
  path: string
  format: MockFormat
  headers: IncomingHttpHeaders
  body: unknown
  /** The fault applied (after `failTimes`), if any. */
  fault: MockFault | undefined
  status: number
  startedAt: number
  firstTokenAt: number | undefined
  tokensSent: number
  /** The mock finished its answer (also after a `truncate` fault or an error). */
  completedAt: number | undefined
  /** The client went away before the answer was complete. */
  aborted: boolean
  abortedAt: number | undefined
}

/** A running mock upstream. */
export interface MockUpstream {
  /** Base URL including `/v1`, e.g. `http://127.0.0.1:41234/v1`. */
  url: string
  port: number
  /** Every request so far, in arrival order (cleared by {@link clear} or `DELETE /__mock/requests`). */
  requests: MockRequestRecord[]
  /**
   * Resolves with the first request tagged `tag` that satisfies `predicate` (default: it ended,
   * completed or aborted), now or later; rejects after `timeoutMs`.
   */
  waitFor (tag: string, predicate?: (record: MockRequestRecord) => boolean, timeoutMs?: number): Promise<MockRequestRecord>
  /** Open TCP connections to the mock right now. */
  connections (): Promise<number>
  clear (): void
  /** Stops listening and destroys every open connection. */
  close (): Promise<void>
}

const FORMATS: Record<string, MockFormat> = {
  '/v1/chat/completions': 'openai',
  '/v1/responses': 'openai-responses',
  '/v1/messages': 'anthropic'
}

const STREAM_FAULTS = new Set<MockFault>([
  'error-data', 'error-event', 'llamacpp-error', 'vllm-error', 'responses-error', 'responses-failed',
  'anthropic-error', 'truncate', 'reset', 'stall'
])

const ended = (record: MockRequestRecord): boolean => record.completedAt !== undefined || record.aborted

/** Starts the mock on 127.0.0.1 (port 0 by default). See {@link MockScript} for what a request can ask. */
export async function startMockUpstream (options: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const defaults: MockScript = { ...LIFELIKE, ...options.defaults }
  const log = options.log === true ? (line: string) => process.stderr.write(`${line}\n`) : typeof options.log === 'function' ? options.log : undefined
  const updates = new EventEmitter()
  updates.setMaxListeners(0)
  const tagCounts = new Map<string, number>()
  let nextId = 1
  const mock: MockUpstream = {
    url: '',
    port: 0,
    requests: [],
    waitFor (tag, predicate = ended, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const match = (record: MockRequestRecord): boolean => record.tag === tag && predicate(record)
        const found = mock.requests.find(match)
        if (found !== undefined) return resolve(found)
        const onUpdate = (record: MockRequestRecord): void => {
          if (!match(record)) return
          clearTimeout(timer)
          updates.off('update', onUpdate)
          resolve(record)
        }
        const timer = setTimeout(() => {
          updates.off('update', onUpdate)
          reject(new Error(`mock: no request tagged ${JSON.stringify(tag)} matched within ${timeoutMs} ms`))
        }, timeoutMs)
        updates.on('update', onUpdate)
      })
    },
    connections: () => new Promise((resolve, reject) => server.getConnections((err, count) => err === null ? resolve(count) : reject(err))),
    clear () {
      mock.requests.length = 0
      tagCounts.clear()
    },
    async close () {
      const closed = new Promise<void>(resolve => server.close(() => resolve()))
      server.closeAllConnections()
      await closed
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log?.(`mock: ${(err as Error).message}`)
      if (!res.headersSent) res.writeHead(500).end()
      else res.destroy()
    })
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://mock')
    if (url.pathname === '/__mock/requests') return requestsRoute(req, res, url)
    if (req.method === 'GET' && url.pathname === '/v1/models') {
      return json(res, 200, { object: 'list', data: [{ id: 'mock-model', object: 'model', owned_by: 'mock' }] })
    }
    const format = FORMATS[url.pathname]
    if (format === undefined || req.method !== 'POST') {
      return json(res, 404, { error: { message: `mock: no route ${req.method} ${url.pathname}`, type: 'invalid_request_error' } })
    }
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    let body: Record<string, unknown>
    try {
      const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object')
      body = parsed as Record<string, unknown>
    } catch {
      return json(res, 400, { error: { message: 'mock: the body is not a JSON object', type: 'invalid_request_error' } })
    }
    const asked = body.mock !== null && typeof body.mock === 'object' ? body.mock as MockScript : {}
    const script: MockScript = { ...defaults, ...asked }
    let fault = script.fault ?? (script.status !== undefined ? 'status' : undefined)
    if (script.failTimes !== undefined && script.tag !== undefined) {
      const seen = tagCounts.get(script.tag) ?? 0
      tagCounts.set(script.tag, seen + 1)
      fault = seen < script.failTimes ? fault ?? 'status' : undefined
    }
    const record: MockRequestRecord = {
      id: nextId++,
      tag: script.tag,
      path: url.pathname,
      format,
      headers: req.headers,
      body,
      fault,
      status: 200,
      startedAt: Date.now(),
      firstTokenAt: undefined,
      tokensSent: 0,
      completedAt: undefined,
      aborted: false,
      abortedAt: undefined
    }
    mock.requests.push(record)
    updates.emit('update', record)
    const closed = new AbortController()
    let selfDestroyed = false
    res.on('close', () => {
      closed.abort()
      if (!res.writableFinished && !selfDestroyed && record.completedAt === undefined) {
        record.aborted = true
        record.abortedAt = Date.now()
        log?.(`mock: #${record.id}${record.tag === undefined ? '' : ` [${record.tag}]`} client went away after ${record.tokensSent} tokens (${record.abortedAt - record.startedAt} ms): upstream request cancelled`)
        updates.emit('update', record)
      }
    })
    const player = new Player(res, record, script, body, format, closed.signal, () => { selfDestroyed = true }, updates)
    try {
      await player.play(fault)
    } catch (err) {
      if (!closed.signal.aborted) throw err
    }
  }

  function requestsRoute (req: IncomingMessage, res: ServerResponse, url: URL): void {
    if (req.method === 'DELETE') {
      mock.clear()
      res.writeHead(204).end()
      return
    }
    const tag = url.searchParams.get('tag')
    json(res, 200, tag === null ? mock.requests : mock.requests.filter(r => r.tag === tag))
  }

  server.keepAliveTimeout = 30_000
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('mock: no TCP address')
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  mock.port = address.port
  mock.url = `http://${host}:${address.port}/v1`
  return mock
}

function json (res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(value)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

/** Plays one scripted answer onto a response. */
class Player {
  readonly #res: ServerResponse
  readonly #record: MockRequestRecord
  readonly #script: MockScript
  readonly #body: Record<string, unknown>
  readonly #format: MockFormat
  readonly #signal: AbortSignal
  readonly #markDestroyed: () => void
  readonly #updates: EventEmitter
  readonly #wire: Wire
  #ping: NodeJS.Timeout | undefined

  constructor (res: ServerResponse, record: MockRequestRecord, script: MockScript, body: Record<string, unknown>, format: MockFormat, signal: AbortSignal, markDestroyed: () => void, updates: EventEmitter) {
    this.#res = res
    this.#record = record
    this.#script = script
    this.#body = body
    this.#format = format
    this.#signal = signal
    this.#markDestroyed = markDestroyed
    this.#updates = updates
    this.#wire = new Wire(script.quirks)
    signal.addEventListener('abort', () => clearInterval(this.#ping), { once: true })
  }

  async #sleep (ms: number): Promise<void> {
    if (ms > 0) await delay(ms, undefined, { signal: this.#signal })
  }

  #write (text: string | Buffer): boolean {
    if (text === '' || this.#signal.aborted) return true
    return this.#res.write(text)
  }

  #tokenSent (count = 1): void {
    if (this.#record.firstTokenAt === undefined) {
      this.#record.firstTokenAt = Date.now()
      this.#updates.emit('update', this.#record)
    }
    this.#record.tokensSent += count
  }

  #finish (): void {
    clearInterval(this.#ping)
    this.#record.completedAt = Date.now()
    this.#res.end()
    this.#updates.emit('update', this.#record)
  }

  async play (fault: MockFault | undefined): Promise<void> {
    const s = this.#script
    await this.#sleep(s.headersDelayMs ?? 0)
    if (fault === 'status') return this.#statusFault(s.status ?? 500)
    if (fault === 'html') return this.#htmlFault(s.status ?? 502)
    const text = s.text ?? defaultAnswer(this.#body)
    const tokens = Array.isArray(s.tokens) ? s.tokens : tokenize(text)
    const thoughts = Array.isArray(s.reasoningTokens) ? s.reasoningTokens : typeof s.reasoning === 'string' ? tokenize(s.reasoning) : []
    const calls = Array.isArray(s.toolCalls) ? s.toolCalls : []
    const reason = s.finishReason ?? (calls.length > 0 ? 'tool_calls' : 'stop')
    const n = this.#format === 'openai' ? Math.max(1, Math.floor(Number(s.n ?? this.#body.n ?? 1)) || 1) : 1
    const frames = createFrames(this.#format, this.#wire, {
      id: `${this.#format === 'anthropic' ? 'msg' : this.#format === 'openai-responses' ? 'resp' : 'chatcmpl'}_mock_${this.#record.id}`,
      model: typeof this.#body.model === 'string' ? this.#body.model : 'mock-model',
      created: Math.floor(this.#record.startedAt / 1000),
      n,
      promptTokens: promptTokens(this.#body),
      reasoningField: s.reasoningField === 'reasoning' ? 'reasoning' : 'reasoning_content',
      redactedThinking: s.redactedThinking === true
    })
    const counts = { completion: tokens.length + thoughts.length, reasoning: thoughts.length }
    const firstDelay = s.firstTokenDelayMs ?? 200 + Math.round(Math.random() * 400)
    /** The pause before the answer's first token (or tool call) after thinking. */
    const afterThinking = (): number => s.thinkingMs ?? pause(s.tokenDelayMs ?? 0, s.jitterMs ?? 0)
    const raw = Array.isArray(s.rawBase64) ? s.rawBase64.map(b => Buffer.from(b, 'base64')) : s.raw
    if (raw === undefined && (fault === 'json' || (this.#body.stream !== true && s.fast === undefined))) {
      await this.#sleep(firstDelay + (thoughts.length > 0 ? afterThinking() : 0))
      this.#tokenSent(tokens.length + thoughts.length)
      this.#record.completedAt = Date.now()
      return json(this.#res, 200, frames.whole(tokens.join(''), thoughts.join(''), calls, reason, counts))
    }
    this.#res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' })
    this.#res.flushHeaders()
    if (this.#wire.has('bom')) this.#write('\uFEFF')
    if ((s.pingEveryMs ?? 0) > 0) {
      this.#ping = setInterval(() => this.#write(this.#wire.comment('ping')), s.pingEveryMs)
    }
    if (raw !== undefined) return this.#raw(raw, fault === 'stall')
    if (s.fast !== undefined) return this.#fast()
    this.#write(frames.start())
    // Reasoning tokens, then answer tokens: one count for `faultAfterTokens`.
    const faultAt = fault !== undefined && STREAM_FAULTS.has(fault) ? Math.max(0, s.faultAfterTokens ?? 0) : -1
    const nextPause = (): number => pause(s.tokenDelayMs ?? 0, s.jitterMs ?? 0)
    let step = 0
    for (const thought of thoughts) {
      if (step === faultAt) return this.#streamFault(fault as MockFault)
      await this.#sleep(step === 0 ? firstDelay : nextPause())
      for (let k = 0; k < n; k++) this.#write(frames.reasoning(k, thought))
      this.#tokenSent()
      step++
    }
    for (let k = 0; k < n; k++) this.#write(frames.reasoningEnd(k))
    this.#write(frames.answerStart())
    /** The pause before the answer's first piece: after thinking, or before anything at all. */
    const answerDelay = (): number => step === 0 ? firstDelay : thoughts.length > 0 && step === thoughts.length ? afterThinking() : nextPause()
    for (const token of tokens) {
      if (step === faultAt) return this.#streamFault(fault as MockFault)
      await this.#sleep(answerDelay())
      for (let k = 0; k < n; k++) this.#write(frames.token(k, token))
      this.#tokenSent()
      step++
    }
    if (faultAt >= step) return this.#streamFault(fault as MockFault)
    if (calls.length > 0) {
      await this.#sleep(answerDelay())
      for (let k = 0; k < n; k++) this.#write(frames.toolCalls(k, calls))
      this.#tokenSent(calls.length)
    }
    for (let k = 0; k < n; k++) this.#write(frames.finish(k, reason, counts))
    const usage = s.usage ?? (this.#format !== 'openai' || (this.#body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true)
    if (usage) this.#write(frames.usage({ completion: counts.completion * n, reasoning: counts.reasoning * n }))
    this.#write(frames.end())
    this.#finish()
  }

  #statusFault (status: number): void {
    const s = this.#script
    const type = s.errorType ?? (status === 429 ? 'rate_limit_exceeded' : status >= 500 ? 'server_error' : status === 401 ? 'invalid_api_key' : 'invalid_request_error')
    const message = s.errorMessage ?? `mock: scripted ${status}`
    const headers: Record<string, string> = {}
    if (s.retryAfter !== undefined) headers['retry-after'] = String(s.retryAfter)
    if (s.retryAfterMs !== undefined) headers['retry-after-ms'] = String(s.retryAfterMs)
    this.#record.status = status
    this.#record.completedAt = Date.now()
    const body = this.#format === 'anthropic'
      ? { type: 'error', error: { type, message } }
      : { error: { message, type, param: null, code: type } }
    json(this.#res, status, body, headers)
    this.#updates.emit('update', this.#record)
  }

  #htmlFault (status: number): void {
    const title = `${status} ${status === 200 ? 'OK' : 'Bad Gateway'}`
    const page = `<!DOCTYPE html>\n<html><head><title>${title}</title></head><body><center><h1>${title}</h1></center><hr><center>nginx</center></body></html>\n`
    this.#record.status = status
    this.#record.completedAt = Date.now()
    this.#res.writeHead(status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) })
    this.#res.end(page)
    this.#updates.emit('update', this.#record)
  }

  #streamFault (fault: MockFault): void {
    const s = this.#script
    const message = s.errorMessage ?? `mock: scripted ${fault}`
    const wire = this.#wire
    switch (fault) {
      case 'error-data':
        this.#write(wire.event({ error: { message, type: s.errorType ?? 'server_error', param: null, code: null } }))
        break
      case 'error-event':
        this.#write(wire.event({ error: { message, type: s.errorType ?? 'server_error' } }, 'error'))
        break
      case 'llamacpp-error':
        this.#write(wire.lineEnds(`error: ${JSON.stringify({ code: 500, message, type: s.errorType ?? 'server_error' })}\n\n`))
        break
      case 'vllm-error':
        this.#write(wire.event({ object: 'error', message, type: s.errorType ?? 'InternalServerError', param: null, code: 500 }))
        break
      case 'responses-error':
        this.#write(wire.event({ type: 'error', sequence_number: 90, error: { type: s.errorType ?? 'server_error', code: s.errorType ?? 'server_error', message, param: null } }, 'error'))
        break
      case 'responses-failed':
        this.#write(wire.event({ type: 'response.failed', sequence_number: 91, response: { status: 'failed', error: { code: s.errorType ?? 'server_error', message } } }, 'response.failed'))
        break
      case 'anthropic-error':
        this.#write(wire.event({ type: 'error', error: { type: s.errorType ?? 'overloaded_error', message } }, 'error'))
        break
      case 'reset':
        this.#markDestroyed()
        this.#record.completedAt = Date.now()
        this.#reset().catch(() => {})
        return
      case 'stall':
        return
    }
    this.#finish()
  }

  /** Destroys the socket once what was written is on the wire, so the client gets the tokens, then the cut. */
  async #reset (): Promise<void> {
    const socket = this.#res.socket
    if (socket === null) return
    // http responses cork the socket until the next tick; then wait for the kernel to take it all.
    await new Promise(resolve => setImmediate(resolve))
    if (socket.writableLength > 0) await once(socket, 'drain')
    socket.destroy()
    this.#updates.emit('update', this.#record)
  }

  async #raw (chunks: ReadonlyArray<string | Buffer>, stall: boolean): Promise<void> {
    const gap = this.#script.rawDelayMs ?? 0
    for (let i = 0; i < chunks.length; i++) {
      if (i > 0) await (gap > 0 ? this.#sleep(gap) : new Promise(resolve => setImmediate(resolve)))
      if (this.#signal.aborted) return
      this.#write(chunks[i] as string | Buffer)
      this.#tokenSent()
    }
    if (!stall) this.#finish()
  }

  /**
   * Benchmark mode: one pre-rendered chunk per token, batched into few writes, paced (when a rate
   * is set) by sleeping until the next token is due, at least 10 ms, and honouring `drain` so a
   * slow reader slows the mock down.
   */
  async #fast (): Promise<void> {
    const fast = this.#script.fast ?? {}
    const total = Math.max(0, fast.tokens ?? 1000)
    const rate = Math.max(0, fast.tokensPerSecond ?? 0)
    const id = `chatcmpl_mock_${this.#record.id}`
    const head = `data: {"id":"${id}","object":"chat.completion.chunk","created":${Math.floor(this.#record.startedAt / 1000)},"model":"mock-model","choices":[{"index":0,"delta":{"content":"`
    const tail = '"},"finish_reason":null}]}\n\n'
    const fixed = `${head}tok ${tail}`
    const render = fast.timestamps === true
      ? () => `${head}${(performance.timeOrigin + performance.now()).toFixed(3)} ${tail}`
      : () => fixed
    this.#write(`data: {"id":"${id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n`)
    const started = performance.now()
    let sent = 0
    while (sent < total) {
      const due = rate > 0 ? Math.min(total, Math.floor((performance.now() - started) * rate / 1000) + 1) : Math.min(total, sent + 32)
      let batch = ''
      for (; sent < due; sent++) batch += render()
      if (batch !== '') {
        this.#tokenSent(due - this.#record.tokensSent)
        if (!this.#write(batch)) await once(this.#res, 'drain', { signal: this.#signal })
      }
      if (rate > 0 && sent < total) {
        // Sleep until the next token is due (at least one 10 ms tick, so high rates batch): at
        // 5 tokens/s that is one timer per token, not 20 idle 10 ms ticks, which at 10,000
        // streams was a million timer wake-ups a second and made the mock the bottleneck.
        // A plain timer, not #sleep's abortable one: an abort is seen when it fires.
        const wait = Math.max(10, started + sent * 1000 / rate - performance.now())
        await new Promise((resolve) => setTimeout(resolve, wait))
        this.#signal.throwIfAborted()
      }
    }
    this.#write(`data: {"id":"${id}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n`)
    this.#write(`data: {"id":"${id}","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":${total},"total_tokens":${total + 1}}}\n\n`)
    this.#write('data: [DONE]\n\n')
    this.#finish()
  }
}
