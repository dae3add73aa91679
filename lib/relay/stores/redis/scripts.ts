import type { ChainableCommander, Cluster, Redis } from 'ioredis'

/** `now` in ms by the Redis clock (one clock for every instance: no skew between them). */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

/**
 * The few operations that must be atomic in Redis, as Lua. ioredis sends them by EVALSHA and
 * falls back to EVAL after a restart (or a failover) emptied the script cache. Each touches keys
 * of one partition only (see keys.ts), so they stay valid on a Redis Cluster.
 */
const SCRIPTS = {
  /** Clears a conversation's active generation only if it is still the given one (compare and delete). */
  relayClearActive: {
    numberOfKeys: 1,
    lua: `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`
  },
  /**
   * KEYS: a client's slot counts (instance → count), and when each instance wrote its count.
   * ARGV: max, this instance, its count with the new slot, ttl ms, stale ms, how many dead
   * instances follow, the instances known to have died, then those known to live. Forgets the
   * counts of dead instances (a crash locks no client out beyond the instances' lease time), and
   * of instances known neither way whose count is older than `stale ms` (dead so long ago they
   * were forgotten: their count must not outlive them), then takes the slot if the other
   * instances' counts and this one's new count fit under max. Returns 1 or 0.
   */
  relayAcquireSlot: {
    numberOfKeys: 2,
    lua: `${NOW}
local known = {}
local nDead = tonumber(ARGV[6])
for i = 7, #ARGV do known[ARGV[i]] = (i < 7 + nDead) and 'dead' or 'live' end
local counts = redis.call('HGETALL', KEYS[1])
local used = 0
for i = 1, #counts, 2 do
  local instance = counts[i]
  if instance ~= ARGV[2] then
    local gone = known[instance] == 'dead'
    if known[instance] == nil and ARGV[5] ~= '-1' then gone = now - tonumber(redis.call('HGET', KEYS[2], instance) or '0') > tonumber(ARGV[5]) end
    if gone then
      redis.call('HDEL', KEYS[1], instance)
      redis.call('HDEL', KEYS[2], instance)
    else used = used + tonumber(counts[i + 1]) end
  end
end
if used + tonumber(ARGV[3]) > tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[2], now)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1`
  },
  /**
   * KEYS: a client's slot counts, and their times (see relayAcquireSlot). ARGV: this instance,
   * its count, ttl ms. Writes this instance's count (and its time), or removes it at 0.
   */
  relaySetSlotCount: {
    numberOfKeys: 2,
    lua: `if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 0
end
${NOW}
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1`
  },
  /**
   * KEYS: meta, log; ARGV: retention ms, reason, lostOnly. Ends a journal in Redis (end marker
   * after its last entry, `ended` in meta, retention expiry) unless it has ended already. With
   * lostOnly = 1 (its producer instance died) channels, which have no producer, are left open.
   * The stream's last id is then set to the highest there is, so nothing can be added after the
   * end: a producer taken for dead (its lease lapsed: a paused process) that wakes up gets an
   * error for its writes (see isClosedStream in codec.ts) instead of appending after the end its
   * readers got, and its own end does not replace this one (it is written with HSETNX).
   * Returns the reason the journal ended with, `gone` when it is unknown (expired), or false.
   */
  relayEnd: {
    numberOfKeys: 2,
    lua: `if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
local ended = redis.call('HGET', KEYS[1], 'ended')
if ended then return ended end
if ARGV[3] == '1' and redis.call('HGET', KEYS[1], 'kind') == 'channel' then return false end
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
local last = '0'
if top then
  local ms, seq = string.match(top[1], '^(%d+)%-(%d+)$')
  if seq ~= '0' then return top[2][2] end
  last = ms
end
redis.call('XADD', KEYS[2], last .. '-1', 'end', ARGV[2])
redis.call('XSETID', KEYS[2], '18446744073709551615-18446744073709551615')
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
${NOW}
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
   * KEYS: meta, log; ARGV: last id read, ttl ms. Seeds a channel that Redis lost (restarted
   * empty) again from what a reading instance knows: its id counter continues after the last id
   * read, so readers (whose live read continues after that id) miss nothing published next.
   * Never lowers the counter. Returns 1 when it raised it.
   */
  relayReseedChannel: {
    numberOfKeys: 2,
    lua: `${NOW}
if redis.call('HSETNX', KEYS[1], 'kind', 'channel') == 1 then redis.call('HSET', KEYS[1], 'createdAt', now) end
local raised = 0
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'lastId') or '0') then
  redis.call('HSET', KEYS[1], 'lastId', ARGV[1])
  raised = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return raised`
  },
  /**
   * KEYS: meta; ARGV: cancelled or superseded. Notes the stop in a running journal's meta (its
   * producer applies it should it miss the control message), and returns the producer instance.
   */
  relayStop: {
    numberOfKeys: 1,
    lua: `if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return false end
