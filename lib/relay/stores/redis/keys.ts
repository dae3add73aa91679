/**
 * Redis key and channel names, spread over a fixed number of partitions.
 *
 * Every key and sharded channel carries a partition's hash tag (`{…}`), so what one command,
 * script or pipeline of a partition touches sits in one Redis Cluster slot: a journal's stream
 * and meta, the partition's notification channel, a client's slot counts. The tags are chosen so
 * that partition `i` hashes into the `i`-th of `partitions` equal ranges of the 16384 slots:
 * a cluster whose shards own contiguous, equal slot ranges (as `redis-cli --cluster create`
 * makes them) gets an equal share of the partitions, and so of the load.
 *
 * Which partition a name (stream id, channel, client, conversation, instance) belongs to is a
 * hash of the name: the same on every instance, so all instances must use the same `partitions`.
 */

const SLOTS = 16384

/** The key's slot in a Redis Cluster: CRC16 (XMODEM) of the key, or of its hash tag, mod 16384. */
export function keySlot (key: string): number {
  const open = key.indexOf('{')
  if (open >= 0) {
    const close = key.indexOf('}', open + 1)
    if (close > open + 1) key = key.slice(open + 1, close)
  }
  return crc16(Buffer.from(key)) % SLOTS
}

const CRC_TABLE = (() => {
  const table = new Uint16Array(256)
  for (let i = 0; i < 256; i++) {
    let crc = i << 8
    for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000) !== 0 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    table[i] = crc
  }
  return table
})()

function crc16 (bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (CRC_TABLE[((crc >> 8) ^ byte) & 0xff] as number)
  return crc
}

/**
 * The hash tags of `count` partitions: the first base-36 counter string whose slot falls in
 * each partition's range. Deterministic, so every instance computes the same tags.
 */
export function partitionTags (count: number): string[] {
  const tags = new Array<string | undefined>(count)
  let found = 0
  for (let n = 0; found < count; n++) {
    const candidate = n.toString(36)
    const partition = Math.floor(keySlot(candidate) * count / SLOTS)
    if (tags[partition] === undefined) {
      tags[partition] = candidate
      found++
    }
  }
  return tags as string[]
}

/** FNV-1a, 32 bits: a cheap, stable spread of names over partitions. */
function hash (name: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** Key names of one deployment (one prefix, one partition count). */
export class RedisKeys {
  readonly prefix: string
  readonly partitions: number
  readonly #tags: string[]

  constructor (prefix: string, partitions: number) {
    if (prefix.includes('{') || prefix.includes('}')) throw new TypeError('RedisStore: prefix must not contain "{" or "}" (it would change the keys\' hash slot)')
    if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > SLOTS) throw new TypeError(`RedisStore: partitions must be a whole number from 1 to ${SLOTS} (got ${String(partitions)})`)
    this.prefix = prefix
    this.partitions = partitions
    this.#tags = partitionTags(partitions)
  }

  /** The partition of a name. */
  partitionOf (name: string): number {
    return hash(name) % this.partitions
  }

  /** `<prefix>{<tag>}:` of a partition: the start of every key in it. */
  #base (partition: number): string {
    return `${this.prefix}{${this.#tags[partition] as string}}:`
  }

  /** The journal: a stream whose entry ids are `<last journal id>-0` (a batch) or `<last id>-1` (the end marker). */
  log (streamId: string): string {
    return `${this.#base(this.partitionOf(streamId))}${streamId}:log`
  }

  /** Hash: kind, owner, conv, createdAt, producer (instance id), ended, stop (a cancel not yet heard), lastId (channels). */
  meta (streamId: string): string {
    return `${this.#base(this.partitionOf(streamId))}${streamId}:meta`
  }

  /** Sharded channel: the ids of the journals of a partition that got entries or ended. */
  notify (partition: number): string {
    return `${this.#base(partition)}notify`
  }

  /** A conversation's active generation. */
  active (conversationKey: string): string {
    return `${this.#base(this.partitionOf(conversationKey))}conv:${conversationKey}`
  }

  /** Hash: instance id → that instance's count of a client's running generations. */
  slots (client: string): string {
    return `${this.#base(this.partitionOf(client))}slots:${client}`
  }

  /** Hash: instance id → when it last wrote its count of a client's generations (Redis clock, ms); beside {@link slots}, same slot. */
  slotTimes (client: string): string {
    return `${this.#base(this.partitionOf(client))}slots:${client}:t`
  }

  /** Sorted set of the instances, scored by when their lease ends (Redis clock). */
  get instances (): string {
    return `${this.#base(this.partitionOf('instances'))}instances`
  }

  /** Sharded channel of one instance: cancel, supersede, hold and unhold of the journals it produces. */
  control (instanceId: string): string {
    return `${this.#base(this.partitionOf(instanceId))}control:${instanceId}`
  }
}
