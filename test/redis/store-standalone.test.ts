/**
 * The Redis store on a single redis-server: the store contract (test/fixtures/store-contract.ts),
 * then what only the Redis store does.
 */
import t from 'tap'
import type { Test } from 'tap'
import type { Redis } from 'ioredis'
import { makeEntry } from '../../lib/relay/journal.js'
import type { JournalEntry, JournalMeta } from '../../lib/relay/journal.js'
import { RedisStore } from '../../lib/relay/stores/redis.js'
import type { RedisStoreOptions } from '../../lib/relay/stores/redis.js'
import { NO_SHARDED_PUBSUB } from '../../lib/relay/stores/redis/subscriptions.js'
import { collector } from '../fixtures/journal-collector.js'
import { startRedis } from '../fixtures/redis.js'
import type { RunningRedis } from '../fixtures/redis.js'
import { startTopology } from '../fixtures/redis-topology.js'
import { redisContract, redisPair } from '../fixtures/redis-contract.js'
import { startTcpProxy } from '../fixtures/tcp-proxy.js'
import type { TcpProxy } from '../fixtures/tcp-proxy.js'
import { waitUntil } from '../fixtures/wait.js'

const redis = await startTopology('standalone')
t.teardown(async () => { await redis.destroy() })

redisContract(t, redis)

const META: JournalMeta = { kind: 'generation', owner: 'key:a', conversationId: 'c1', createdAt: 1_700_000_000_000 }
const entry = (id: number): JournalEntry => makeEntry(id, JSON.stringify({ type: 'delta', content: `t${id}` }))
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Calls of each command since the last CONFIG RESETSTAT (INFO commandstats). */
async function commandCalls (admin: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>()
  for (const match of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1] as string, Number(match[2]))
  return calls
}

t.test('local readers are served from memory within the call: no round trip on the producer\'s instance', async (t) => {
  const [a] = await redisPair(t, redis)
  await a.create('s', META)
  a.append('s', [entry(1)])
  const c = collector()
  a.subscribe('s', 0, c)
  t.same(c.entries.map((e) => e.id), [1], 'catch-up delivered before subscribe returned')
  a.append('s', [entry(2)])
  t.same(c.entries.map((e) => e.id), [1, 2], 'live entry delivered before append returned')
})

t.test('journals expire RETAIN_MS after they end; running ones carry an expiry renewed while they run', async (t) => {
  const [a, b] = await redisPair(t, redis, { retainMs: 400, leaseMs: 300, renewMs: 100 })
  const admin = redis.admin() as Redis
  const log = a.keys.log('x')
  const meta = a.keys.meta('x')
  await a.create('x', META)
  a.append('x', [entry(1)])
  await waitUntil(() => a.pendingEntries === 0, 5000, 'the entry written')
  await sleep(50)
  const open = await admin.pttl(log)
  t.ok(open > 0 && open <= 700, `a running journal expires (pttl ${open} ms)`)
  await sleep(1000)
  t.equal(await admin.exists(log, meta), 2, 'still there well past its expiry: renewed while its producer runs')
  a.end('x', 'done')
  await waitUntil(async () => (await b.state('x'))?.ended === 'done', 5000, 'the end written')
  await waitUntil(async () => await admin.exists(log, meta) === 0, 3000, 'the keys to expire')
  t.equal(await b.state('x'), undefined, 'gone from Redis after RETAIN_MS')
  await waitUntil(async () => await a.state('x') === undefined, 3000, 'the producer to forget it')
  t.pass('and from the producer\'s memory')
})

