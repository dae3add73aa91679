import { makeEntry } from '../../journal.js'
import type { EndReason, JournalEntry } from '../../journal.js'

/**
 * How journal entries sit in a Redis stream.
 *
 * One stream entry holds a batch of consecutive journal entries (all the events one producer
 * appended during one event-loop tick): its stream id is `<id of the batch's last entry>-0` and its
 * fields are `<id>` → data pairs (`<id>\n<event>` → data for named events; event names never hold
 * LF). Stream ids therefore grow with the journal ids, so "everything after journal id N" is
 * `XRANGE key (N-0 +` / `XREAD … N-0`: a batch that straddles N comes back whole, and readers drop
 * the ids they already have. The end marker is `<last id>-1` with the single field `end` → reason:
 * after every batch, before any later id, and never counted as a journal entry.
 *
 * Explicit ids also make a retried write harmless: re-adding a batch Redis already holds fails
 * with "equal or smaller than the target stream top item", which the writer treats as written.
 */

/** The field name of the end marker. */
export const END_FIELD = 'end'
/** The field holding a channel batch's publish time. */
export const TIME_FIELD = 't'

const END_REASONS = new Set<string>(['done', 'error', 'cancelled', 'abandoned', 'superseded', 'timeout', 'shutdown', 'producer_lost'])

/** A reason read back from Redis; anything unknown (another version wrote it) reads as `error`. */
export function endReasonOf (value: string | null | undefined): EndReason | undefined {
  if (value === null || value === undefined) return undefined
  return END_REASONS.has(value) ? value as EndReason : 'error'
}

/** XADD arguments after the key and id: the field/value pairs of a batch. */
export function batchFields (entries: readonly JournalEntry[]): string[] {
  const fields = new Array<string>(entries.length * 2)
  let i = 0
  for (const entry of entries) {
    fields[i++] = entry.event === undefined ? String(entry.id) : `${entry.id}\n${entry.event}`
    fields[i++] = entry.data
  }
  return fields
}

/** A stream entry as ioredis returns it: `[id, [field, value, …]]`. */
export type StreamItem = [id: string, fields: string[]]

/** What a run of stream items decodes to. */
export interface Decoded {
  /** Journal entries with `id > afterId`, in order, each framed once. */
  entries: JournalEntry[]
  /** The end marker's reason, when the items reach it (nothing after it is read). */
  end: EndReason | undefined
}

/** Decodes stream items into journal entries after `afterId` (and the end, if reached). */
export function decodeItems (items: readonly StreamItem[], afterId: number): Decoded {
  const entries: JournalEntry[] = []
  let last = afterId
  for (const [, fields] of items) {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const field = fields[i] as string
      const value = fields[i + 1] as string
      if (field === END_FIELD) return { entries, end: endReasonOf(value) }
      // A channel batch's publish time (for age trimming), not an entry.
      if (field === TIME_FIELD) continue
      const nl = field.indexOf('\n')
      const id = Number(nl < 0 ? field : field.slice(0, nl))
      // A batch rewritten after a lost reply may repeat ids Redis already had: keep each once.
      if (!(id > last)) continue
      last = id
      entries.push(makeEntry(id, value, nl < 0 ? undefined : field.slice(nl + 1)))
    }
  }
  return { entries, end: undefined }
}

/** The journal id a stream id stands for (`<id>-<0|1>`). */
export function journalIdOf (streamEntryId: string): number {
  const dash = streamEntryId.indexOf('-')
  return Number(dash < 0 ? streamEntryId : streamEntryId.slice(0, dash))
}

/** Orders two stream ids (`ms-seq`): negative, zero or positive. */
export function compareStreamIds (a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am !== bm ? am - bm : as - bs
}

/** The error Redis answers when an explicit XADD id is not above the stream's top: the batch is already there. */
export function isAlreadyWritten (err: unknown): boolean {
  return err instanceof Error && err.message.includes('equal or smaller than the target stream top item')
}

/**
 * The error Redis answers an XADD to a stream whose last id was set to the highest there is:
 * a journal another instance ended (see `relayEnd` in scripts.ts), closed to any later write.
 */
export function isClosedStream (err: unknown): boolean {
  return err instanceof Error && err.message.includes('exhausted the last possible ID')
}
