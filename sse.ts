/**
 * `fastify-llm-relay/sse`: `reply.sse()` alone — a server-sent events writer for any stream, with
 * backpressure, heartbeats and a clean close, and nothing of the relay.
 *
 * ```ts
 * import sse from 'fastify-llm-relay/sse'
 * await app.register(sse)
 * app.get('/clock', async (request, reply) => reply.sse(ticks()))
 * ```
 *
 * @packageDocumentation
 */
export { default, ssePlugin, FST_LLM_RELAY_SSE_CONFLICT } from './plugins/sse.js'
export type { ReplySse, SsePluginOptions, SseSource } from './plugins/sse.js'
export { SseStream, SseStreamClosedError, formatEvent } from './lib/sse/index.js'
export type { CloseReason, SseEvent, SseOptions, StreamEndReason } from './lib/sse/index.js'