t.test('fails fast with store_unavailable (503) while Redis is unreachable', async (t) => {
  const down = new RedisStore({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 200 })
  t.teardown(async () => { await down.close() })
  t.equal(down.ready, false)
  const started = Date.now()
  await t.rejects(down.create('z', META), { code: 'store_unavailable', status: 503 })
  await t.rejects(down.acquireSlot('c', 1), { code: 'store_unavailable' })
  await t.rejects(down.swapActive('c', 's'), { code: 'store_unavailable' })
  await t.rejects(down.state('z'), { code: 'store_unavailable' })
  await t.rejects(down.publish('channel:z', [{ data: '1' }], { maxEvents: 1, maxAgeMs: 1000 }), { code: 'store_unavailable' })
  t.ok(Date.now() - started < 500, 'at once: no offline queue')
  await down.releaseSlot('c')
  t.pass('a release never fails: it is written when Redis answers')
})

t.test('housekeeping is per instance: following 200 journals costs nothing while they are quiet, and a token one read', async (t) => {
  const renewMs = 100
  const [a, b] = await redisPair(t, redis, { renewMs })
  const admin = redis.admin() as Redis
  const streams = Array.from({ length: 200 }, (_, i) => `q${i}`)
  const readers: Array<ReturnType<typeof collector>> = []
  for (const id of streams) {
    await a.create(id, META)
    const c = collector()
    b.subscribe(id, 0, c)
    readers.push(c)
  }
  await waitUntil(() => b.followed === 200, 5000, 'B to follow all')
  await sleep(300)
  await admin.config('RESETSTAT')
  const quietMs = 1500
  await sleep(quietMs)
  const quiet = await commandCalls(admin)
  const ticks = 2 * quietMs / renewMs
  // Per stream, 200 journals over 30 ticks would be thousands of calls of some command.
  t.ok(Math.max(...quiet.values()) <= 2 * ticks, `at most ${2 * ticks} calls of any command in ${quietMs} ms for 2 instances (${ticks} ticks): ${JSON.stringify(Object.fromEntries(quiet))}`)
  t.ok((quiet.get('evalsha') ?? 0) <= ticks + 2, `one lease script a tick per instance (${quiet.get('evalsha')} for ${ticks} ticks)`)
  t.equal(quiet.get('xread') ?? 0, 0, 'no read while nothing is written')

  await admin.config('RESETSTAT')
  for (const id of streams.slice(0, 3)) a.append(id, [entry(1)])
  await waitUntil(() => readers.slice(0, 3).every((c) => c.entries.length === 1), 5000, 'the three tokens on B')
  const active = await commandCalls(admin)
  t.ok((active.get('xread') ?? 0) <= 2, `${active.get('xread')} XREAD for three tokens written in one flush`)
  t.ok((active.get('xadd') ?? 0) === 3, 'one XADD per journal written')
  t.ok(readers.slice(3).every((c) => c.entries.length === 0), 'the other readers got nothing')
})

t.test('per-client slots of an instance that stopped renewing its lease (crashed) are given back within the lease time', async (t) => {
  const leaseMs = 500
  const [a] = await redisPair(t, redis, { leaseMs, renewMs: 100 })
  // An instance whose lease is renewed once, then never again: as one that crashed.
  const crashed = new RedisStore({ ...redis.connection, prefix: a.keys.prefix, leaseMs, renewMs: 3_600_000 } as RedisStoreOptions)
  t.teardown(async () => { await crashed.close() })
  await crashed.waitUntilReady()
  for (let i = 0; i < 3; i++) t.equal(await crashed.acquireSlot('ip:9', 3), true, `slot ${i + 1} taken on the crashed instance`)
  t.equal(await a.acquireSlot('ip:9', 3), false, 'the client is at its limit')
  const crashedAt = Date.now()
  await waitUntil(async () => await a.acquireSlot('ip:9', 3), 5000, 'the slots of the dead instance to be freed')
  const took = Date.now() - crashedAt
  t.ok(took < 2 * leaseMs + 1000, `the client starts again ${took} ms later (lease ${leaseMs} ms)`)
})

