import type { StoreLog } from '../../store.js'
import type { Topology } from './connection.js'
import type { Health } from './health.js'
import type { RedisKeys } from './keys.js'
import type { ChainableCommander } from 'ioredis'
import type { Commands } from './scripts.js'

/** What every part of the Redis store shares: the connections, the key names, the health record. */
export interface RedisContext {
  readonly topology: Topology
  readonly cmd: Commands
  readonly keys: RedisKeys
  /** This instance's id: its lease, the producer named in its journals, its slot counts. */
  readonly instanceId: string
  readonly health: Health
  readonly log: StoreLog
  /** How long an ended journal stays readable, in ms. */
  readonly retainMs: number
  /** An instance's lease: others learn of its death within about this. */
  readonly leaseMs: number
}

/** A pipeline's per-command replies as ioredis gives them, or the error that failed it as a whole. */
export type Replies = Array<[Error | null, unknown]>

/**
 * Runs a pipeline: resolves with each command's reply or error (ioredis puts a failed command's
 * error in its reply, e.g. every one of them when the connection is down), rejects only when the
 * pipeline as a whole failed.
 */
export async function run (pipeline: ChainableCommander): Promise<Replies> {
  const replies = await pipeline.exec()
  if (replies === null) throw new Error('transaction aborted')
  return replies
}

/** The first error among replies, if any. */
export function firstError (replies: Replies): Error | undefined {
  for (const [err] of replies) if (err !== null) return err
  return undefined
}

export function noop (): void {}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * The flush and notification group of a journal: its partition on a Cluster (one slot: a
 * pipeline and a notification per group stay on one node), everything on a single master (one
 * pipeline and one notification per flush).
 */
export function groupOf (ctx: RedisContext, streamId: string): number {
  return ctx.topology.cluster ? ctx.keys.partitionOf(streamId) : 0
}

/** Retry delay after `failures` failures in a row: doubling from 100 ms to 2 s, with jitter. */
export function backoffMs (failures: number): number {
  const ms = Math.min(100 * 2 ** Math.max(0, failures - 1), 2000)
  return ms * (0.75 + Math.random() / 2)
}
