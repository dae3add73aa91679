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

/** Journals: the numbered events of generations and channels, written by one producer, read by any number of readers. */
export interface JournalStore {
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
   * holds them locally. Unknown journal: `onEnd` is never called — check `state()` first. A
   * reader the store can no longer serve (its follower failed) is ended with `store_error`.
   */
  subscribe (key: string, afterId: number, listener: JournalListener): Unsubscribe
  /**
   * Appends application events to a channel's journal (made on first use), assigning the next
   * ids, consecutive within a call (the Redis store: within each slice of 1000 events) — on
   * whichever instance publishes. Retention drops the oldest events.
   * Rejects when the store is over its memory cap or unreachable.
   */
  publish (channel: string, events: readonly ChannelEventInput[], retention: ChannelRetention): Promise<number[]>
  /** Makes sure a channel's journal exists, so a reader can wait for its first event. */
  openChannel (channel: string, retention: ChannelRetention): Promise<void>
}

/** Conversations: which generation is a conversation's active one. */
export interface ConversationStore {
  /** Makes `streamId` the active generation of a conversation; returns the one it replaces. */
  swapActive (conversationId: string, streamId: string): Promise<string | undefined>
  /** Clears the conversation's active generation if it is still `streamId`. */
  clearActive (conversationId: string, streamId: string): Promise<void>
  /** The conversation's active generation. */
  getActive (conversationId: string): Promise<string | undefined>
}

/** Limits: each client's concurrent generations, counted across instances. */
export interface LimitStore {
  /** Takes one of `max` concurrent-generation slots of a client; false when all are taken. */
  acquireSlot (client: string, max: number): Promise<boolean>
  /** Gives a slot back. A store that cannot write it now writes it later: callers need not retry. */
  releaseSlot (client: string): Promise<void>
}

/** Control: what instances tell the instance producing a generation. */
export interface ControlStore {
  /** Sends a control message to the instance that produces `streamId` (and only to it). */
  publishControl (message: ControlMessage): Promise<void>
  /** Receives the control messages for the generations produced on this instance. */
  onControl (listener: (message: ControlMessage) => void): void
  /**
   * Announces a reader on this instance of a journal produced elsewhere, until the returned
   * function is called: the producer must not abandon a generation someone reads on another instance.
   */
  holdRemote (key: string): Unsubscribe
  /** Whether readers on other instances hold the journal (see {@link holdRemote}). */
  hasRemoteReaders (key: string): Promise<boolean>
}

/**
 * Where journals, the conversation map, the per-client counts and the control bus live.
 * The memory store is the default; the Redis store makes the same guarantees across instances
 * (`test/fixtures/store-contract.ts` holds both, and each Redis topology, to them).
 * Every method is safe to call for unknown keys.
 */
export interface RelayStore extends JournalStore, ConversationStore, LimitStore, ControlStore {
  /** False while the store cannot serve (a configured Redis is unreachable, hung, or answering errors). */
  readonly ready: boolean
  /** Why the store is not {@link ready}, in words (`/readyz` shows it), or `undefined` when it is or cannot say. */
  readonly notReady?: string | undefined
  /** Stops timers and connections. */
  close (): Promise<void>
}