t.test('slot counts Redis dropped (this instance was taken for dead) are written again from its own count', async (t) => {
  const [a, b] = await redisPair(t, redis, { leaseMs: 300, renewMs: 100 })
  const admin = redis.admin() as Redis
  t.equal(await a.acquireSlot('ip:7', 2), true)
  t.equal(await a.acquireSlot('ip:7', 2), true)
  // What another instance does when it takes A for dead: A's count and its lease are gone.
  await admin.hdel(a.keys.slots('ip:7'), a.instanceId)
  await admin.del(a.keys.instances)
  await waitUntil(async () => await admin.hget(a.keys.slots('ip:7'), a.instanceId) === '2', 3000, 'A to write its count again')
  t.equal(await b.acquireSlot('ip:7', 2), false, 'the client is at its limit again')
})

t.test('a slot given back while Redis does not answer is given back once it does', async (t) => {
  const [a, b] = await redisPair(t, redis, { commandTimeoutMs: 200, renewMs: 100 })
  const pid = redis.standalone?.pid as number
  t.equal(await a.acquireSlot('ip:5', 2), true)
  t.equal(await a.acquireSlot('ip:5', 2), true)
  process.kill(pid, 'SIGSTOP')
  try {
    await a.releaseSlot('ip:5')
    await a.releaseSlot('ip:5')
    await sleep(500)
    t.equal(a.ready, false, 'not ready while Redis is hung')
  } finally {
    process.kill(pid, 'SIGCONT')
  }
  await waitUntil(async () => await b.acquireSlot('ip:5', 2) && await b.acquireSlot('ip:5', 2), 5000, 'both slots free on B')
  t.pass('both releases reached Redis once it answered')
})

t.test('a producer taken for dead (its lease lapsed: a paused process) that wakes up appends nothing after the producer_lost end, nor ends the journal again', async (t) => {
  const leaseMs = 500
  const [b] = await redisPair(t, redis, { leaseMs, renewMs: 100 })
  // An instance whose lease is renewed once, then not again for an hour: as a process SIGSTOPped.
  const paused = new RedisStore({ ...redis.connection, prefix: b.keys.prefix, leaseMs, renewMs: 3_600_000 } as RedisStoreOptions)
  t.teardown(async () => { await paused.close() })
  await paused.waitUntilReady()
  await paused.create('g', META)
  paused.append('g', [entry(1), entry(2), entry(3)])
  const reader = collector()
  b.subscribe('g', 0, reader)
  await waitUntil(() => reader.reason !== undefined, 5000, 'B to end the journal of the dead producer')
  t.same(reader.entries.map((e) => e.id), [1, 2, 3])
  t.equal(reader.reason, 'producer_lost')

  // The producer wakes up and goes on as if nothing happened.
  t.equal(paused.append('g', [entry(4), entry(5)]), true, 'its local journal takes them (its local readers are its own)')
  paused.end('g', 'done')
  await waitUntil(() => paused.pendingEntries === 0, 3000, 'the producer to have flushed')
  await sleep(200)
  const admin = redis.admin() as Redis
  const items = await admin.xrange(b.keys.log('g'), '-', '+')
  t.same(items.map(([id]) => id), ['3-0', '3-1'], 'Redis holds the entries up to the end, then the end, and nothing after it')
  t.equal(await admin.hget(b.keys.meta('g'), 'ended'), 'producer_lost', 'and the end readers got')
  t.match(await b.state('g'), { lastId: 3, ended: 'producer_lost' })
  const late = collector()
  b.subscribe('g', 0, late)
  await waitUntil(() => late.reason !== undefined, 5000, 'a late reader to end')
  t.same([late.entries.map((e) => e.id), late.reason], [[1, 2, 3], 'producer_lost'], 'a reader from the start gets what the others got')
})

