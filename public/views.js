// DOM of the conversation: the user's messages, the answers (markdown, caret, notice, error,
// actions, stats). Model output reaches the DOM only through markdown.js (sanitized); every
// other text the relay or the user wrote goes in as textContent, never as HTML.

import { copyText } from './clipboard.js'
import { el } from './dom.js'
import { spokenText } from './markdown.js'
import { ReasoningView } from './reasoning.js'
import { StreamingMarkdown } from './streaming-markdown.js'
import { Typewriter } from './typewriter.js'

const SVG = 'http://www.w3.org/2000/svg'
const ICONS = {
  assistant: 'M9 11h14M9 16h10M9 21h6',
  copy: 'M9 9h10v10H9zM5 15V5h10',
  check: 'M5 12.5 10 17 19 7',
  regenerate: 'M19 12a7 7 0 1 1-2.05-4.95M19 5v4h-4',
  edit: 'M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4',
  rename: 'M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4',
  trash: 'M5 7h14M10 7V4h4v3M7 7l1 13h8l1-13M10 11v6M14 11v6'
}

/**
 * @param {keyof typeof ICONS} name
 * @param {string} [className]
 */
export function icon (name, className = 'icon') {
  const svg = document.createElementNS(SVG, 'svg')
  svg.setAttribute('viewBox', name === 'assistant' ? '0 0 32 32' : '0 0 24 24')
  svg.setAttribute('aria-hidden', 'true')
  svg.setAttribute('focusable', 'false')
  svg.setAttribute('class', className)
  if (name === 'assistant') {
    const rect = document.createElementNS(SVG, 'rect')
    rect.setAttribute('width', '32')
    rect.setAttribute('height', '32')
    rect.setAttribute('rx', '16')
    svg.append(rect)
  }
  const path = document.createElementNS(SVG, 'path')
  path.setAttribute('d', ICONS[name])
  svg.append(path)
  return svg
}

/**
 * A small button with an icon and a visible or hidden label.
 * @param {object} options
 * @param {keyof typeof ICONS} options.icon
 * @param {string} options.label  its accessible name
 * @param {string} options.action  `data-action`, for tests and styles
 * @param {boolean} [options.showLabel]
 * @param {() => void} options.run
 */
export function actionButton ({ icon: name, label, action, showLabel = false, run }) {
  const button = /** @type {HTMLButtonElement} */ (el('button', 'action-button'))
  button.type = 'button'
  button.dataset.action = action
  button.append(icon(name))
  const text = el('span', showLabel ? 'action-label' : 'visually-hidden', label)
  button.append(text)
  if (!showLabel) button.title = label
  button.addEventListener('click', run)
  return button
}

/**
 * Copies and says so on the button for a moment ("Copied"), and to screen readers.
 * @param {HTMLButtonElement} button
 * @param {string} text
 * @param {(message: string) => void} status  where screen readers hear the outcome
 */
async function copyWithFeedback (button, text, status) {
  const copied = await copyText(text)
  const label = button.querySelector('.action-label, .visually-hidden') ?? button
  const before = label.textContent
  label.textContent = copied ? 'Copied' : 'Copy failed'
  button.dataset.copied = String(copied)
  status(copied ? 'Copied to the clipboard.' : 'Could not copy to the clipboard.')
  setTimeout(() => {
    label.textContent = before
    delete button.dataset.copied
  }, 2000)
}

/** One message of the user, with an Edit button when it is the last one. */
export class UserMessageView {
  /** @param {string} text */
  constructor (text) {
    this.text = text
    this.root = el('article', 'msg msg-user')
    this.root.append(el('h2', 'visually-hidden', 'You said:'))
    this.bubble = el('div', 'bubble', text)
    this.tools = el('div', 'msg-tools')
    this.root.append(this.bubble, this.tools)
  }

