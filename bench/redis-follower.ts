/**
 * What following journals produced on another instance costs Redis, per followed event, as the
 * number of followed streams grows; and what a journal costs Redis in memory.
 *
 * `npx tsx bench/redis-follower.ts [--streams=100,1000,5000] [--rate=2000] [--seconds=5]
 * [--topology=standalone|cluster]` (also the `follower` scenario of `npm run bench`).
 *
 * Two stores on a real Redis (a single redis-server, or a 3-master Cluster, on free ports): A
 * produces S journals, B has one reader on each. A appends one token at a time, spread over the
 * journals in turn, at a fixed total rate (events per second, whatever S: the more streams, the
 * fewer events each carries, the hard case for a follower whose cost is per stream). Over the
 * window, Redis's own figures, summed over its masters: `INFO cpu` (the servers' user + system
 * CPU) and `INFO commandstats` (calls and µs per command), divided by the events B's readers
 * received. Memory: `used_memory` after A wrote 200 answers of 200 tokens, per answer and per
 * token.
 *
 * Not a test: numbers depend on the machine (and on whatever else shares its cores).
 */
import type { Cluster, Redis } from 'ioredis'
import { makeEntry } from '../lib/relay/journal.js'
import type { JournalMeta } from '../lib/relay/journal.js'
import { RedisStore } from '../lib/relay/stores/redis.js'
import type { RedisStoreOptions } from '../lib/relay/stores/redis.js'
import { startTopology } from '../test/fixtures/redis-topology.js'
import type { RunningTopology, TopologyName } from '../test/fixtures/redis-topology.js'

const META: JournalMeta = { kind: 'generation', owner: null, createdAt: 0 }
const DATA = JSON.stringify({ type: 'delta', content: ' token' })
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export interface FollowerCost {
  streams: number
  /** Events per second A produced, and B's readers received, over the window. */
  producedPerSecond: number
  deliveredPerSecond: number
  /** Redis's CPU (INFO cpu, all masters) per delivered event, µs. */
  cpuUsPerEvent: number
  /** Every command's time (INFO commandstats, all masters) per delivered event, µs. */
  commandUsPerEvent: number
  /** The costliest commands: calls per second, µs per call, share of the command time. */
  commands: Array<{ command: string, callsPerSecond: number, usPerCall: number, share: number }>
}

export interface JournalMemory {
  /** Redis memory per 200-token answer (meta, stream, notification and expiry overhead included), bytes. */
  bytesPerAnswer: number
  bytesPerToken: number
}

/** The masters of a deployment, as plain connections (INFO is per server). */
async function masters (redis: RunningTopology): Promise<Redis[]> {
  const admin = redis.admin()
  if (redis.name !== 'cluster') return [admin as Redis]
  const cluster = admin as Cluster
  await cluster.ping()
  return cluster.nodes('master')
}

async function infoAll (nodes: Redis[], section: string): Promise<string[]> {
  return await Promise.all(nodes.map(async (node) => await node.info(section)))
}

function cpuUs (infos: string[]): number {
  let us = 0
  for (const info of infos) us += (Number(/^used_cpu_user:([\d.]+)/m.exec(info)?.[1] ?? 0) + Number(/^used_cpu_sys:([\d.]+)/m.exec(info)?.[1] ?? 0)) * 1e6
  return us
}

function commandStats (infos: string[]): Map<string, { calls: number, usec: number }> {
  const stats = new Map<string, { calls: number, usec: number }>()
  for (const info of infos) {
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      const s = stats.get(match[1] as string) ?? { calls: 0, usec: 0 }
      s.calls += Number(match[2])
      s.usec += Number(match[3])
      stats.set(match[1] as string, s)
    }
  }
  return stats
}

function usedMemory (infos: string[]): number {
  return infos.reduce((sum, info) => sum + Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0), 0)
}

let rounds = 0

async function storePair (redis: RunningTopology): Promise<[RedisStore, RedisStore]> {
  const prefix = `bench${rounds++}:`
  const a = new RedisStore({ ...redis.connection, prefix } as RedisStoreOptions)
  const b = new RedisStore({ ...redis.connection, prefix } as RedisStoreOptions)
  await a.waitUntilReady()
  await b.waitUntilReady()
  return [a, b]
}

