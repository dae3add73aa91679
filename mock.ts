/**
 * `fastify-llm-relay/mock`: the embedded OpenAI-compatible mock upstream (a real HTTP server,
 * scriptable per request), for tests and demos without a key.
 *
 * @packageDocumentation
 */
export { startMockUpstream } from './lib/mock/index.js'
export type { MockUpstream, MockUpstreamOptions, MockScript } from './lib/mock/index.js'
