/**
 * A ChatGPT-style backend built on the relay in one `register` call — the shape the relay is
 * for. The application owns who the user is (a login that sets a JWT in an httpOnly cookie,
 * with @fastify/jwt and @fastify/cookie), what the model is told (its own system prompt and the
 * user's conversation history, kept by the application) and which model answers; the browser
 * only ever sends the text of its message. The relay streams the answer, and its built-in routes
 * let the same user — and nobody else — resume, attach to and stop it.
 *
 * Run it (the embedded mock answers when UPSTREAM_URL is unset):
 *
 * ```sh
 * npx tsx examples/chat-service.ts
 * curl -c jar -H 'content-type: application/json' -d '{"username":"alice","password":"wonderland"}' localhost:3000/login
 * curl -N -b jar -H 'content-type: application/json' -d '{"content":"Hello"}' localhost:3000/api/conversations/c1/messages
 * ```
 */
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import Fastify from 'fastify'
import type { FastifyInstance, FastifyRequest } from 'fastify'
// In an application: `import llmRelay from 'fastify-llm-relay'`.
import llmRelay from '../index.js'
import type { GenerationResult, UpstreamClientOptions } from '../index.js'

/** Options of {@link buildChatService}. */
export interface ChatServiceOptions {
  /** The upstream the relay calls (the application's key, its model). */
  upstream: UpstreamClientOptions
  /** Signs the session tokens. */
  jwtSecret: string
  /** Users and their passwords (a real service has a user database). */
  users: Record<string, string>
  logger?: boolean
}

/** The application's own system prompt: the browser cannot replace it. */
export const SYSTEM_PROMPT = 'You are the helpful assistant of Example Corp. Answer briefly.'

/** The model this service uses, whatever a browser asks for. */
export const MODEL = 'gpt-4o-mini'

interface Message { role: 'user' | 'assistant', content: string }

const CONVERSATION_ID = /^[A-Za-z0-9_-]{1,64}$/

/** The service: login, the user's conversations, and the relay. */
export async function buildChatService (options: ChatServiceOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false })
  const passwords = hashPasswords(options.users)
  /** Conversation history per user and conversation: the application's own record of what was said. */
  const history = new Map<string, Message[]>()
  const historyOf = (user: string, conversationId: string): Message[] => {
    const key = `${user}\u0000${conversationId}`
    let messages = history.get(key)
    if (messages === undefined) history.set(key, messages = [])
    return messages
  }

  await app.register(fastifyCookie)
  await app.register(fastifyJwt, { secret: options.jwtSecret, cookie: { cookieName: 'session', signed: false } })
  /** The logged-in user, from the session cookie; throws 401 (@fastify/jwt's errors carry the status). */
  const userOf = async (request: FastifyRequest): Promise<string> => (await request.jwtVerify<{ sub: string }>()).sub

  await app.register(llmRelay, {
    upstream: options.upstream,
    // Streams belong to the logged-in user: only they can resume, attach to or stop them.
    identify: async (request) => `user:${await userOf(request)}`,
    // Every generation starts from this application's route below, never with a body the browser wrote.
    routes: { start: false, completions: false, models: false, channels: false },
    hooks: {
      // The answer joins the conversation's history once it is complete.
      onFinish: (result: GenerationResult) => {
        if (result.reason !== 'done' || result.owner === null || result.conversationId === undefined) return
        historyOf(result.owner.slice('user:'.length), result.conversationId).push({ role: 'assistant', content: result.text })
      }
    }
  })

  app.post<{ Body: { username?: unknown, password?: unknown } }>('/login', async (request, reply) => {
    const { username, password } = request.body ?? {}
    if (typeof username !== 'string' || typeof password !== 'string' || !checkPassword(passwords, username, password)) {
      return reply.code(401).send({ error: 'wrong username or password' })
    }
    const token = await reply.jwtSign({ sub: username }, { expiresIn: '1h' })
    return reply.setCookie('session', token, { path: '/', httpOnly: true, sameSite: 'strict' }).send({ user: username })
  })

  app.get<{ Params: { id: string } }>('/api/conversations/:id', async (request, reply) => {
    const user = await userOf(request)
    const key = `${user}\u0000${request.params.id}`
    if (!history.has(key)) return reply.code(404).send({ error: 'no such conversation' })
    return { messages: history.get(key) }
  })

  // The browser sends its message's text; the application builds the whole upstream request.
  app.post<{ Params: { id: string }, Body: { content?: unknown } }>('/api/conversations/:id/messages', async (request, reply) => {
    const user = await userOf(request)
    const { id } = request.params
    const content = request.body?.content
    if (!CONVERSATION_ID.test(id)) return reply.code(400).send({ error: 'bad conversation id' })
    if (typeof content !== 'string' || content.trim() === '' || content.length > 8000) {
      return reply.code(400).send({ error: 'content must be a non-empty string of at most 8000 characters' })
    }
    const messages = historyOf(user, id)
    messages.push({ role: 'user', content })
    const body = {
      model: MODEL,
      messages: [{ role: 'system', content: SYSTEM_PROMPT }, ...messages],
      max_completion_tokens: 1024
    }
    return reply.relay(body, { conversationId: id, owner: `user:${user}` })
  })

  return app
}

/** scrypt hashes of the passwords, made once (a real service stores only these). */
function hashPasswords (users: Record<string, string>): Map<string, { salt: Buffer, hash: Buffer }> {
  const hashes = new Map<string, { salt: Buffer, hash: Buffer }>()
  for (const [name, password] of Object.entries(users)) {
    const salt = randomBytes(16)
    hashes.set(name, { salt, hash: scryptSync(password, salt, 32) })
  }
  return hashes
}

function checkPassword (hashes: Map<string, { salt: Buffer, hash: Buffer }>, name: string, password: string): boolean {
  const known = hashes.get(name)
  if (known === undefined) return false
  return timingSafeEqual(scryptSync(password, known.salt, 32), known.hash)
}

// `npx tsx examples/chat-service.ts`: the service on PORT (3000), with the embedded mock upstream
// unless UPSTREAM_URL is set.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { startMockUpstream } = await import('../mock.js')
  const url = process.env.UPSTREAM_URL ?? (await startMockUpstream()).url
  const app = await buildChatService({
    upstream: { url, apiKey: process.env.UPSTREAM_API_KEY },
    jwtSecret: process.env.JWT_SECRET ?? randomBytes(32).toString('hex'),
    users: { alice: 'wonderland', bob: 'builder' },
    logger: true
  })
  await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
}