  /**
   * @param {((text: string) => void) | null} onEdit  called with the edited text; null: not editable
   */
  setEditable (onEdit) {
    if ((onEdit !== null) === this.tools.hasChildNodes()) return
    this.tools.replaceChildren()
    if (onEdit === null) return
    this.tools.append(actionButton({ icon: 'edit', label: 'Edit message', action: 'edit', run: () => this.#edit(onEdit) }))
  }

  /** @param {(text: string) => void} onEdit */
  #edit (onEdit) {
    const form = /** @type {HTMLFormElement} */ (el('form', 'edit-form'))
    const id = `edit-${Math.random().toString(36).slice(2)}`
    const label = el('label', 'visually-hidden', 'Edit message')
    label.setAttribute('for', id)
    const area = /** @type {HTMLTextAreaElement} */ (el('textarea', 'edit-input'))
    area.id = id
    area.value = this.text
    area.rows = Math.min(10, this.text.split('\n').length + 1)
    const buttons = el('div', 'edit-buttons')
    const cancel = /** @type {HTMLButtonElement} */ (el('button', 'secondary-button', 'Cancel'))
    cancel.type = 'button'
    const save = /** @type {HTMLButtonElement} */ (el('button', 'primary-button', 'Send'))
    save.type = 'submit'
    buttons.append(cancel, save)
    form.append(label, area, buttons)
    const close = () => {
      form.replaceWith(this.bubble)
      this.tools.hidden = false
      this.tools.querySelector('button')?.focus()
    }
    cancel.addEventListener('click', close)
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      const text = area.value
      if (text.trim() === '') return
      onEdit(text)
    })
    area.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault()
        event.stopPropagation() // Escape here cancels the edit; it does not stop an answer
        close()
      } else if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault()
        form.requestSubmit()
      }
    })
    this.bubble.replaceWith(form)
    this.tools.hidden = true
    area.focus()
    area.setSelectionRange(area.value.length, area.value.length)
  }
}

/**
 * @typedef {object} Stats
 * @property {number | null} ttftMs  time to first token; null when unknown (re-attached in another tab)
 * @property {number} tokens  delta events of the answer
 * @property {number | null} tokensPerSecond  the model's rate, over live tokens only
 * @property {number} resumes  connections re-established (drops, reloads)
 */

/**
 * @typedef {object} ErrorCard
 * @property {string} title
 * @property {string} [detail]  the relay's own message
 * @property {string} [code]
 * @property {number} [retryAfter]  seconds the relay asked to wait (`retry-after` of a 429)
 * @property {boolean} [askForKey]  a 401: offer a field for the relay's API key
 * @property {{ label: string, run: (key?: string) => void }} [action]  `key`: what the key field
 *   holds; none: the card only tells (an old answer that failed)
 */

