// Renders an answer's markdown while it streams, at a cost per token that does not grow with
// the answer.
//
// Re-rendering the whole answer on every frame would cost O(answer) per frame: fine at 200
// tokens, a stutter at 20,000. Instead the answer is split into finished blocks and a live tail.
// Each frame lexes only the tail (the text after the last finished block); a block is finished
// once the next one has begun (its first line is complete), from then on nothing written later
// can change it, so it is rendered once, appended, and never touched again. Only the tail,
// usually one paragraph, list or code block, is rendered again each frame, through mend() so that
// half-written markup already looks finished (see mend.js). A tail that grows very long (one
// huge code block or list) is re-rendered less often, so that it takes at most about a fifth of
// the main thread: its text then arrives in larger steps instead of slowing the page. Finished
// blocks are kept in chunks that the browser skips while off screen, so that styling, layout and
// painting per frame do not grow with the answer either.
//
// Markdown a later block can still change, and how it is handled: a link reference definition
// (`[x]: url`) written after the block that uses it does not reach that block (one written
// before does).

import { lex, render } from './markdown.js'
import { mend } from './mend.js'

/** A live render that took longer than this (ms) waits a multiple of its cost before the next. */
const CHEAP_RENDER_MS = 4
const BACKOFF = 4
/** Finished blocks per chunk (see #finish). */
const CHUNK_BLOCKS = 24

export class StreamingMarkdown {
  /** The answer's text, line ends normalized to \n (what the lexer sees). */
  #source = ''
  #endsInCr = false
  /** Length of #source already rendered as finished blocks. */
  #finished = 0
  /** The nodes of the live tail, replaced on each render. */
  /** @type {ChildNode[]} */
  #live = []
  /** @type {Record<string, { href: string, title?: string }>} */
  #links = Object.create(null)
  /** @type {HTMLElement | null} the chunk finished blocks go into */
  #chunk = null
  #chunkBlocks = 0
  /** @type {number | null} the depth of the answer's first heading (markdown.js render) */
  #headingBase = null
  #dirty = false
  #notBefore = 0
  #retryFrame = 0
  #root
  #caret
  #onFinishedBlocks

  /**
   * @param {HTMLElement} root  receives the rendered blocks
   * @param {object} [options]
   * @param {HTMLElement} [options.caret]  kept at the end of the text while it streams
   * @param {(nodes: ChildNode[]) => void} [options.onFinishedBlocks]  blocks that were just
   *   rendered for good (announced to screen readers)
   */
  constructor (root, { caret, onFinishedBlocks } = {}) {
    this.#root = root
    this.#caret = caret ?? null
    this.#onFinishedBlocks = onFinishedBlocks ?? (() => {})
    this.#placeCaret()
  }

