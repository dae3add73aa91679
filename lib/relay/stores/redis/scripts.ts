import type { ChainableCommander, Redis } from 'ioredis'

/**
 * The few operations that must be atomic in Redis, as Lua. ioredis sends them by EVALSHA and
 * falls back to EVAL after a restart emptied the script cache. Each touches keys of one hash tag
 * only (or one key), so they stay valid on a Redis Cluster.
 */
const SCRIPTS = {
  /** Clears a conversation's active generation only if it is still the given one (compare and delete). */
  relayClearActive: {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`
  },
  /**
   * Takes a slot if fewer than ARGV[1] are taken. The expiry (ARGV[2] ms, renewed on every take) is
   * a safety net only: slots of an instance that died are never given back otherwise.
   */
  relayAcquireSlot: {
    numberOfKeys: 1,
    lua: `local n = redis.call('INCR', KEYS[1])
if n > tonumber(ARGV[1]) then
  if n <= 1 then redis.call('DEL', KEYS[1]) else redis.call('DECR', KEYS[1]) end
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`
  },
  /** Gives a slot back, never below zero (the counter may have expired meanwhile). */
  relayReleaseSlot: {
    numberOfKeys: 1,
    lua: `local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n <= 1 then redis.call('DEL', KEYS[1]) else redis.call('DECR', KEYS[1]) end
return 0`
  },
  /**
   * KEYS: meta, log, lease; ARGV: retention ms, reason, onlyIfLost. Ends a journal in Redis (end
   * marker after its last entry, `ended` in meta, retention expiry) unless it has ended already.
   * With onlyIfLost = 1 it does so only when the producer's lease is gone (a generation whose
   * instance died: every reader everywhere then gets the same `producer_lost` through the stream);
   * channels have no producer and are never lost. Returns the reason the journal ended with,
   * `gone` when it is unknown (expired), or false while it goes on.
   */
  relayEnd: {
    numberOfKeys: 3,
    lua: `if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
local ended = redis.call('HGET', KEYS[1], 'ended')
if ended then return ended end
if ARGV[3] == '1' then
  if redis.call('HGET', KEYS[1], 'kind') == 'channel' then return false end
  if redis.call('EXISTS', KEYS[3]) == 1 then return false end
end
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
local last = '0'
if top then
  local ms, seq = string.match(top[1], '^(%d+)%-(%d+)$')
  if seq ~= '0' then return top[2][2] end
  last = ms
end
redis.call('XADD', KEYS[2], last .. '-1', 'end', ARGV[2])
redis.call('HSET', KEYS[1], 'ended', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return ARGV[2]`
  },
  /**
   * KEYS: meta, log; ARGV: maxEvents, maxAgeMs, ttlMs, then (event name or '', data) pairs.
   * Appends events to a channel, made on first use, with the next consecutive ids — atomically,
   * so instances publishing at once never share an id. One stream entry per call, with a `t`
   * field (publish time, Redis clock) that age trimming reads. Trims by count (MINID) and age,
   * and renews the channel's expiry. Returns the first and last id.
   */
  relayPublish: {
    numberOfKeys: 2,
    lua: `if redis.call('HGET', KEYS[1], 'ended') then return redis.error_reply('CLOSED the channel is closed') end
local n = (#ARGV - 3) / 2
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HSETNX', KEYS[1], 'kind', 'channel') == 1 then redis.call('HSET', KEYS[1], 'createdAt', now) end
local last = redis.call('HINCRBY', KEYS[1], 'lastId', n)
local first = last - n + 1
local fields = { 't', tostring(now) }
for i = 0, n - 1 do
  local field = tostring(first + i)
  local name = ARGV[4 + 2 * i]
  if name ~= '' then field = field .. '\\n' .. name end
  fields[#fields + 1] = field
  fields[#fields + 1] = ARGV[5 + 2 * i]
end
redis.call('XADD', KEYS[2], last .. '-0', unpack(fields))
local maxEvents = tonumber(ARGV[1])
if last > maxEvents then redis.call('XTRIM', KEYS[2], 'MINID', (last - maxEvents + 1) .. '-0') end
local oldest = now - tonumber(ARGV[2])
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 64)
for _, item in ipairs(head) do
  if tonumber(item[2][2]) >= oldest then
    redis.call('XTRIM', KEYS[2], 'MINID', item[1])
    break
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return { first, last }`
  },
  /**
   * Announces a remote reader (member ARGV[1]) until ARGV[2] ms from now. Scored by the Redis
   * clock, not the instance's, so clock skew between instances cannot fake or hide a reader.
   */
  relayHoldReaders: {
    numberOfKeys: 1,
    lua: `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`
  },
  /**
   * KEYS: meta, log; ARGV: last id read, ttl ms. Seeds a channel that Redis lost (restarted
   * empty) again from what a reading instance knows: its id counter continues after the last id
   * read, so readers (whose live read continues after that id) miss nothing published next.
   * Never lowers the counter. Returns 1 when it raised it.
   */
  relayReseedChannel: {
    numberOfKeys: 2,
    lua: `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HSETNX', KEYS[1], 'kind', 'channel') == 1 then redis.call('HSET', KEYS[1], 'createdAt', now) end
local raised = 0
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'lastId') or '0') then
  redis.call('HSET', KEYS[1], 'lastId', ARGV[1])
  raised = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return raised`
  },
  /** Counts the remote readers whose hold has not lapsed (Redis clock). */
  relayCountReaders: {
    numberOfKeys: 1,
    readOnly: true,
    lua: `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], now, '+inf')`
  }
} as const

type Arg = string | number

/** The script commands on a connection (ioredis adds them at runtime by {@link defineScripts}). */
export interface ScriptCommands {
  relayClearActive (key: string, streamId: string): Promise<number>
  relayAcquireSlot (key: string, max: Arg, ttlMs: Arg): Promise<number>
  relayReleaseSlot (key: string): Promise<number>
  relayEnd (meta: string, log: string, lease: string, retainMs: Arg, reason: string, onlyIfLost: 0 | 1): Promise<string | null>
  relayPublish (meta: string, log: string, ...args: Arg[]): Promise<[number, number]>
  relayReseedChannel (meta: string, log: string, lastId: Arg, ttlMs: Arg): Promise<number>
  relayHoldReaders (key: string, member: string, ttlMs: Arg): Promise<number>
  relayCountReaders (key: string): Promise<number>
}

/** The same commands queued on a pipeline. */
export interface ScriptPipeline {
  relayEnd (meta: string, log: string, lease: string, retainMs: Arg, reason: string, onlyIfLost: 0 | 1): ChainableCommander
  relayReseedChannel (meta: string, log: string, lastId: Arg, ttlMs: Arg): ChainableCommander
  relayHoldReaders (key: string, member: string, ttlMs: Arg): ChainableCommander
}

/** Adds the scripts to a connection and returns it typed with them. */
export function defineScripts (redis: Redis): Redis & ScriptCommands {
  for (const [name, definition] of Object.entries(SCRIPTS)) redis.defineCommand(name, definition)
  return redis as Redis & ScriptCommands
}