const ms = (/** @type {number} */ value) =>
  value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(value < 10_000 ? 2 : 1)} s`

/**
 * A wait shorter than this shows only the caret: most models start within a second, and a line
 * of text flashing up for a moment would be noise. Longer, the page says it is waiting, and for
 * how long (a model that thinks without showing it can be silent for a minute or more).
 */
const WAITING_SHOWN_AFTER_MS = 1000

/**
 * One assistant answer: its markdown with a caret while it streams, then a notice or an error,
 * its actions and its stats.
 */
export class AnswerView {
  /**
   * @param {object} hooks
   * @param {() => void} [hooks.beforeWrite]  before each frame's render (scroll anchoring)
   * @param {() => void} [hooks.afterWrite]
   * @param {(message: string) => void} [hooks.announce]  a finished block, to screen readers
   * @param {(message: string) => void} [hooks.status]  a short message to screen readers ("Copied")
   */
  constructor (hooks = {}) {
    const announce = hooks.announce ?? (() => {})
    const status = hooks.status ?? (() => {})
    this.root = el('article', 'msg msg-assistant')
    this.root.dataset.state = 'waiting'
    const body = el('div', 'msg-body')
    body.append(el('h2', 'visually-hidden', 'The model said:'))
    // While nothing has come yet: "Waiting for the model… 12 s" (see #tickWaiting). Not a live
    // region: the status region says once that an answer is being generated; the ticking figure
    // is hidden from screen readers.
    this.waiting = el('p', 'waiting')
    this.waiting.hidden = true
    const waitingDot = el('span', 'waiting-dot')
    waitingDot.setAttribute('aria-hidden', 'true')
    this.waitingTime = el('span', 'waiting-time')
    this.waitingTime.setAttribute('aria-hidden', 'true')
    this.waiting.append(waitingDot, el('span', 'waiting-text', 'Waiting for the model…'), this.waitingTime)
    /** @type {ReturnType<typeof setInterval> | 0} */
    this.waitingTimer = 0
    this.waitingSince = 0
    // The reasoning block (a model's thinking, shown collapsible above its answer) mounts here
    // once the relay streams `reasoning` events (startReasoning, showReasoning).
    this.reasoningSlot = el('div', 'reasoning-slot')
    this.reasoningSlot.hidden = true
    /** @type {ReasoningView | null} */
    this.reasoning = null
    this.hooks = hooks
    this.answer = el('div', 'answer markdown')
    this.caret = el('span', 'caret')
    this.caret.setAttribute('aria-hidden', 'true')
    /** Screen readers hear finished blocks while this is on (the answer on screen, live). */
    this.announcing = false
    this.markdown = new StreamingMarkdown(this.answer, {
      caret: this.caret,
      onFinishedBlocks: (nodes) => {
        if (!this.announcing) return
        for (const node of nodes) {
          const text = spokenText(node)
          if (text !== '') announce(text)
        }
      }
    })
    this.notice = el('p', 'notice')
    this.notice.hidden = true
    this.error = el('div', 'error')
    this.error.setAttribute('role', 'alert')
    this.error.hidden = true
    this.footer = el('div', 'answer-footer')
    this.actions = el('div', 'answer-actions')
    this.stats = el('p', 'stats')
    this.stats.hidden = true
    this.footer.append(this.actions, this.stats)
    body.append(this.waiting, this.reasoningSlot, this.answer, this.notice, this.error, this.footer)
    this.root.append(icon('assistant', 'avatar'), body)
    /** @type {(() => void) | undefined} called after each frame's render (live stats) */
    this.onWrite = undefined
    this.typewriter = new Typewriter((text) => {
      hooks.beforeWrite?.()
      this.markdown.append(text)
      this.markdown.render()
      this.onWrite?.()
      hooks.afterWrite?.()
    })
    /** @type {ReturnType<typeof setInterval> | 0} */
    this.countdown = 0
    this.actionsKey = ''
    this.root.addEventListener('click', (event) => {
      const button = /** @type {Element} */ (event.target).closest?.('button[data-action="copy-code"]')
      if (!(button instanceof HTMLButtonElement)) return
      const code = button.closest('.code-block')?.querySelector('code')
      void copyWithFeedback(button, code?.textContent ?? '', status)
    })
  }

  /** @param {string} text  streamed text, shown over the next frames */
  push (text) {
    this.typewriter.push(text)
  }

  /**
   * The thinking block, open, for reasoning that streams now (mounted on first use).
   * @returns {ReasoningView}
   */
  startReasoning () {
    if (this.reasoning === null) {
      this.reasoning = new ReasoningView(this.hooks)
      this.reasoningSlot.append(this.reasoning.root)
      this.reasoningSlot.hidden = false
    }
    return this.reasoning
  }

  /**
   * A finished answer's thinking, closed (restored from storage).
   * @param {string} text
   * @param {number | null} thoughtMs  null: how long is not known
   */
  showReasoning (text, thoughtMs) {
    this.startReasoning().showText(text, thoughtMs)
  }

  /** A finished answer, all at once (restored from storage). */
  showText (text) {
    this.markdown.append(text)
    this.markdown.end()
  }

  /**
   * The answer will grow no more: what is queued is written now, and the tail is rendered as
   * written (no more mending). Not for an answer that may resume (its tail is still live).
   */
  end () {
    this.typewriter.flush()
    this.markdown.end()
  }

  /**
   * @param {'waiting' | 'streaming' | 'done' | 'stopped' | 'error'} state  `waiting`: nothing of
   *   the answer (nor of its thinking) has come yet
   * @param {number} [since]  waiting: when the wait began (epoch ms; the generation's start, which
   *   a reload keeps), else now
   */
  setState (state, since) {
    this.root.dataset.state = state
    const live = state === 'waiting' || state === 'streaming'
    this.root.setAttribute('aria-busy', String(live))
    if (!live) this.caret.remove()
    if (state === 'waiting') this.#startWaiting(since ?? Date.now())
    else this.#stopWaiting()
  }

  /** @param {number} since */
  #startWaiting (since) {
    this.waitingSince = since
    this.#tickWaiting()
    if (this.waitingTimer === 0) this.waitingTimer = setInterval(() => this.#tickWaiting(), 250)
  }

  #tickWaiting () {
    const elapsed = Date.now() - this.waitingSince
    const shown = elapsed >= WAITING_SHOWN_AFTER_MS
    if (shown === this.waiting.hidden) {
      this.waiting.hidden = !shown
      // The indicator takes the empty answer's place (its caret) while it shows.
      if (shown) this.root.dataset.waiting = 'true'
      else delete this.root.dataset.waiting
    }
    const seconds = `${Math.floor(elapsed / 1000)} s`
    if (this.waitingTime.textContent !== seconds) this.waitingTime.textContent = seconds
  }

  #stopWaiting () {
    if (this.waitingTimer !== 0) clearInterval(this.waitingTimer)
    this.waitingTimer = 0
    this.waiting.hidden = true
    delete this.root.dataset.waiting
  }

  /** @param {string} text */
  showNotice (text) {
    this.notice.textContent = text
    this.notice.hidden = false
  }

  /** @param {ErrorCard} error */
  showError ({ title, detail, code, retryAfter, askForKey, action }) {
    this.clearError()
    const text = el('div', 'error-text')
    text.append(el('p', 'error-title', title))
    if (detail) {
      const p = el('p', 'error-detail', detail)
      if (code) p.append(' ', el('code', 'error-code', code))
      text.append(p)
    }
    if (retryAfter !== undefined) text.append(this.#waitLine(retryAfter))
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
    if (action) {
      const button = /** @type {HTMLButtonElement} */ (el('button', 'retry', action.label))
      button.type = 'button'
      button.dataset.action = 'retry'
      button.addEventListener('click', () => action.run(keyInput?.value.trim()))
      // Enter in the key field is the same as pressing the button next to it.
      keyInput?.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' && !event.isComposing) {
          event.preventDefault()
          button.click()
        }
      })
      actions.append(button)
    }
    this.error.append(actions)
    this.error.hidden = false
  }

  /**
   * "You can retry in 12 s", counting down. The alert is read once, with the wait in words; the
   * ticking figure is hidden from screen readers (a live region would read every second).
   * @param {number} seconds
   */
  #waitLine (seconds) {
    const line = el('p', 'error-wait')
    const whole = Math.ceil(seconds)
    line.append(el('span', 'visually-hidden', `The relay asks to wait ${whole} ${whole === 1 ? 'second' : 'seconds'} before retrying.`))
    const visible = el('span', 'error-wait-count')
    visible.setAttribute('aria-hidden', 'true')
    visible.dataset.seconds = String(whole)
    line.append(visible)
    const until = Date.now() + seconds * 1000
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000)
      visible.dataset.seconds = String(Math.max(0, left))
      visible.textContent = left > 0 ? `You can retry in ${left} s.` : 'You can retry now.'
      if (left <= 0) this.#stopCountdown()
    }
    tick()
    this.countdown = setInterval(tick, 250)
    return line
  }

  #stopCountdown () {
    if (this.countdown !== 0) clearInterval(this.countdown)
    this.countdown = 0
  }

  clearError () {
    this.#stopCountdown()
    this.error.hidden = true
    this.error.replaceChildren()
  }

  /** @returns {HTMLButtonElement | null} */
  get retryButton () {
    return this.error.querySelector('button.retry')
  }

  /**
   * The buttons under a finished answer.
   * @param {object} actions
   * @param {string | null} actions.copy  the text Copy puts on the clipboard; null: no Copy
   * @param {(() => void) | null} actions.regenerate  null: no Regenerate (not the last answer)
   * @param {(message: string) => void} actions.status  "Copied", to screen readers
   */
  setActions ({ copy, regenerate, status }) {
    // Rebuilt only when they change: a button with keyboard focus is left alone.
    const key = `${copy !== null}:${regenerate !== null}`
    if (key === this.actionsKey) return
    this.actionsKey = key
    this.actions.replaceChildren()
    if (copy !== null) {
      const button = actionButton({ icon: 'copy', label: 'Copy answer', action: 'copy', run: () => { void copyWithFeedback(button, copy, status) } })
      this.actions.append(button)
    }
    if (regenerate !== null) this.actions.append(actionButton({ icon: 'regenerate', label: 'Regenerate answer', action: 'regenerate', run: regenerate }))
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