t.test('a Redis without SSUBSCRIBE (as Redis 6 answers: unknown command): one error line saying Redis 7.0 or later is needed, never ready, starts refused', async (t) => {
  const old = await startRedis({ args: ['--rename-command', 'SSUBSCRIBE', ''] })
  t.teardown(async () => { await old.destroy() })
  const lines: Array<{ level: string, msg: string }> = []
  const store = new RedisStore({ url: old.url, log: (level, msg) => lines.push({ level, msg }) })
  t.teardown(async () => { await store.close() })
  await waitUntil(() => lines.some((line) => line.level === 'error'), 5000, 'an error line')
  await sleep(1500)
  t.same(lines.filter((line) => line.level === 'error').map((line) => line.msg), [NO_SHARDED_PUBSUB], 'one error line, once')
  t.match(NO_SHARDED_PUBSUB, /Redis 7\.0 or later/)
  t.equal(store.ready, false, 'not ready')
  await t.rejects(store.create('g', META), { code: 'store_unavailable', cause: { message: NO_SHARDED_PUBSUB } }, 'a start is refused, saying why')
})

t.test('the count of an instance dead so long ago that it was forgotten is dropped too, though the client\'s hash was kept alive meanwhile', async (t) => {
  // Short remembering: a dead instance is forgotten max(slotTtlMs, retainMs) + leaseMs + 2 renewMs = 2.2 s after its death.
  const options = { leaseMs: 500, renewMs: 100, slotTtlMs: 1500, retainMs: 1000 }
  const [a] = await redisPair(t, redis, options)
  const crashed = new RedisStore({ ...redis.connection, prefix: a.keys.prefix, ...options, renewMs: 3_600_000 } as RedisStoreOptions)
  t.teardown(async () => { await crashed.close() })
  await crashed.waitUntilReady()
  t.equal(await crashed.acquireSlot('ip:11', 3), true)
  t.equal(await crashed.acquireSlot('ip:11', 3), true)
  const admin = redis.admin() as Redis
  const counts = a.keys.slots('ip:11')
  // Nobody of this client starts anything until the dead instance is forgotten, while the hash
  // lives on (as a generation of this client ending elsewhere would renew it).
  const keepAlive = setInterval(() => { void admin.pexpire(counts, 60_000).catch(() => {}) }, 200)
  t.teardown(() => clearInterval(keepAlive))
  await waitUntil(async () => await admin.zscore(a.keys.instances, crashed.instanceId) === null, 10_000, 'the dead instance to be forgotten')
  t.equal(await admin.hget(counts, crashed.instanceId), '2', 'its count is still in the hash')
  const taken = [await a.acquireSlot('ip:11', 3), await a.acquireSlot('ip:11', 3), await a.acquireSlot('ip:11', 3)]
  t.same(taken, [true, true, true], 'the client has its 3 slots: the forgotten instance\'s 2 are not counted')
  t.equal(await admin.hget(counts, crashed.instanceId), null, 'and its count is gone from the hash')
  t.equal(await a.acquireSlot('ip:11', 3), false, 'the limit still holds')
})

/**
 * Store A, and B on the same Redis through a proxy (its reads wait for notifications only, no
 * polling), with every reason B gave for not being ready from then on (numbers as N) and B's log.
 */
async function throughProxy (t: Test): Promise<{ a: RedisStore, b: RedisStore, proxy: TcpProxy, reasons: Set<string>, lines: Array<{ level: string, msg: string }> }> {
  const [a] = await redisPair(t, redis)
  const proxy = await startTcpProxy((redis.nodes[0] as RunningRedis).port)
  t.teardown(async () => { await proxy.close() })
  const lines: Array<{ level: string, msg: string }> = []
  const b = new RedisStore({ url: `redis://127.0.0.1:${proxy.port}`, prefix: a.keys.prefix, pollMs: 600_000, log: (level, msg) => lines.push({ level, msg }) })
  t.teardown(async () => { await b.close() })
  await b.waitUntilReady()
  const reasons = new Set<string>()
  const watch = setInterval(() => { const reason = b.notReady; if (reason !== undefined) reasons.add(reason.replace(/\d+/g, 'N')) }, 20)
  t.teardown(() => { clearInterval(watch) })
  return { a, b, proxy, reasons, lines }
}

