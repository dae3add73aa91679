import { exactlyOnce } from './journal.js'
import type { JournalListener, Unsubscribe } from './journal.js'
import type { ChannelEventInput, ChannelRetention, RelayStore } from './store.js'

/** One event an application publishes. */
export interface ChannelEvent {
  /** Any JSON-serializable value; readers get it as one line of JSON. */
  data: unknown
  /** The SSE `event:` name (letters, digits, `_.:-`; not `close` or `error`); a plain message when absent. */
  event?: string
}

/** Options of {@link Channels}. */
export interface ChannelsOptions {
  store: RelayStore
  /** Retention of every channel. @default { maxEvents: 1000, maxAgeMs: 300000 } */
  retention?: Partial<ChannelRetention>
}

/** Channel names: safe in a URL path, a Redis key and a log line. */
const NAME = /^[A-Za-z0-9_.:-]{1,128}$/
const EVENT_NAME = /^[A-Za-z0-9_.:-]{1,64}$/
/** Names the stream format already gives a meaning: an application may not forge them. */
const RESERVED = new Set(['close', 'error'])
/** Channel journals live beside generation journals: a prefix keeps the two apart. */
const PREFIX = 'channel:'

/**
 * Channels: journals any part of an application (or another service, over HTTP) publishes to,
 * read like a generation — from `Last-Event-ID`, exactly once, on any instance. Publishing to a
 * channel nobody reads is one append; the events wait for late readers within the retention.
 */
export class Channels {
  readonly retention: ChannelRetention
  private readonly store: RelayStore

  /** @throws {TypeError} naming a retention limit that is not a positive whole number. */
  constructor (options: ChannelsOptions) {
    this.store = options.store
    // Field by field: a limit given as `undefined` takes its default too.
    this.retention = {
      maxEvents: positive('retention.maxEvents', options.retention?.maxEvents ?? 1000),
      maxAgeMs: positive('retention.maxAgeMs', options.retention?.maxAgeMs ?? 300_000)
    }
  }

  /** Whether `name` is a valid channel name. */
  static isValidName (name: string): boolean {
    return NAME.test(name)
  }

  /**
   * Publishes one event or several (in order) and returns their ids. Each event is serialized
   * once, whatever the number of readers.
   * @throws {TypeError} for a bad channel name, event name or unserializable data.
   */
  async publish (channel: string, events: ChannelEvent | readonly ChannelEvent[]): Promise<number[]> {
    checkName(channel)
    const list = Array.isArray(events) ? events : [events as ChannelEvent]
    const inputs: ChannelEventInput[] = list.map(toInput)
    if (inputs.length === 0) return []
    return await this.store.publish(PREFIX + channel, inputs, this.retention)
  }

  /** Ends a channel: its readers get `close` with reason `done`; it stays replayable for the store's `retainMs`. */
  async close (channel: string): Promise<void> {
    checkName(channel)
    await this.store.openChannel(PREFIX + channel, this.retention)
    this.store.end(PREFIX + channel, 'done')
  }

  /** Id of the newest event of a channel (0 when none): to read only what comes next. */
  async lastId (channel: string): Promise<number> {
    checkName(channel)
    return (await this.store.state(PREFIX + channel))?.lastId ?? 0
  }

  /** Reads a channel from `afterId` (made if new, so a reader can wait for the first event). */
  async read (channel: string, afterId: number, listener: JournalListener): Promise<Unsubscribe> {
    checkName(channel)
    await this.store.openChannel(PREFIX + channel, this.retention)
    return this.store.subscribe(PREFIX + channel, afterId, exactlyOnce(afterId, listener))
  }
}

function positive (name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`Channels: ${name} must be a positive whole number (got ${String(value)})`)
  return value
}

function checkName (channel: string): void {
  if (typeof channel !== 'string' || !NAME.test(channel)) {
    throw new TypeError('channel name must be 1 to 128 letters, digits, or "_", ".", ":", "-"')
  }
}

function toInput (event: ChannelEvent, index: number): ChannelEventInput {
  if (event === null || typeof event !== 'object' || !('data' in event)) {
    throw new TypeError(`event ${index} must be an object with a "data" field`)
  }
  if (event.event !== undefined && (typeof event.event !== 'string' || !EVENT_NAME.test(event.event) || RESERVED.has(event.event))) {
    throw new TypeError(`event ${index}: "event" must be 1 to 64 letters, digits, or "_", ".", ":", "-", and not "close" or "error"`)
  }
  const data = JSON.stringify(event.data)
  if (data === undefined) throw new TypeError(`event ${index}: "data" is not JSON-serializable`)
  return { data, event: event.event }
}
