// DOM of the conversation: message bubbles, the answer with its caret, stats, notices and errors.
// Everything the model or the relay wrote goes in through textContent / Text nodes, never as
// HTML: an answer containing `<img onerror=…>` must show those characters, not run them.

import { Typewriter } from './typewriter.js'

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
export function el (tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

const ASSISTANT_ICON = 'M9 11h14M9 16h10M9 21h6'

function avatar () {
  const svgNs = 'http://www.w3.org/2000/svg'
  const svg = document.createElementNS(svgNs, 'svg')
  svg.setAttribute('viewBox', '0 0 32 32')
  svg.setAttribute('aria-hidden', 'true')
  svg.setAttribute('class', 'avatar')
  const rect = document.createElementNS(svgNs, 'rect')
  rect.setAttribute('width', '32')
  rect.setAttribute('height', '32')
  rect.setAttribute('rx', '16')
  const path = document.createElementNS(svgNs, 'path')
  path.setAttribute('d', ASSISTANT_ICON)
  svg.append(rect, path)
  return svg
}

/** @param {string} text */
export function userMessage (text) {
  const article = el('article', 'msg msg-user')
  article.append(el('h2', 'visually-hidden', 'You said:'))
  article.append(el('div', 'bubble', text))
  return article
}

/**
 * @typedef {object} Stats
 * @property {number | null} ttftMs  time to first token; null when unknown (re-attached after a reload)
 * @property {number} tokens  delta events received
 * @property {number | null} tokensPerSecond
 * @property {number} resumes  connections re-established (drops, reloads)
 */

const ms = (/** @type {number} */ value) =>
  value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`

/** One assistant answer: text with caret, then a notice or error, then live stats. */
export class AnswerView {
  /**
   * @param {object} hooks
   * @param {() => void} [hooks.beforeWrite]
   * @param {() => void} [hooks.afterWrite]
   */
  constructor (hooks = {}) {
    this.root = el('article', 'msg msg-assistant')
    this.root.dataset.state = 'waiting'
    const body = el('div', 'msg-body')
    body.append(el('h2', 'visually-hidden', 'The model said:'))
    const answer = el('div', 'answer')
    this.textEl = el('span', 'answer-text')
    this.caret = el('span', 'caret')
    this.caret.setAttribute('aria-hidden', 'true')
    answer.append(this.textEl, this.caret)
    this.notice = el('p', 'notice')
    this.notice.hidden = true
    this.error = el('div', 'error')
    this.error.setAttribute('role', 'alert')
    this.error.hidden = true
    this.stats = el('p', 'stats')
    this.stats.hidden = true
    body.append(answer, this.notice, this.error, this.stats)
    this.root.append(avatar(), body)
    this.typewriter = new Typewriter(this.textEl, hooks.beforeWrite, () => {
      this.onWrite?.()
      hooks.afterWrite?.()
    })
    /** @type {(() => void) | undefined} */
    this.onWrite = undefined
  }

  /** @param {'waiting' | 'streaming' | 'done' | 'stopped' | 'error'} state */
  setState (state) {
    this.root.dataset.state = state
  }

  /** @param {string} text */
  showNotice (text) {
    this.notice.textContent = text
    this.notice.hidden = false
  }

  /**
   * @param {object} error
   * @param {string} error.title
   * @param {string} [error.detail]  the relay's own message
   * @param {string} [error.code]
   * @param {{ label: string, run: () => void }} error.action
   * @param {boolean} [error.askForKey]  a 401: offer a field for the relay's API key
   * @param {(key: string) => void} [error.saveKey]
   */
  showError ({ title, detail, code, action, askForKey, saveKey }) {
    this.error.replaceChildren()
    const text = el('div', 'error-text')
    text.append(el('p', 'error-title', title))
    if (detail) {
      const p = el('p', 'error-detail', detail)
      if (code) p.append(' ', el('code', 'error-code', code))
      text.append(p)
    }
    this.error.append(text)
    const actions = el('div', 'error-actions')
    /** @type {HTMLInputElement | null} */
    let keyInput = null
    if (askForKey) {
      const id = `key-${Math.random().toString(36).slice(2)}`
      const label = el('label', 'visually-hidden', 'Relay API key')
      label.setAttribute('for', id)
      keyInput = /** @type {HTMLInputElement} */ (el('input', 'key-input'))
      keyInput.type = 'password'
      keyInput.id = id
      keyInput.placeholder = 'Relay API key'
      keyInput.autocomplete = 'off'
      actions.append(label, keyInput)
    }
    const button = /** @type {HTMLButtonElement} */ (el('button', 'retry', action.label))
    button.type = 'button'
    button.dataset.action = 'retry'
    button.addEventListener('click', () => {
      if (keyInput && saveKey) saveKey(keyInput.value.trim())
      action.run()
    })
    actions.append(button)
    this.error.append(actions)
    this.error.hidden = false
  }

  clearError () {
    this.error.hidden = true
    this.error.replaceChildren()
  }

  /** @returns {HTMLButtonElement | null} */
  get retryButton () {
    return this.error.querySelector('button.retry')
  }

  /** @param {Stats} stats */
  renderStats (stats) {
    if (stats.tokens === 0 && stats.resumes === 0) return
    const parts = []
    if (stats.ttftMs !== null) parts.push(['ttft', `first token ${ms(stats.ttftMs)}`, String(Math.round(stats.ttftMs))])
    if (stats.tokensPerSecond !== null) parts.push(['rate', `${stats.tokensPerSecond.toFixed(1)} tokens/s`, stats.tokensPerSecond.toFixed(2)])
    parts.push(['resumes', `${stats.resumes} ${stats.resumes === 1 ? 'resume' : 'resumes'}`, String(stats.resumes)])
    const nodes = []
    for (const [name, label, value] of parts) {
      const span = el('span', 'stat', label)
      span.dataset.stat = name
      span.dataset.value = value
      nodes.push(span)
    }
    this.stats.replaceChildren(...nodes)
    this.stats.hidden = false
  }
}