  /** @param {string} text  the next piece of the answer, as the model wrote it */
  append (text) {
    let chunk = text
    // A \r\n split between two pieces is one line end.
    if (this.#endsInCr && chunk[0] === '\n') chunk = chunk.slice(1)
    if (text !== '') this.#endsInCr = text.endsWith('\r')
    if (chunk === '') return
    this.#source += chunk.replace(/\r\n?/g, '\n')
    this.#dirty = true
  }

  /** Shows what was appended: finishes the blocks that are complete, re-renders the tail. */
  render () {
    if (!this.#dirty) return
    const now = performance.now()
    if (now < this.#notBefore) {
      // Too soon after an expensive render: try again on a later frame.
      if (this.#retryFrame === 0) {
        this.#retryFrame = window.requestAnimationFrame(() => {
          this.#retryFrame = 0
          this.render()
        })
      }
      return
    }
    this.#dirty = false
    const tail = this.#source.slice(this.#finished)
    const tokens = lex(tail, this.#links)
    const done = finishedCount(tokens, tail)
    if (done > 0) this.#finish(tokens.slice(0, done))
    const liveSource = this.#source.slice(this.#finished)
    const mended = mend(liveSource)
    this.#replaceLive(done === 0 && mended === liveSource ? tokens : lex(mended, { ...this.#links }))
    const cost = performance.now() - now
    this.#notBefore = cost > CHEAP_RENDER_MS ? now + cost * BACKOFF : 0
  }

  /** The answer is complete (or stopped): everything left becomes finished blocks, as written. */
  end () {
    if (this.#retryFrame !== 0) window.cancelAnimationFrame(this.#retryFrame)
    this.#retryFrame = 0
    this.#dirty = false
    const tail = this.#source.slice(this.#finished)
    this.#replaceLive([])
    if (tail !== '') this.#finish(lex(tail, this.#links))
    this.#placeCaret()
  }

  /** The text rendered so far, line ends normalized. */
  get source () {
    return this.#source
  }

  /**
   * Renders complete blocks for good. They go into chunks of CHUNK_BLOCKS blocks, each skipped
   * by the browser while off screen (`content-visibility: auto` in markdown.css): the browser
   * then checks one chunk, not every block, against the viewport in each frame.
   * @param {any[]} tokens  complete blocks at the start of the tail
   */
  #finish (tokens) {
    const nodes = [...this.#render(tokens).childNodes]
    for (const node of nodes) {
      if (this.#chunk === null || (this.#chunkBlocks >= CHUNK_BLOCKS && node.nodeType === Node.ELEMENT_NODE)) {
        this.#chunk = document.createElement('div')
        this.#chunk.className = 'md-chunk'
        this.#chunkBlocks = 0
        this.#root.insertBefore(this.#chunk, this.#live[0] ?? null)
      }
      this.#chunk.append(node)
      if (node.nodeType === Node.ELEMENT_NODE) this.#chunkBlocks++
    }
    for (const token of tokens) this.#finished += token.raw.length
    const blocks = nodes.filter((node) => node.nodeType === Node.ELEMENT_NODE)
    if (blocks.length > 0) this.#onFinishedBlocks(blocks)
  }

  /**
   * @param {any[]} tokens
   * @returns {DocumentFragment}
   */
  #render (tokens) {
    this.#headingBase ??= tokens.find((token) => token.type === 'heading')?.depth ?? null
    return render(tokens, { headingBase: this.#headingBase ?? 1 })
  }

  /** @param {any[]} tokens */
  #replaceLive (tokens) {
    for (const node of this.#live) node.remove()
    const fragment = this.#render(tokens)
    this.#live = [...fragment.childNodes]
    this.#root.append(fragment)
    this.#placeCaret()
  }

  /** The caret goes after the last character: into the deepest last block (list item, cell, code). */
  #placeCaret () {
    if (this.#caret === null) return
    /** @type {Element} */
    let host = this.#root
    for (;;) {
      let last = host.lastChild
      while (last !== null && (last === this.#caret || (last.nodeType === Node.TEXT_NODE && (last.textContent ?? '').trim() === ''))) last = last.previousSibling
      if (!(last instanceof Element) || !CARET_CONTAINERS.has(last.tagName) || (last.tagName === 'CODE' && host.tagName !== 'PRE')) break
      host = last
    }
    host.append(this.#caret)
  }
}

/** Elements the caret goes into rather than after: blocks, our wrappers, and a pre's code. */
const CARET_CONTAINERS = new Set(['P', 'LI', 'UL', 'OL', 'BLOCKQUOTE', 'H3', 'H4', 'H5', 'H6', 'DIV', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TD', 'TH', 'PRE', 'CODE'])

/**
 * How many of the tail's first tokens are finished: all before the last block, once that last
 * block's first line is complete (until then, what it is, and whether it continues the block
 * before it, e.g. `2` becoming `2. item` of a list, is not known).
 * @param {any[]} tokens
 * @param {string} tail
 */
function finishedCount (tokens, tail) {
  let last = tokens.length - 1
  while (last >= 0 && tokens[last].type === 'space') last--
  if (last <= 0) return 0
  let start = 0
  for (let i = 0; i < last; i++) start += tokens[i].raw.length
  return tail.includes('\n', start) ? last : 0
}
