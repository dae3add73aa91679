/**
 * Redis key names. Everything of one journal shares the hash tag `{streamId}`, so its keys sit in
 * one cluster slot and the multi-key scripts (lease check, mark lost) stay valid on a Redis
 * Cluster; the conversation map and the slots are keyed by their own names.
 */
export class RedisKeys {
  constructor (readonly prefix: string) {}

  /** The journal: a stream whose entry ids are `<last journal id>-0` (a batch) or `<last id>-1` (the end marker). */
  log (streamId: string): string {
    return `${this.prefix}{${streamId}}:log`
  }

  /** Hash: kind, owner, conv, createdAt, producer, ended. */
  meta (streamId: string): string {
    return `${this.prefix}{${streamId}}:meta`
  }

  /** The producer's lease: present while the producing instance is alive. */
  lease (streamId: string): string {
    return `${this.prefix}{${streamId}}:lease`
  }

  /** Sorted set of instances reading the journal remotely, scored by when their hold lapses (Redis time). */
  readers (streamId: string): string {
    return `${this.prefix}{${streamId}}:readers`
  }

  /** A conversation's active generation. */
  active (conversationKey: string): string {
    return `${this.prefix}conv:${conversationKey}`
  }

  /** A client's count of running generations. */
  slots (client: string): string {
    return `${this.prefix}slots:${client}`
  }

  /** The pub/sub channel of cancel and supersede. */
  get control (): string {
    return `${this.prefix}control`
  }
}