t.test('an SSUBSCRIBE never answered on a connection that stays up (replies out of step): not ready, saying so, then a new connection subscribes and notifications flow', async (t) => {
  const { a, b, proxy, reasons } = await throughProxy(t)
  await a.create('m', META)
  a.append('m', [entry(1)])
  await waitUntil(() => a.pendingEntries === 0, 5000, 'the entry written')
  // B's subscriber connection (it subscribed to B's control channel) gets no more replies.
  proxy.mute('ssubscribe')
  const c = collector()
  b.subscribe('m', 0, c)
  await waitUntil(() => c.entries.length === 1, 5000, 'the catch-up, once subscribed on a new connection')
  a.append('m', [entry(2)])
  await waitUntil(() => c.entries.length === 2, 2000, 'a live entry, notified')
  await waitUntil(() => b.ready, 5000, 'B ready again')
  t.same(c.entries.map((e) => e.id), [1, 2], 'each entry once')
  t.ok([...reasons].some((reason) => /^notification channel \S+ is not subscribed yet \(connection to main ready, SSUBSCRIBE sent N ms ago\)$/.test(reason)), 'not ready meanwhile, naming the channel and the unanswered SSUBSCRIBE', { reasons: [...reasons] })
  t.ok([...reasons].some((reason) => reason.includes('Command timed out: SSUBSCRIBE')), 'then the timeout, while the new connection subscribes', { reasons: [...reasons] })
})

t.test('a subscriber connection that stops answering while up (its PINGs unanswered): not ready, saying so, then replaced, and notifications flow on the new one', async (t) => {
  const { a, b, proxy, reasons } = await throughProxy(t)
  proxy.mute('ssubscribe')
  await waitUntil(() => !b.ready, 3000, 'B not ready')
  await waitUntil(() => b.ready, 10_000, 'B ready again, on a new subscriber connection')
  t.ok(reasons.has('N.N.N.N:N has not answered a PING for N ms'), 'not ready meanwhile, naming the silent connection', { reasons: [...reasons] })
  t.ok([...reasons].some((reason) => reason.includes('Command timed out: N.N.N.N:N has not answered a PING')), 'then given up on', { reasons: [...reasons] })
  // The new connection serves notifications: a live entry reaches a reader that waits for them only.
  await a.create('p', META)
  const c = collector()
  b.subscribe('p', 0, c)
  await sleep(300)
  a.append('p', [entry(1)])
  await waitUntil(() => c.entries.length === 1, 2000, 'a live entry, notified on the new connection')
  t.same(c.entries.map((e) => e.id), [1])
})

t.test('the command connection stops answering while up (a connection the network dropped without a word): not ready, saying so, then reconnected, and its commands work again', async (t) => {
  const { a, b, proxy, reasons, lines } = await throughProxy(t)
  // Connections are named in CLIENT SETNAME: `relay-<instance>-cmd`, `-sub` for subscribers.
  t.equal(proxy.mute('-cmd\r\n'), 1, 'one connection muted: B\'s command connection')
  await waitUntil(() => !b.ready, 3000, 'B not ready')
  await waitUntil(() => b.ready, 10_000, 'B ready again, on a new command connection')
  // (ioredis's command timeout, 1 s, rejects each PING before the connection is given up: the
  // silence is counted from the first one all the same.)
  t.ok(reasons.has('N.N.N.N:N has not answered a PING for N ms'), 'not ready meanwhile, naming the silent connection', { reasons: [...reasons] })
  t.ok(reasons.has('the connection to N.N.N.N:N is reconnecting'), 'then given up on: reconnecting', { reasons: [...reasons] })
  t.ok(lines.some((line) => line.level === 'warn' && line.msg.startsWith('Redis command connection answered nothing')), 'the reconnect is logged', { lines })
  // B writes again: a journal it makes is read by A.
  await b.create('q', META)
  b.append('q', [entry(1)])
  await waitUntil(() => b.pendingEntries === 0, 3000, 'B\'s entry written')
  t.equal((await a.state('q'))?.lastId, 1, 'A reads what B wrote after the reconnect')
})
