import type { FastifyRequest } from 'fastify'
import { RelayError } from '../lib/relay/errors.js'

/** Conversation ids: what a client can safely pick (and a log line can safely hold). */
const conversationIdSchema = { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' } as const

/**
 * The chat request body: OpenAI Chat Completions parameters plus `conversationId`. Unknown
 * parameters pass through to the upstream (new OpenAI options work without a relay release);
 * the upstream URL and key are never taken from the body, so a client cannot choose them.
 */
export const chatBodySchema = {
  type: 'object',
  required: ['messages'],
  properties: {
    messages: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['role'],
        properties: {
          role: { type: 'string', minLength: 1, maxLength: 64 },
          content: { anyOf: [{ type: 'string' }, { type: 'array' }, { type: 'null' }] }
        }
      }
    },
    model: { type: 'string', minLength: 1, maxLength: 256 },
    conversationId: conversationIdSchema,
    stream: { type: 'boolean' },
    // Choices per answer (OpenAI's own limit): each is a stream the upstream and the relay carry.
    n: { type: 'integer', minimum: 1, maximum: 128 }
  }
} as const

/** How deep a request body may nest (a tool's JSON schema is a few tens of levels at most). */
export const MAX_BODY_DEPTH = 100

/** Whether a parsed JSON value nests deeper than `max` levels (iterative: any depth is safe to check). */
export function nestsDeeperThan (value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]]
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const [node, depth] = item
    if (node === null || typeof node !== 'object') continue
    if (depth > max) return true
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1])
    }
  }
  return false
}

/** Stream ids are 22 base64url characters (128 bits); anything else cannot exist. */
export const streamParamsSchema = {
  type: 'object',
  properties: { streamId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } }
} as const

export const conversationParamsSchema = {
  type: 'object',
  properties: { conversationId: conversationIdSchema }
} as const

/**
 * The id to resume after: the `Last-Event-ID` header (what `EventSource` sends on reconnect)
 * or the `lastEventId` query parameter (for clients that cannot set headers); 0 = from the start.
 */
export function lastEventIdOf (request: FastifyRequest): number {
  const header = request.headers['last-event-id']
  const query = (request.query as Record<string, unknown> | undefined)?.lastEventId
  const raw = typeof header === 'string' && header !== '' ? header : typeof query === 'string' ? query : undefined
  if (raw === undefined) return 0
  if (!/^\d{1,15}$/.test(raw)) throw new RelayError('invalid_last_event_id', 400, 'Last-Event-ID (or lastEventId) must be a non-negative integer event id')
  return Number(raw)
}
