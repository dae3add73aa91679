/**
 * The broadcast peer: better-sse (0.16, Node ≥ 20) with one `Channel` per name. Each subscriber
 * is a better-sse `Session` registered with the channel; the bench's publisher calls
 * `channel.broadcast(data, 'message', { eventId })`, which pushes (and serializes) the event for
 * every session. Same route as the relay's: `GET /v1/channels/:channel/stream`.
 */
import Fastify from 'fastify'
import { createChannel, createSession } from 'better-sse'
import type { Channel } from 'better-sse'
import { serve } from '../servers/harness.js'

const channels = new Map<string, Channel>()
const channelOf = (name: string): Channel => {
  let channel = channels.get(name)
  if (channel === undefined) {
    channel = createChannel()
    channels.set(name, channel)
  }
  return channel
}
const app = Fastify({ logger: false })

app.get<{ Params: { channel: string } }>('/v1/channels/:channel/stream', async (request, reply) => {
  reply.hijack()
  // The relay's defaults: retry 3000 ms, a keep-alive comment every 15 s.
  const session = await createSession(request.raw, reply.raw, { retry: 3000, keepAlive: 15_000 })
  channelOf(request.params.channel).register(session)
})

await serve(app, {
  publish: (channel, data, seq) => { channelOf(channel).broadcast(data, 'message', { eventId: String(seq) }) }
})
