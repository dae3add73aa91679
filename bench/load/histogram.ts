/**
 * A log-bucketed latency histogram: 1 % wide buckets from 1 µs to ~17 min, one Uint32Array, so
 * a worker can record 100k values a second for nothing and the parent merges workers by adding.
 */
const GROWTH = Math.log(1.01)
export const BUCKETS = 2400

export class Histogram {
  readonly counts: Uint32Array
  count = 0
  sum = 0
  max = 0

  constructor (counts?: ArrayLike<number>) {
    this.counts = new Uint32Array(BUCKETS)
    if (counts !== undefined) {
      for (let i = 0; i < BUCKETS; i++) {
        const c = counts[i] ?? 0
        this.counts[i] = c
        this.count += c
      }
    }
  }

  /** Records one value in microseconds (values below 1 µs count as 1 µs). */
  record (us: number): void {
    const v = us < 1 ? 1 : us
    let i = Math.floor(Math.log(v) / GROWTH)
    if (i >= BUCKETS) i = BUCKETS - 1
    this.counts[i]!++
    this.count++
    this.sum += v
    if (v > this.max) this.max = v
  }

  merge (other: { counts: ArrayLike<number>, sum: number, max: number }): void {
    for (let i = 0; i < BUCKETS; i++) {
      const c = other.counts[i] ?? 0
      this.counts[i]! += c
      this.count += c
    }
    this.sum += other.sum
    if (other.max > this.max) this.max = other.max
  }

  /** The value (µs, bucket midpoint) at percentile `p` (0–100); NaN when empty. */
  percentile (p: number): number {
    if (this.count === 0) return NaN
    const rank = Math.ceil(this.count * p / 100)
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return Math.exp((i + 0.5) * GROWTH)
    }
    return this.max
  }

  toJSON (): { counts: number[], sum: number, max: number } {
    return { counts: Array.from(this.counts), sum: this.sum, max: this.max }
  }
}