/** One point: `streams` journals produced on A and read on B, `rate` events a second in all, for `windowMs` after `warmMs`. */
export async function measureFollowerCost (redis: RunningTopology, streams: number, rate: number, windowMs: number, warmMs = 2000): Promise<FollowerCost> {
  const nodes = await masters(redis)
  const [a, b] = await storePair(redis)
  try {
    const keys = Array.from({ length: streams }, (_, i) => `s${i}`)
    const next = new Map<string, number>()
    let produced = 0
    let delivered = 0
    const ends: Array<Promise<void>> = []
    for (const key of keys) {
      await a.create(key, META)
      next.set(key, 1)
      ends.push(new Promise((resolve) => {
        b.subscribe(key, 0, { onEntries: (entries) => { delivered += entries.length }, onEnd: () => resolve() })
      }))
    }
    // The producer: the tokens due by now (at `rate` a second), one each to the next journals in turn.
    const started = performance.now()
    let cursor = 0
    const producer = setInterval(() => {
      const due = Math.floor((performance.now() - started) * rate / 1000)
      for (; produced < due; produced++) {
        const key = keys[cursor] as string
        cursor = (cursor + 1) % keys.length
        const id = next.get(key) as number
        next.set(key, id + 1)
        a.append(key, [makeEntry(id, DATA)])
      }
    }, 5)
    await sleep(warmMs)
    await Promise.all(nodes.map(async (node) => await node.config('RESETSTAT')))
    const cpuBefore = cpuUs(await infoAll(nodes, 'cpu'))
    const producedBefore = produced
    const deliveredBefore = delivered
    const windowStart = performance.now()
    await sleep(windowMs)
    const stats = commandStats(await infoAll(nodes, 'commandstats'))
    const cpu = cpuUs(await infoAll(nodes, 'cpu')) - cpuBefore
    const elapsed = (performance.now() - windowStart) / 1000
    const events = delivered - deliveredBefore
    const producedInWindow = produced - producedBefore
    clearInterval(producer)
    for (const key of keys) a.end(key, 'done')
    await Promise.race([Promise.all(ends), sleep(30_000)])
    let total = 0
    for (const s of stats.values()) total += s.usec
    const round = (n: number): number => Math.round(n * 100) / 100
    return {
      streams,
      producedPerSecond: Math.round(producedInWindow / elapsed),
      deliveredPerSecond: Math.round(events / elapsed),
      cpuUsPerEvent: round(cpu / Math.max(1, events)),
      commandUsPerEvent: round(total / Math.max(1, events)),
      commands: [...stats].map(([command, s]) => ({
        command,
        callsPerSecond: Math.round(s.calls / elapsed),
        usPerCall: round(s.usec / Math.max(1, s.calls)),
        share: Math.round(s.usec / Math.max(1, total) * 1000) / 10
      })).sort((x, y) => y.share - x.share).slice(0, 5)
    }
  } finally {
    await a.close()
    await b.close()
  }
}

/** Redis memory of 200 finished-writing answers of 200 tokens (their meta, stream, expiry), per answer and per token. */
export async function measureJournalMemory (redis: RunningTopology): Promise<JournalMemory> {
  const nodes = await masters(redis)
  const [a, b] = await storePair(redis)
  try {
    const answers = 200
    const tokens = 200
    const before = usedMemory(await infoAll(nodes, 'memory'))
    for (let j = 0; j < answers; j++) await a.create(`m${j}`, META)
    // As an answer is produced: a token per turn per journal, so each flush carries one token.
    for (let id = 1; id <= tokens; id++) {
      for (let j = 0; j < answers; j++) a.append(`m${j}`, [makeEntry(id, DATA)])
      await new Promise((resolve) => setImmediate(resolve))
      if (id % 20 === 0) await sleep(12)
    }
    while (a.pendingEntries > 0) await sleep(10)
    const bytes = usedMemory(await infoAll(nodes, 'memory')) - before
    return { bytesPerAnswer: Math.round(bytes / answers), bytesPerToken: Math.round(bytes / answers / tokens) }
  } finally {
    await a.close()
    await b.close()
  }
}

/** The figures as lines of text. */
export function describeFollowerCost (r: FollowerCost): string[] {
  return [
    `${r.streams.toLocaleString('en')} streams: ${r.deliveredPerSecond} events/s delivered (${r.producedPerSecond} produced); Redis CPU ${r.cpuUsPerEvent} µs/event, command time ${r.commandUsPerEvent} µs/event`,
    ...r.commands.map((c) => `  ${c.command.padEnd(12)} ${String(c.callsPerSecond).padStart(7)}/s × ${String(c.usPerCall).padStart(8)} µs = ${c.share}% of command time`)
  ]
}

if (process.argv[1]?.endsWith('redis-follower.ts') === true) {
  const arg = (name: string, fallback: string): string => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback
  const topology = arg('topology', 'standalone') as TopologyName
  const rate = Number(arg('rate', '2000'))
  const redis = await startTopology(topology)
  try {
    console.log(`follower cost on ${topology}: S streams produced on A and read on B, ${rate} events/s in all, ${arg('seconds', '5')}-s window; node ${process.version}`)
    const points: FollowerCost[] = []
    for (const streams of arg('streams', '100,1000,5000').split(',').map(Number)) {
      const point = await measureFollowerCost(redis, streams, rate, Number(arg('seconds', '5')) * 1000)
      points.push(point)
      for (const line of describeFollowerCost(point)) console.log(line)
    }
    const first = points[0]
    const last = points.at(-1)
    if (first !== undefined && last !== undefined && last !== first) console.log(`ratio ${last.streams} / ${first.streams} streams: ${(last.cpuUsPerEvent / first.cpuUsPerEvent).toFixed(2)}× (CPU), ${(last.commandUsPerEvent / first.commandUsPerEvent).toFixed(2)}× (command time)`)
    const memory = await measureJournalMemory(redis)
    console.log(`memory: ${memory.bytesPerAnswer} bytes per 200-token answer, ${memory.bytesPerToken} bytes per token`)
  } finally {
    await redis.destroy()
  }
  process.exit(0)
}
