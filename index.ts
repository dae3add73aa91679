/**
 * fastify-llm-relay: relays streaming LLM answers to typewriter chat clients over SSE — resumable,
 * stoppable, multi-instance. The plugin in one call:
 *
 * ```ts
 * import llmRelay from 'fastify-llm-relay'
 * await app.register(llmRelay, { upstream: { url: 'https://api.openai.com/v1', apiKey } })
 * app.post('/api/chat', async (request, reply) => reply.relay(await buildPrompt(request), { conversationId, owner }))
 * ```
 *
 * Other entry points load only what they name: `fastify-llm-relay/sse` (`reply.sse()` alone),
 * `/redis` (the Redis store), `/mock` (the mock upstream), `/service` (the ready-to-run service).
 *
 * @packageDocumentation
 */
export { llmRelay, llmRelay as default } from './plugins/llm-relay.js'
export type { LlmRelayOptions, PrepareRequest, RouteOptions } from './plugins/options.js'
export type { RelayReplyOptions } from './plugins/responder.js'
export { bearerKeys } from './plugins/identify.js'
export type { Identify } from './plugins/identify.js'
export type { AuthorizeChannel } from './plugins/channel-routes.js'
export type { StreamObserver } from './plugins/relay-http.js'
export { SSE_CONNECTION_ROUTE, ConnectionLimiter } from './plugins/connection-limit.js'

// The core, for applications that compose it themselves or read its types
export { Relay } from './lib/relay/relay.js'
export type { RelayCoreOptions, StartRequest } from './lib/relay/relay.js'
export type { Generation, GenerationInfo, GenerationResult, RelayHooks, UpstreamStreamer } from './lib/relay/generation.js'
export { RelayError, GenerationStopped, StoreFullError } from './lib/relay/errors.js'
export type { RelayErrorCode, StopReason } from './lib/relay/errors.js'
export type { RequestPolicy } from './lib/relay/request-policy.js'
export type { EndReason, JournalEntry, JournalListener, JournalMeta, Unsubscribe } from './lib/relay/journal.js'
export type { AssembledChoice, AssembledToolCall, Usage } from './lib/relay/answer.js'
export { Channels } from './lib/relay/channels.js'
export type { ChannelEvent, ChannelsOptions } from './lib/relay/channels.js'
export { RelayMetrics } from './lib/relay/metrics.js'
export type { GenerationObserver, ResumeVia } from './lib/relay/metrics.js'
export type { GenerationSummary } from './lib/relay/generation-report.js'
export type { RelayStore, ChannelRetention, StoreLog } from './lib/relay/store.js'
export { MemoryStore } from './lib/relay/stores/memory.js'
export type { MemoryStoreOptions } from './lib/relay/stores/memory.js'

// The upstream
export { UpstreamClient, UpstreamError } from './lib/upstream/index.js'
export type { ChatRequestBody, StreamOptions, UpstreamClientOptions, UpstreamErrorCode, UpstreamEvent, UpstreamFormat, UpstreamModel, UpstreamReport } from './lib/upstream/index.js'
