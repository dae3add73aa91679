// A model's thinking, shown above its answer as a collapsible "Thinking" block (a <details>, so
// the browser gives it its keyboard handling and its expanded state for screen readers). It
// streams open while the model thinks, closes when the answer starts, and its summary then says
// how long the model thought; the user can open it again at any time.
//
// The thinking is model output like the answer: it reaches the DOM only through the same
// sanitized markdown renderer (streaming-markdown.js, markdown.js). It is not announced to screen
// readers as it streams (the page announces the answer a finished block at a time; the thinking
// is one status message when it starts and one when it ends, see generation.js).

import { el } from './dom.js'
import { StreamingMarkdown } from './streaming-markdown.js'
import { Typewriter } from './typewriter.js'

/**
 * How long a model thought, in whole seconds. Below half a second it rounds up to 1: the block
 * exists, so the model did think.
 * @param {number} ms
 */
export function thoughtSeconds (ms) {
  return Math.max(1, Math.round(ms / 1000))
}

/**
 * How long a model thought, as the summary shows it: "4 s", "1 min 5 s".
 * @param {number} ms
 */
export function thoughtDuration (ms) {
  const seconds = thoughtSeconds(ms)
  if (seconds < 60) return `${seconds} s`
  const rest = seconds % 60
  return `${Math.floor(seconds / 60)} min${rest === 0 ? '' : ` ${rest} s`}`
}

export class ReasoningView {
  /**
   * @param {object} [hooks]
   * @param {() => void} [hooks.beforeWrite]  before each frame's render (scroll anchoring)
   * @param {() => void} [hooks.afterWrite]
   */
  constructor (hooks = {}) {
    this.root = /** @type {HTMLDetailsElement} */ (el('details', 'reasoning'))
    this.root.open = true
    this.root.dataset.state = 'thinking'
    const summary = el('summary', 'reasoning-summary')
    this.label = el('span', 'reasoning-label', 'Thinking…')
    summary.append(this.label)
    // `markdown` for the shared look of rendered model text (markdown.css).
    this.body = el('div', 'reasoning-text markdown')
    this.caret = el('span', 'caret')
    this.caret.setAttribute('aria-hidden', 'true')
    this.root.append(summary, this.body)
    this.markdown = new StreamingMarkdown(this.body, { caret: this.caret })
    this.typewriter = new Typewriter((text) => {
      hooks.beforeWrite?.()
      this.markdown.append(text)
      this.markdown.render()
      hooks.afterWrite?.()
    })
  }

  /** Whether the model is still thinking (no answer yet, not ended). */
  get thinking () {
    return this.root.dataset.state === 'thinking'
  }

  /** @param {string} text  the next piece of the thinking, shown over the next frames */
  push (text) {
    this.typewriter.push(text)
  }

  /**
   * The thinking is over: everything received is shown now, and the summary says for how long.
   * @param {number | null} thoughtMs  null: not known (see Generation.endThinking)
   * @param {boolean} collapse  close the block (the answer starts); else it stays as the user left it
   */
  finish (thoughtMs, collapse) {
    this.typewriter.flush()
    this.markdown.end()
    this.caret.remove()
    this.root.dataset.state = 'done'
    this.#label(thoughtMs)
    if (collapse) this.root.open = false
  }

  /**
   * A finished thinking, all at once and closed (a stored answer).
   * @param {string} text
   * @param {number | null} thoughtMs
   */
  showText (text, thoughtMs) {
    this.markdown.append(text)
    this.finish(thoughtMs, true)
  }

  /** @param {number | null} thoughtMs */
  #label (thoughtMs) {
    if (thoughtMs === null) {
      this.label.textContent = 'Thought process'
      delete this.root.dataset.thoughtMs
    } else {
      this.label.textContent = `Thought for ${thoughtDuration(thoughtMs)}`
      this.root.dataset.thoughtMs = String(Math.round(thoughtMs))
    }
  }
}