redis.call('HSET', KEYS[1], 'stop', ARGV[1])
return redis.call('HGET', KEYS[1], 'producer')`
  },
  /**
   * KEYS: the instances (sorted set, scored by lease end). ARGV: this instance, lease ms, forget
   * ms, `leave` (1: this instance is going away, its lease ends now). Renews this instance's
   * lease, forgets instances dead for longer than `forget ms`, and returns what this instance's
   * lease was (1: running, 0: it had lapsed, -1: unknown: new, or Redis lost it), the live
   * instances and the dead ones.
   */
  relayInstances: {
    numberOfKeys: 1,
    lua: `${NOW}
local previous = redis.call('ZSCORE', KEYS[1], ARGV[1])
local was = -1
if previous then was = (tonumber(previous) >= now) and 1 or 0 end
if ARGV[4] == '1' then redis.call('ZADD', KEYS[1], now - 1, ARGV[1]) else redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[3])))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return { was, redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf'), redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now) }`
  }
} as const

type Arg = string | number

/** The script commands on a connection (ioredis adds them at runtime by {@link defineScripts}). */
export interface ScriptCommands {
  relayClearActive (key: string, streamId: string): Promise<number>
  relayAcquireSlot (counts: string, times: string, max: Arg, instance: string, count: Arg, ttlMs: Arg, staleMs: Arg, deadCount: Arg, ...deadThenLive: string[]): Promise<number>
  relaySetSlotCount (counts: string, times: string, instance: string, count: Arg, ttlMs: Arg): Promise<number>
  relayEnd (meta: string, log: string, retainMs: Arg, reason: string, lostOnly: 0 | 1): Promise<string | null>
  relayPublish (meta: string, log: string, ...args: Arg[]): Promise<[number, number]>
  relayReseedChannel (meta: string, log: string, lastId: Arg, ttlMs: Arg): Promise<number>
  relayInstances (key: string, instance: string, leaseMs: Arg, forgetMs: Arg, leave: 0 | 1): Promise<[number, string[], string[]]>
  relayStop (meta: string, action: string): Promise<string | null>
}

/** The same commands queued on a pipeline. */
export interface ScriptPipeline extends ChainableCommander {
  relayEnd (meta: string, log: string, retainMs: Arg, reason: string, lostOnly: 0 | 1): ScriptPipeline
  relayPublish (meta: string, log: string, ...args: Arg[]): ScriptPipeline
  relayReseedChannel (meta: string, log: string, lastId: Arg, ttlMs: Arg): ScriptPipeline
}

/** The command connection, typed with the scripts. */
export type Commands = (Redis | Cluster) & ScriptCommands

/** Adds the scripts to a connection and returns it typed with them. */
export function defineScripts (redis: Redis | Cluster): Commands {
  for (const [name, definition] of Object.entries(SCRIPTS)) redis.defineCommand(name, definition)
  return redis as Commands
}

/** A pipeline of the command connection, typed with the scripts. */
export function pipelineOf (cmd: Commands): ScriptPipeline {
  return cmd.pipeline() as ScriptPipeline
}
