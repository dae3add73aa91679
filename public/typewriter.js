// Paces streamed text onto the screen: at most one write per animation frame.
//
// Tokens arrive at network pace (bursty after a reconnect or a replay); rendering each one would
// cost a render and a layout per token. Instead tokens queue here and each frame hands one slice
// to the writer: the whole queue while it is short (normal streaming looks exactly token by
// token), a fraction of it when long, so a burst of a few thousand characters drains in about
// half a second as a fast typing run instead of one jump, and never with more than one render
// per frame.

const SMALL_QUEUE = 24 // characters shown at once
const DRAIN_FRACTION = 8 // a long queue shows 1/8 of itself per frame

export class Typewriter {
  /**
   * @param {(text: string) => void} write  shows the next slice of text (called once per frame)
   */
  constructor (write) {
    this.write = write
    this.queue = ''
    this.frame = 0
    /** @type {Array<() => void>} */
    this.drainWaiters = []
  }

  /** @param {string} text */
  push (text) {
    if (text === '') return
    this.queue += text
    if (this.frame === 0) this.frame = window.requestAnimationFrame(() => this.#tick())
  }

  #tick () {
    this.frame = 0
    let take = this.queue.length <= SMALL_QUEUE
      ? this.queue.length
      : Math.max(SMALL_QUEUE, Math.ceil(this.queue.length / DRAIN_FRACTION))
    // Do not cut a surrogate pair in two: half an emoji would show as a box for a frame.
    const last = this.queue.charCodeAt(take - 1)
    if (take < this.queue.length && last >= 0xD800 && last <= 0xDBFF) take++
    const slice = this.queue.slice(0, take)
    this.queue = this.queue.slice(take)
    this.write(slice)
    if (this.queue.length > 0) {
      this.frame = window.requestAnimationFrame(() => this.#tick())
    } else {
      for (const resolve of this.drainWaiters.splice(0)) resolve()
    }
  }

  /** Writes everything queued now (e.g. on Stop: show what arrived, at once). */
  flush () {
    if (this.frame !== 0) window.cancelAnimationFrame(this.frame)
    this.frame = 0
    if (this.queue.length > 0) {
      const rest = this.queue
      this.queue = ''
      this.write(rest)
    }
    for (const resolve of this.drainWaiters.splice(0)) resolve()
  }

  /** @returns {Promise<void>} resolves once everything pushed so far is on screen */
  drained () {
    if (this.queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }
}
