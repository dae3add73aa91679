// The list of conversations: open one, rename it, delete it (after a confirmation in place).
// Rebuilt from the store's index whenever it changes; a row being renamed or confirmed is left
// alone until the user is done with it, and keyboard focus stays on the row it was on.

import { el } from './dom.js'
import { actionButton } from './views.js'

/**
 * @typedef {object} ChatListActions
 * @property {(id: string) => void} open
 * @property {(id: string, title: string) => void} rename
 * @property {(id: string) => void} remove
 */

export class ChatList {
  /** @type {string | null} a row in rename or confirm mode */
  #busyRow = null
  /** @type {(() => void) | null} the last render asked for (re-run when a busy row is done) */
  #last = null

  /**
   * @param {HTMLUListElement} list
   * @param {HTMLElement} emptyNote  shown when there is no conversation
   * @param {ChatListActions} actions
   */
  constructor (list, emptyNote, actions) {
    this.list = list
    this.emptyNote = emptyNote
    this.actions = actions
  }

  /**
   * @param {import('./conversations.js').ConversationSummary[]} summaries  newest first
   * @param {string} currentId
   * @param {Set<string>} answering  conversations with an answer being generated
   */
  render (summaries, currentId, answering) {
    this.#last = () => this.render(summaries, currentId, answering)
    if (this.#busyRow !== null) return
    // Where the keyboard was, so that it stays there.
    const focused = /** @type {HTMLElement | null} */ (document.activeElement)
    const focusRow = this.list.contains(focused) ? focused?.closest('li')?.dataset.id : undefined
    const focusAction = focused?.dataset.action
    const rows = summaries.map((summary) => this.#row(summary, summary.id === currentId, answering.has(summary.id)))
    this.list.replaceChildren(...rows)
    this.emptyNote.hidden = rows.length > 0
    if (focusRow !== undefined) {
      const row = rows.find((r) => r.dataset.id === focusRow)
      const target = row?.querySelector(`[data-action="${focusAction}"]`) ?? row?.querySelector('button')
      if (target instanceof HTMLElement) target.focus()
    }
  }

  /**
   * @param {import('./conversations.js').ConversationSummary} summary
   * @param {boolean} current
   * @param {boolean} answering
   */
  #row ({ id, title }, current, answering) {
    const row = el('li', 'chat-item')
    row.dataset.id = id
    const open = /** @type {HTMLButtonElement} */ (el('button', 'chat-open'))
    open.type = 'button'
    open.dataset.action = 'open'
    open.append(el('span', 'chat-title', title))
    if (answering) {
      const dot = el('span', 'chat-answering')
      dot.append(el('span', 'visually-hidden', ' (answering)'))
      open.append(dot)
    }
    if (current) open.setAttribute('aria-current', 'page')
    open.addEventListener('click', () => this.actions.open(id))
    const tools = el('div', 'chat-tools')
    tools.append(
      actionButton({ icon: 'rename', label: `Rename “${title}”`, action: 'rename', run: () => this.#rename(row, title) }),
      actionButton({ icon: 'trash', label: `Delete “${title}”`, action: 'delete', run: () => this.#confirmDelete(row, title) })
    )
    row.append(open, tools)
    return row
  }

  /**
   * @param {HTMLElement} row
   * @param {string} title
   */
  #rename (row, title) {
    const id = /** @type {string} */ (row.dataset.id)
    this.#busyRow = id
    const input = /** @type {HTMLInputElement} */ (el('input', 'chat-rename-input'))
    input.type = 'text'
    input.value = title
    input.maxLength = 120
    input.setAttribute('aria-label', 'Chat name')
    let settled = false
    /**
     * @param {boolean} save
     * @param {boolean} refocus  back to the row's Rename (not when focus went elsewhere: blur)
     */
    const finish = (save, refocus) => {
      if (settled) return
      settled = true
      this.#busyRow = null
      const name = input.value.trim()
      if (save && name !== '' && name !== title) this.actions.rename(id, name)
      else this.#last?.()
      if (refocus) this.#focus(id, 'rename')
    }
    input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.isComposing) {
        event.preventDefault()
        finish(true, true)
      } else if (event.key === 'Escape') {
        event.preventDefault()
        event.stopPropagation() // cancels the rename, nothing else
        finish(false, true)
      }
    })
    input.addEventListener('blur', () => finish(true, false))
    row.replaceChildren(input)
    input.focus()
    input.select()
  }

  /**
   * @param {HTMLElement} row
   * @param {string} title
   */
  #confirmDelete (row, title) {
    const id = /** @type {string} */ (row.dataset.id)
    this.#busyRow = id
    const question = el('p', 'chat-confirm', `Delete “${title}”?`)
    const yes = /** @type {HTMLButtonElement} */ (el('button', 'danger-button', 'Delete'))
    yes.type = 'button'
    yes.dataset.action = 'confirm-delete'
    const no = /** @type {HTMLButtonElement} */ (el('button', 'secondary-button', 'Cancel'))
    no.type = 'button'
    no.dataset.action = 'cancel-delete'
    const cancel = () => {
      this.#busyRow = null
      this.#last?.()
      this.#focus(id, 'delete')
    }
    yes.addEventListener('click', () => {
      // Focus goes to the next row (or the one before), as the row disappears.
      const next = /** @type {HTMLElement | null} */ (row.nextElementSibling ?? row.previousElementSibling)?.dataset.id
      this.#busyRow = null
      this.actions.remove(id)
      if (next === undefined || !this.#focus(next, 'open')) document.getElementById('new-chat')?.focus()
    })
    no.addEventListener('click', cancel)
    row.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.#busyRow === id) {
        event.preventDefault()
        event.stopPropagation()
        cancel()
      }
    })
    const buttons = el('div', 'chat-confirm-buttons')
    buttons.append(no, yes)
    row.classList.add('confirming')
    row.replaceChildren(question, buttons)
    no.focus()
  }

  /**
   * @param {string} id  a row
   * @param {string} action  the data-action of the button to focus in it
   * @returns {boolean} whether there was one
   */
  #focus (id, action) {
    const button = /** @type {HTMLElement | null} */ (this.list.querySelector(`li[data-id="${CSS.escape(id)}"] [data-action="${action}"]`))
    button?.focus()
    return button !== null
  }
}
