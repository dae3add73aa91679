// The conversations, kept in the browser's localStorage: one key per conversation (so two tabs
// writing different conversations never overwrite each other), and a small index of ids, titles
// and dates for the list. A conversation's id is the `conversationId` the relay knows it by, so a
// reload re-attaches to its running answer through GET /v1/conversations/:id/stream.

const INDEX_KEY = 'llm-relay:conversations'
const RECORD_PREFIX = 'llm-relay:conversation:'
const CURRENT_KEY = 'llm-relay:current'
/** The single conversation of earlier versions of the page, taken over once. */
const LEGACY_KEY = 'llm-relay:conversation'

/**
 * @typedef {object} Message
 * @property {'user' | 'assistant'} role
 * @property {string} content  exactly the text written (the model's, for an answer)
 * @property {import('./views.js').Stats} [stats]
 * @property {string} [reasoning]  an answer's thinking (the model's `reasoning` events), exactly
 * @property {number} [thoughtMs]  how long it thought, when the page could tell (generation.js)
 * @property {'done' | 'stopped' | 'error'} [outcome]  how an answer ended (none: done)
 * @property {string} [notice]  shown under the answer ("Stopped.", "reached the length limit")
 * @property {{ title: string, detail?: string, code?: string }} [error]  a failed answer's card
 */

/**
 * @typedef {object} Progress  what a reload needs to keep the stats of a running answer right
 * @property {string | null} lastEventId  the last event the page had received
 * @property {number} tokens
 * @property {number | null} firstTokenAt  epoch ms
 * @property {number | null} lastTokenAt  epoch ms
 * @property {number | null} ttftMs
 * @property {number} resumes
 * @property {number | null} [reasoningStartedAt]  epoch ms, when the thinking was seen starting live
 * @property {number | null} [thoughtMs]  how long the model thought, once measured
 */

/**
 * @typedef {object} Pending  an answer being generated
 * @property {string} streamId
 * @property {number} [startedAt]  epoch ms, when this page asked for it (the wait shown counts from it)
 * @property {Progress} [progress]
 */

/**
 * @typedef {object} Conversation
 * @property {string} id  also the relay's conversationId
 * @property {string} [title]  set by Rename; else the first question is the title
 * @property {number} createdAt  epoch ms
 * @property {number} updatedAt
 * @property {Message[]} messages
 * @property {Pending | null} pending
 */

/** @typedef {{ id: string, title: string, updatedAt: number }} ConversationSummary */

/** A new conversation id, in the form the relay accepts (`[A-Za-z0-9_.:-]{1,128}`). */
export function newId () {
  // crypto.randomUUID needs a secure context; a relay reached as http://some-host is not one.
  if (typeof crypto.randomUUID === 'function' && window.isSecureContext) return crypto.randomUUID()
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('')
}

/** @returns {Conversation} */
export function newConversation () {
  const now = Date.now()
  return { id: newId(), createdAt: now, updatedAt: now, messages: [], pending: null }
}

/** @param {Conversation} conversation */
export function titleOf (conversation) {
  if (conversation.title) return conversation.title
  const first = conversation.messages.find((m) => m.role === 'user')?.content.trim().split('\n', 1)[0] ?? ''
  if (first === '') return 'New chat'
  return first.length > 60 ? `${first.slice(0, 57).trimEnd()}…` : first
}

/** @param {unknown} value */
function isConversation (value) {
  const c = /** @type {Conversation} */ (value)
  return value !== null && typeof value === 'object' && typeof c.id === 'string' && Array.isArray(c.messages)
}

/**
 * @param {string} key
 * @returns {unknown}
 */
function read (key) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? 'null')
  } catch {
    return null // unreadable, or from another version: treated as absent
  }
}

/**
 * @param {string} key
 * @param {unknown} value
 */
function write (key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value))
  } catch {
    // Storage full or disabled (private mode): the chat still works, a reload forgets it.
  }
}

export class ConversationStore {
  constructor () {
    this.#adoptLegacy()
  }

  /** @returns {ConversationSummary[]} newest first */
  list () {
    const index = read(INDEX_KEY)
    if (!Array.isArray(index)) return []
    return index
      .filter((s) => s && typeof s.id === 'string' && typeof s.title === 'string')
      .sort((a, b) => (b.updatedAt ?? 0) - (a.updatedAt ?? 0))
  }

  /**
   * @param {string} id
   * @returns {Conversation | null}
   */
  load (id) {
    const value = read(RECORD_PREFIX + id)
    if (!isConversation(value)) return null
    const conversation = /** @type {Conversation} */ (value)
    conversation.pending ??= null
    return conversation
  }

  /**
   * Saves a conversation and its line in the index. An empty one is not listed (a new chat
   * appears once something was asked in it).
   * @param {Conversation} conversation
   * @param {{ touch?: boolean }} [options]  touch: it changed now (moves it up the list)
   */
  save (conversation, { touch = true } = {}) {
    if (touch) conversation.updatedAt = Date.now()
    if (conversation.messages.length === 0 && conversation.pending === null) return
    write(RECORD_PREFIX + conversation.id, conversation)
    // Read the index again just before writing it: another tab may have changed it.
    const index = this.list().filter((s) => s.id !== conversation.id)
    index.push({ id: conversation.id, title: titleOf(conversation), updatedAt: conversation.updatedAt })
    write(INDEX_KEY, index)
  }

  /** @param {string} id */
  remove (id) {
    try {
      localStorage.removeItem(RECORD_PREFIX + id)
    } catch {}
    write(INDEX_KEY, this.list().filter((s) => s.id !== id))
  }

  /** The conversation shown last in this browser, if any. */
  get currentId () {
    try {
      return localStorage.getItem(CURRENT_KEY)
    } catch {
      return null
    }
  }

  set currentId (id) {
    try {
      if (id === null) localStorage.removeItem(CURRENT_KEY)
      else localStorage.setItem(CURRENT_KEY, id)
    } catch {}
  }

  /**
   * @param {StorageEvent} event  from another tab
   * @returns {boolean} whether it concerns the list
   */
  static isListChange (event) {
    return event.key === null || event.key === INDEX_KEY
  }

  /**
   * @param {StorageEvent} event
   * @returns {string | null} the conversation it changed, if it is one
   */
  static changedConversation (event) {
    return event.key?.startsWith(RECORD_PREFIX) ? event.key.slice(RECORD_PREFIX.length) : null
  }

  #adoptLegacy () {
    const legacy = /** @type {{ conversationId?: unknown, messages?: unknown, pending?: unknown } | null} */ (read(LEGACY_KEY))
    if (legacy === null) return
    if (typeof legacy.conversationId === 'string' && Array.isArray(legacy.messages)) {
      const now = Date.now()
      /** @type {Conversation} */
      const conversation = {
        id: legacy.conversationId,
        createdAt: now,
        updatedAt: now,
        messages: legacy.messages,
        pending: /** @type {Conversation['pending']} */ (legacy.pending ?? null)
      }
      this.save(conversation)
      this.currentId = conversation.id
    }
    try {
      localStorage.removeItem(LEGACY_KEY)
    } catch {}
  }
}
