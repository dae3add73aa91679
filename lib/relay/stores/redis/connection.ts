import { Cluster, Redis } from 'ioredis'
import type { RedisOptions } from 'ioredis'

/** One `host:port`. */
export interface RedisNodeAddress {
  host: string
  port: number
}

/**
 * Where the store's Redis (or Valkey) is: one server by URL (`REDIS_URL`), a Cluster by its seed
 * nodes (`REDIS_CLUSTER_NODES`), or the master a set of Sentinels names (`REDIS_SENTINELS`,
 * `REDIS_SENTINEL_NAME`). `password` (`REDIS_PASSWORD`) is the data nodes' password; a URL may
 * carry its own instead.
 */
export type RedisConnection =
  | { url: string, password?: string | undefined }
  | { cluster: readonly RedisNodeAddress[], password?: string | undefined }
  | { sentinels: readonly RedisNodeAddress[], name: string, password?: string | undefined }

/** The connections of one store, whatever the topology. */
export interface Topology {
  /** A Redis Cluster: keys of different slots go to different nodes. */
  readonly cluster: boolean
  /**
   * Commands of every part of the store: no offline queue and a command timeout, so a request
   * fails fast while Redis is away instead of waiting for it. On a Cluster, commands and
   * single-partition pipelines are routed to the node of their slot.
   */
  readonly cmd: Redis | Cluster
  /** The node serving a slot now (`host:port`); one fixed name when there is one master. */
  nodeOf (slot: number): string | undefined
  /** A new connection for sharded subscriptions to `node` (a name given by {@link nodeOf}). */
  subscriber (node: string, name: string): Redis
  /** The masters' connections, for health probes. */
  masters (): Redis[]
  /** Asks a Cluster for its map of slots again (a node was lost, a slot moved). */
  refresh (): void
}

/** Options every connection gets. */
export interface ConnectOptions {
  /** Names the connections in `CLIENT LIST`. */
  name: string
  commandTimeoutMs: number
  /** Extra ioredis options (TLS, …) for every connection to a data node. */
  extra?: RedisOptions | undefined
}

/** The node name of a topology with a single master. */
const MAIN = 'main'

/** Opens the command connection of a topology; subscribers are opened on demand. */
export function openTopology (connection: RedisConnection, options: ConnectOptions): Topology {
  const base: RedisOptions = {
    // Reconnect quickly and forever: an outage ends when Redis is back, not when we gave up.
    retryStrategy: (times) => Math.min(100 * times, 1000),
    maxRetriesPerRequest: null,
    // A master demoted by a failover answers writes with READONLY: reconnect (to the new one).
    reconnectOnError: (err) => err.message.startsWith('READONLY') ? 2 : false,
    ...options.extra
  }
  if (connection.password !== undefined) base.password = connection.password
  const commandOptions: RedisOptions = {
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs,
    // A command in flight when the connection broke fails (here, by its timeout) instead of being
    // sent again on the new connection, maybe to a new master lacking what came before it: the
    // writer must see the break and check what Redis holds before it writes on.
    autoResendUnfulfilledCommands: false,
    connectionName: `${options.name}-cmd`
  }

  if ('cluster' in connection) {
    const cmd = new Cluster(connection.cluster.map(({ host, port }) => ({ host, port })), {
      redisOptions: { ...base, ...commandOptions },
      enableOfflineQueue: false,
      clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
      // Likewise: a lost node or a cluster in transition fails the command (the store retries
      // with backoff, after checking), rather than ioredis sending it again to the new master.
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      // The map is asked for every second by the timer below, not by ioredis's own
      // (`slotsRefreshInterval`): a refresh in flight when quit() is called re-arms ioredis's
      // timer as it completes, and the closed client then asks on, and keeps the process
      // alive, forever (ioredis 5.11).
      slotsRefreshInterval: 0,
      slotsRefreshTimeout: options.commandTimeoutMs
    })
    // A failover is noticed by a failed command (MOVED, a lost node); the map is also asked for
    // every second (one CLUSTER SLOTS per instance): an instance that sends nothing to a moved
    // slot learns of it so, and its notification channels follow within that (should the old
    // node's own notice, an sunsubscribe, be lost in ioredis, see subscriptions.ts).
    const refresher = setInterval(() => { if (cmd.status === 'ready') cmd.refreshSlotsCache() }, 1000).unref()
    cmd.once('end', () => { clearInterval(refresher) })
    return {
      cluster: true,
      cmd,
      nodeOf: (slot) => cmd.slots[slot]?.[0],
      subscriber: (node, name) => {
        const colon = node.lastIndexOf(':')
        return new Redis({ ...base, host: node.slice(0, colon), port: Number(node.slice(colon + 1)), autoResubscribe: false, connectionName: `${options.name}-${name}` })
      },
      masters: () => cmd.nodes('master'),
      refresh: () => { cmd.refreshSlotsCache() }
    }
  }

  const open = (more: RedisOptions): Redis => 'url' in connection
    ? new Redis(connection.url, { ...base, ...more })
    : new Redis({
      ...base,
      ...more,
      sentinels: connection.sentinels.map(({ host, port }) => ({ host, port })),
      name: connection.name,
      // A failover is noticed when the old master's connection breaks, or it answers READONLY
      // (above). (ioredis's `failoverDetector` would hear it from the Sentinels sooner, but its
      // connections to them outlive the store's: a closed store kept reconnecting.)
      sentinelRetryStrategy: (times) => Math.min(100 * times, 1000)
    })
  const cmd = open(commandOptions)
  return {
    cluster: false,
    cmd,
    nodeOf: () => MAIN,
    subscriber: (_node, name) => open({ autoResubscribe: false, connectionName: `${options.name}-${name}` }),
    masters: () => [cmd],
    refresh: () => {}
  }
}
