/**
 * `fastify-llm-relay/redis`: the Redis store, for resume, stop and supersede across instances.
 * The plugin makes one itself from `redis: 'redis://…'`; import it to make and own it yourself.
 *
 * @packageDocumentation
 */
export { RedisStore, StoreUnavailable } from './lib/relay/stores/redis.js'
export type { RedisStoreOptions } from './lib/relay/stores/redis.js'
