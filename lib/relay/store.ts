import type { EndReason, JournalEntry, JournalListener, JournalMeta, Unsubscribe } from './journal.js'

/** Where a store reports what goes wrong out of any caller's sight (a reader that throws, Redis away). */
export type StoreLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void

/** A request to stop a generation, wherever it runs. */
export interface ControlMessage {
  streamId: string
  action: 'cancelled' | 'superseded'
}

/** How much of a channel is kept for late and resuming readers. */
export interface ChannelRetention {
  /** Most events kept; older ones are dropped first. */
  maxEvents: number
  /** Longest an event is kept, in ms; a channel with no event and no reader for this long is forgotten. */
  maxAgeMs: number
}

/** One event an application publishes to a channel. */
export interface ChannelEventInput {
  /** One line of JSON (the caller serializes). */
  data: string
  /** The SSE `event:` name; plain message when absent. */
  event?: string | undefined
}

/** What a journal looks like from outside: its meta, how far it got, how it ended. */
export interface JournalState {
  meta: JournalMeta
  /** Id of the last entry (0 when empty). */
  lastId: number
  /** Set once the journal has ended. */
  ended: EndReason | undefined
}

/**
 * Where journals, the conversation map, the per-client counts and the control bus live.
 * The memory store is the default; the Redis store makes the same guarantees across instances.
 * Every method is safe to call for unknown keys.
 */
export interface RelayStore {
  /** Creates an empty journal. */
  create (key: string, meta: JournalMeta): Promise<void>
  /** Forgets a journal made by {@link create} that nobody knows of yet (no entry, no reader): a start refused after it. */
  discard (key: string): Promise<void>
  /** Meta, last id and end of a journal; `undefined` when unknown or expired. */
  state (key: string): Promise<JournalState | undefined>
  /**
   * Appends entries (ids consecutive, continuing the journal). Synchronous for local readers,
   * who see the entries before this returns. Returns false when the journal is over its memory
   * cap (the producer then ends it with an error). The producer's last entry (`[DONE]`, or the
   * `error` of a cut answer) is always taken, past any cap: readers must be able to tell a whole
   * answer from a cut one, and learn why it was cut.
   */
  append (key: string, entries: readonly JournalEntry[]): boolean
  /** Ends a journal; its entries stay readable for the retention time. Idempotent. */
  end (key: string, reason: EndReason): void
  /**
   * Delivers every entry with `id > afterId`, in order, each once, then the live ones, then the
   * end. Entries already there are delivered before this returns (synchronously) when the store
   * holds them locally. Unknown journal: `onEnd` is never called — check `state()` first.
   */
  subscribe (key: string, afterId: number, listener: JournalListener): Unsubscribe

  /**
   * Announces a reader on this instance of a journal produced elsewhere, until the returned
   * function is called: the producer must not abandon a generation someone reads on another instance.
   */
  holdRemote (key: string): Unsubscribe
  /** Whether readers on other instances hold the journal (see {@link holdRemote}). */
  hasRemoteReaders (key: string): Promise<boolean>

  /**
   * Appends application events to a channel's journal (made on first use), assigning the next
   * ids, consecutive within a call (the Redis store: within each slice of 1000 events) — on
   * whichever instance publishes. Retention drops the oldest events.
   * Rejects when the store is over its memory cap or unreachable.
   */
  publish (channel: string, events: readonly ChannelEventInput[], retention: ChannelRetention): Promise<number[]>
  /** Makes sure a channel's journal exists, so a reader can wait for its first event. */
  openChannel (channel: string, retention: ChannelRetention): Promise<void>

  /** Makes `streamId` the active generation of a conversation; returns the one it replaces. */
  swapActive (conversationId: string, streamId: string): Promise<string | undefined>
  /** Clears the conversation's active generation if it is still `streamId`. */
  clearActive (conversationId: string, streamId: string): Promise<void>
  /** The conversation's active generation. */
  getActive (conversationId: string): Promise<string | undefined>

  /** Takes one of `max` concurrent-generation slots of a client; false when all are taken. */
  acquireSlot (client: string, max: number): Promise<boolean>
  /** Gives a slot back. */
  releaseSlot (client: string): Promise<void>

  /** Sends a control message to whichever instance produces `streamId`. */
  publishControl (message: ControlMessage): Promise<void>
  /** Receives control messages for every generation (the receiver filters for its own). */
  onControl (listener: (message: ControlMessage) => void): void

  /** False while the store cannot serve (a configured Redis is unreachable). */
  readonly ready: boolean
  /** Stops timers and connections. */
  close (): Promise<void>
}
