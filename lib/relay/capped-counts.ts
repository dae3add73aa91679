/**
 * Counts per key (a client), each kept at most at a cap: the per-client limits of one process
 * (the memory store's generation slots, the plugin's open connections). A key back at zero is
 * forgotten: an entry per client ever seen would grow without end.
 */
export class CappedCounts {
  readonly #counts = new Map<string, number>()

  /** Counts one more for `key`; false (and nothing counted) when it has `max` already. */
  take (key: string, max: number): boolean {
    const count = this.#counts.get(key) ?? 0
    if (count >= max) return false
    this.#counts.set(key, count + 1)
    return true
  }

  /** Counts one less for `key` (never below zero). */
  give (key: string): void {
    const count = (this.#counts.get(key) ?? 0) - 1
    if (count <= 0) this.#counts.delete(key)
    else this.#counts.set(key, count)
  }

  /** The count of `key`. */
  count (key: string): number {
    return this.#counts.get(key) ?? 0
  }
}
