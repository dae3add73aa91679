/**
 * fastify-llm-relay as a library. Two ways in:
 *
 * - the whole service, configured from the environment (CONTRACT.md names):
 *   `const app = await buildApp(); await app.listen({ port: 3000 })`;
 * - the parts, in an application of your own: register {@link ssePlugin} for `reply.sse()`, and
 *   {@link relayPlugin} with a {@link Relay} (an {@link UpstreamClient} plus a store) for the
 *   `/v1/*` routes; {@link Channels} for application events.
 *
 * @packageDocumentation
 */
export { buildApp } from './app.js'
export type { AppOptions } from './app.js'
export { readConfig, ConfigError } from './lib/config.js'
export type { RelayConfig } from './lib/config.js'

// reply.sse()
export { default as ssePlugin, FST_LLM_RELAY_SSE_CONFLICT } from './plugins/sse.js'
export type { ReplySse, SsePluginOptions, SseSource } from './plugins/sse.js'
export { SseStream, SseStreamClosedError, formatEvent } from './lib/sse/index.js'
export type { CloseReason, SseEvent, SseOptions } from './lib/sse/index.js'

// The relay
export { default as relayPlugin } from './plugins/relay.js'
export type { RelayPluginOptions } from './plugins/relay.js'
export type { AuthorizeChannel } from './plugins/channel-routes.js'
export { Relay } from './lib/relay/relay.js'
export type { RelayCoreOptions, StartRequest } from './lib/relay/relay.js'
export type { GenerationResult, RelayHooks, UpstreamStreamer } from './lib/relay/generation.js'
export { RelayError, GenerationStopped, StoreFullError } from './lib/relay/errors.js'
export type { StopReason } from './lib/relay/errors.js'
export type { EndReason, JournalEntry } from './lib/relay/journal.js'
export { Channels } from './lib/relay/channels.js'
export type { ChannelEvent, ChannelsOptions } from './lib/relay/channels.js'
export { RelayMetrics } from './lib/relay/metrics.js'

// Stores
export type { RelayStore, ChannelRetention } from './lib/relay/store.js'
export { MemoryStore } from './lib/relay/stores/memory.js'
export type { MemoryStoreOptions } from './lib/relay/stores/memory.js'
export { RedisStore, StoreUnavailable } from './lib/relay/stores/redis.js'
export type { RedisStoreOptions } from './lib/relay/stores/redis.js'

// The upstream and its stand-in
export { UpstreamClient, UpstreamError } from './lib/upstream/index.js'
export type { ChatRequestBody, UpstreamClientOptions, UpstreamErrorCode, UpstreamEvent, UpstreamFormat } from './lib/upstream/index.js'
export { startMockUpstream } from './lib/mock/index.js'
export type { MockUpstream, MockUpstreamOptions, MockScript } from './lib/mock/index.js'
