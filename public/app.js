// The typewriter chat page: the relay's reference client.
//
// One answer = one Generation: POST /v1/chat starts it, a StreamFollower (stream.js) reads its
// events and resumes after drops, an AnswerView (views.js) shows it. The conversation
// (id, messages, and the id of an answer still being generated) lives in localStorage, so a
// reload re-attaches to the running answer through GET /v1/conversations/:id/stream.
//
// Test and demo hook: window.__relayExtraBody (an object, or a function returning one) is merged
// into every POST /v1/chat body. The relay forwards unknown fields upstream and the embedded mock
// upstream reads a `mock` field, so the browser tests (or a developer in the console) script the
// answer, e.g. `window.__relayExtraBody = { mock: { tokens: ['Hi', '!'], tokenDelayMs: 50 } }`.
// Only code already running in the page can set it, so it opens nothing to other origins.

import { StreamFollower, HttpError, httpErrorFrom } from './stream.js'
import { AnswerView, userMessage } from './views.js'

const STORAGE_KEY = 'llm-relay:conversation'
const API_KEY_STORAGE = 'llm-relay:api-key'

const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id))
const ui = {
  main: byId('main'),
  log: byId('log'),
  empty: byId('empty'),
  form: /** @type {HTMLFormElement} */ (byId('composer')),
  prompt: /** @type {HTMLTextAreaElement} */ (byId('prompt')),
  send: /** @type {HTMLButtonElement} */ (byId('send')),
  stop: /** @type {HTMLButtonElement} */ (byId('stop')),
  newChat: /** @type {HTMLButtonElement} */ (byId('new-chat')),
  connection: byId('connection'),
  status: byId('status')
}

/**
 * @typedef {{ role: 'user' | 'assistant', content: string, stats?: import('./views.js').Stats }} Message
 * @typedef {{ conversationId: string, messages: Message[], pending: { streamId: string } | null }} Conversation
 */

function newId () {
  // crypto.randomUUID needs a secure context; a relay reached as http://some-host is not one.
  if (typeof crypto.randomUUID === 'function' && window.isSecureContext) return crypto.randomUUID()
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('')
}

/** @returns {Conversation} */
function loadConversation () {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null')
    if (saved && typeof saved.conversationId === 'string' && Array.isArray(saved.messages)) return saved
  } catch {
    // Unreadable or from another version: start over.
  }
  return { conversationId: newId(), messages: [], pending: null }
}

let conversation = loadConversation()
const saveConversation = () => {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(conversation))
  } catch {
    // Storage full or disabled (private mode): the chat still works, a reload forgets it.
  }
}

function authHeaders () {
  const key = localStorage.getItem(API_KEY_STORAGE)
  /** @type {Record<string, string>} */
  const headers = {}
  if (key) headers.authorization = `Bearer ${key}`
  return headers
}

function extraBody () {
  // @ts-ignore: the documented test hook above, not part of Window's type
  const hook = window.__relayExtraBody
  const extra = typeof hook === 'function' ? hook() : hook
  return extra && typeof extra === 'object' ? extra : {}
}

/** @param {string} text */
const announce = (text) => { ui.status.textContent = text }

// Keep the newest text in view while the reader is at the bottom; leave them alone once they
// scroll up to read. Measured before each typewriter write, applied after it (one layout a frame).
let stickToBottom = true
const measureStick = () => {
  stickToBottom = ui.main.scrollHeight - ui.main.scrollTop - ui.main.clientHeight < 64
}
const applyStick = () => {
  if (stickToBottom) ui.main.scrollTop = ui.main.scrollHeight
}
const scrollToEnd = () => { ui.main.scrollTop = ui.main.scrollHeight }

/** @param {string | null} state */
function showConnection (state) {
  const text = {
    reconnecting: 'Reconnecting…',
    offline: 'Offline: the answer continues when you are back online'
  }[state ?? ''] ?? null
  ui.connection.hidden = text === null
  ui.connection.textContent = text ?? ''
  ui.connection.dataset.state = state ?? ''
}

/** @param {boolean} busy */
function setBusy (busy) {
  const hadFocus = document.activeElement === ui.prompt || document.activeElement === ui.stop
  ui.prompt.disabled = busy
  ui.send.hidden = busy
  ui.stop.hidden = !busy
  ui.stop.disabled = !busy
  ui.log.setAttribute('aria-busy', String(busy))
  updateSendEnabled()
  // A disabled textarea drops focus to <body>; keep the keyboard where the action is.
  if (hadFocus) (busy ? ui.stop : ui.prompt).focus()
}

function updateSendEnabled () {
  ui.send.disabled = ui.prompt.disabled || ui.prompt.value.trim() === ''
}

function autoGrow () {
  ui.prompt.style.height = 'auto'
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 200)}px`
}

/** @param {HTMLElement} node */
function appendToLog (node) {
  ui.empty.hidden = true
  ui.log.append(node)
}

const CUT_REASONS = /** @type {Record<string, string>} */ ({
  abandoned: 'The relay stopped this answer because no one was reading it.',
  timeout: 'The answer took too long and was cut off by the relay.',
  shutdown: 'The relay restarted while answering.',
  slow_consumer: 'The connection was too slow to keep up with the answer.',
  superseded: 'A newer answer in this conversation (another tab?) replaced this one.',
  error: 'The answer failed.'
})

/** One answer being generated (or re-attached to) and shown. */
class Generation {
  /** @param {AnswerView} view */
  constructor (view) {
    this.view = view
    this.text = ''
    this.done = false
    this.finished = false
    this.stoppedByUser = false
    /** @type {string | null} */
    this.streamId = null
    /** @type {string | null} */
    this.closeReason = null
    /** @type {{ code: string, message: string } | null} */
    this.streamError = null
    /** @type {string | null} */
    this.finishReason = null
    /** @type {StreamFollower | null} */
    this.follower = null
    this.startedAt = performance.now()
    /** @type {number | null} */
    this.firstTokenAt = null
    /** @type {number | null} */
    this.lastTokenAt = null
    this.tokens = 0
    this.resumes = 0
    this.ttftKnown = true
    view.onWrite = () => this.renderStats()
  }

  /** @returns {import('./views.js').Stats} */
  stats () {
    const end = this.finished ? this.lastTokenAt : performance.now()
    const seconds = this.firstTokenAt !== null && end !== null ? (end - this.firstTokenAt) / 1000 : 0
    return {
      ttftMs: this.ttftKnown && this.firstTokenAt !== null ? this.firstTokenAt - this.startedAt : null,
      tokens: this.tokens,
      // Below a quarter second the rate is noise (and after a replay, a burst).
      tokensPerSecond: this.tokens > 1 && seconds >= 0.25 ? (this.tokens - 1) / seconds : null,
      resumes: this.resumes
    }
  }

  renderStats () {
    this.view.renderStats(this.stats())
  }

  /** Starts a new answer for the conversation's messages. */
  async start () {
    setBusy(true)
    this.view.setState('waiting')
    announce('Generating an answer…')
    let res
    try {
      res = await fetch('/v1/chat', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...authHeaders() },
        body: JSON.stringify({
          ...extraBody(),
          messages: conversation.messages.map(({ role, content }) => ({ role, content })),
          conversationId: conversation.conversationId
        })
      })
    } catch {
      if (this.stoppedByUser) return
      return this.fail({ title: 'Could not reach the relay.', detail: 'Check your connection and try again.', action: 'regenerate' })
    }
    if (!res.ok) {
      const error = await httpErrorFrom(res)
      if (this.stoppedByUser) return
      return this.failHttp(error)
    }
    /** @type {{ streamId?: unknown, streamUrl?: unknown }} */
    let created
    try {
      created = await res.json()
    } catch {
      created = {}
    }
    const { streamId, streamUrl } = created
    if (typeof streamId !== 'string' || typeof streamUrl !== 'string') {
      if (this.stoppedByUser) return
      return this.fail({ title: 'The relay answered in a way this page does not understand.', detail: `HTTP ${res.status} without a stream id.`, action: 'regenerate' })
    }
    this.streamId = streamId
    if (this.stoppedByUser) {
      // Stop was pressed while the POST was in flight: stop the generation now that it has an id.
      return this.cancelOnRelay()
    }
    conversation.pending = { streamId }
    saveConversation()
    await this.follow(streamUrl)
  }

  /**
   * Re-attaches after a reload: the conversation's active generation, else (it finished
   * meanwhile) a replay of the one this page was showing, which the relay keeps for RETAIN_MS.
   * @param {string} streamId
   */
  async reattach (streamId) {
    this.streamId = streamId
    this.ttftKnown = false
    setBusy(true)
    this.view.setState('waiting')
    announce('Re-attaching to the answer in progress…')
    const attachUrl = `/v1/conversations/${encodeURIComponent(conversation.conversationId)}/stream`
    const outcome = await this.follow(attachUrl, true)
    if (outcome === 'none') await this.follow(`/v1/chat/stream/${encodeURIComponent(streamId)}`, true)
  }

  /**
   * @param {string} url
   * @param {boolean} [reattaching]  count the first connection as a resume (the page reloaded)
   * @param {string | null} [lastEventId]
   * @returns {Promise<'closed' | 'none' | 'stopped' | 'failed'>}
   */
  async follow (url, reattaching = false, lastEventId = null) {
    this.follower = new StreamFollower({
      url,
      lastEventId,
      headers: authHeaders(),
      onEvent: (event) => this.onEvent(event),
      onOpen: (res) => {
        const id = res.headers.get('x-stream-id')
        if (id && id !== this.streamId) {
          this.streamId = id
          conversation.pending = { streamId: id }
          saveConversation()
        }
        if (reattaching) {
          reattaching = false
          this.resumes++
          this.renderStats()
        }
      },
      onResume: () => {
        this.resumes++
        this.renderStats()
        announce('Reconnected; the answer continues.')
      },
      onState: (state) => {
        if (this.finished) return
        showConnection(state === 'reconnecting' || state === 'offline' ? state : null)
        if (state === 'reconnecting') announce('Connection lost, reconnecting…')
      }
    })
    let outcome
    try {
      outcome = await this.follower.run()
    } catch (err) {
      showConnection(null)
      if (this.finished) return 'failed'
      if (err instanceof HttpError) {
        if (err.status === 404) {
          this.fail({ title: 'This answer is no longer available on the relay.', detail: err.message, code: err.code, action: 'regenerate' })
        } else {
          this.failHttp(err)
        }
      } else {
        // Gave up reconnecting: offer to try again from where the text stopped.
        this.fail({ title: 'The connection to the relay was lost.', detail: 'The answer may still be running; reconnect to continue it.', action: 'resume' })
      }
      return 'failed'
    }
    showConnection(null)
    if (outcome === 'closed') this.onClosed()
    return outcome
  }

  /** @param {import('./sse.js').SseMessage} event */
  onEvent (event) {
    if (this.finished) return
    if (event.event === 'close') {
      this.closeReason = parseJson(event.data)?.reason ?? 'unknown'
      return
    }
    if (event.event === 'error') {
      const data = parseJson(event.data)
      this.streamError = { code: String(data?.code ?? 'error'), message: String(data?.message ?? 'The answer failed.') }
      return
    }
    if (event.data === '[DONE]') {
      this.done = true
      // The answer is complete: the input comes back now, without waiting for `close`.
      this.complete()
      return
    }
    const data = parseJson(event.data)
    if (!data) return
    if (data.type === 'delta' && (data.choice ?? 0) === 0 && typeof data.content === 'string') {
      const now = performance.now()
      if (this.firstTokenAt === null) {
        this.firstTokenAt = now
        this.view.setState('streaming')
      }
      this.lastTokenAt = now
      this.tokens++
      this.text += data.content
      this.view.typewriter.push(data.content)
    } else if (data.type === 'finish' && (data.choice ?? 0) === 0) {
      this.finishReason = String(data.reason)
    }
  }

  /** The stream ended with `close`. */
  onClosed () {
    if (this.finished) return
    if (this.done) return this.complete()
    if (this.streamError) {
      const title = this.text === '' ? 'The model could not answer.' : 'The answer was interrupted by an error.'
      return this.fail({ title, detail: this.streamError.message, code: this.streamError.code, action: 'regenerate' })
    }
    if (this.closeReason === 'cancelled') {
      // Stopped by another tab or client: the same outcome as our own Stop.
      return this.stopped('Stopped.')
    }
    const reason = this.closeReason ?? 'unknown'
    this.fail({ title: 'The answer was cut off.', detail: CUT_REASONS[reason] ?? `The relay closed the stream (${reason}).`, code: reason, action: 'regenerate' })
  }

  complete () {
    if (this.finished) return
    this.finished = true
    conversation.messages.push({ role: 'assistant', content: this.text, stats: this.stats() })
    conversation.pending = null
    saveConversation()
    if (this.finishReason === 'length') this.view.showNotice('The answer reached the length limit.')
    this.endTurn('done', 'Answer complete.')
  }

  /** @param {string} notice */
  stopped (notice) {
    if (this.finished) return
    this.finished = true
    this.follower?.stop()
    this.view.typewriter.flush()
    // Keep what was said: the next turn's context includes the partial answer, as on screen.
    if (this.text !== '') conversation.messages.push({ role: 'assistant', content: this.text, stats: this.stats() })
    conversation.pending = null
    saveConversation()
    this.view.showNotice(notice)
    this.endTurn('stopped', 'Stopped.')
  }

  /** The Stop button. */
  stop () {
    if (this.finished) return
    this.stoppedByUser = true
    this.stopped('Stopped.')
    if (this.streamId !== null) this.cancelOnRelay()
  }

  async cancelOnRelay () {
    try {
      const res = await fetch(`/v1/chat/stream/${encodeURIComponent(String(this.streamId))}`, {
        method: 'DELETE',
        headers: authHeaders()
      })
      // 404: it already ended; anything else worse is worth telling, the model may still run.
      if (!res.ok && res.status !== 404) {
        const error = await httpErrorFrom(res)
        this.view.showNotice(`Stopped here, but the relay could not stop the model: ${error.message}`)
      }
    } catch {
      this.view.showNotice('Stopped here, but the relay could not be reached to stop the model.')
    }
  }

  /** @param {HttpError} error */
  failHttp (error) {
    const titles = /** @type {Record<number, string>} */ ({
      401: 'The relay needs an API key.',
      413: 'The conversation is too long for the relay.',
      429: 'Too many answers at once: wait a moment.',
      502: 'The model provider failed.',
      503: 'The relay is busy.',
      504: 'The model provider did not answer in time.'
    })
    this.fail({
      title: titles[error.status] ?? `The relay refused the request (${error.status}).`,
      detail: error.message,
      code: error.code,
      action: 'regenerate',
      askForKey: error.status === 401
    })
  }

  /**
   * @param {object} failure
   * @param {string} failure.title
   * @param {string} [failure.detail]
   * @param {string} [failure.code]
   * @param {'regenerate' | 'resume'} failure.action
   * @param {boolean} [failure.askForKey]
   */
  fail ({ title, detail, code, action, askForKey }) {
    if (this.finished) return
    this.finished = true
    this.follower?.stop()
    this.view.typewriter.flush()
    if (action === 'regenerate') {
      conversation.pending = null
      saveConversation()
    }
    this.view.showError({
      title,
      detail,
      code,
      askForKey,
      saveKey: (key) => {
        if (key) localStorage.setItem(API_KEY_STORAGE, key)
        else localStorage.removeItem(API_KEY_STORAGE)
      },
      action: action === 'resume'
        ? { label: 'Reconnect', run: () => this.resumeAfterFailure() }
        : { label: 'Retry', run: () => regenerate(this) }
    })
    this.endTurn('error', `Error: ${title}`)
    this.view.retryButton?.focus()
  }

  /** Reconnect, after giving up, from the last event received: no text is lost or repeated. */
  resumeAfterFailure () {
    const lastEventId = this.follower?.lastEventId ?? null
    const url = this.follower?.url ?? `/v1/chat/stream/${encodeURIComponent(String(this.streamId))}`
    this.finished = false
    this.view.clearError()
    this.view.setState('streaming')
    setBusy(true)
    current = this
    this.follow(url, false, lastEventId)
  }

  /**
   * @param {'done' | 'stopped' | 'error'} state
   * @param {string} message
   */
  endTurn (state, message) {
    showConnection(null)
    if (current === this) current = null
    setBusy(false)
    this.renderStats()
    announce(message)
    // The caret goes, and the test-visible state changes, only once the text is all on screen.
    this.view.typewriter.drained().then(() => {
      this.renderStats()
      this.view.setState(state)
    })
  }
}

/** @param {string} text */
function parseJson (text) {
  try {
    const value = JSON.parse(text)
    return value && typeof value === 'object' ? value : null
  } catch {
    return null
  }
}

/** @type {Generation | null} */
let current = null

function newAnswerView () {
  const view = new AnswerView({ beforeWrite: measureStick, afterWrite: applyStick })
  appendToLog(view.root)
  return view
}

/** @param {string} text */
function send (text) {
  if (current) return
  conversation.messages.push({ role: 'user', content: text })
  saveConversation()
  appendToLog(userMessage(text))
  const generation = new Generation(newAnswerView())
  current = generation
  scrollToEnd()
  generation.start()
}

/**
 * Replaces a failed answer with a new one for the same messages.
 * @param {Generation} failed
 */
function regenerate (failed) {
  if (current) return
  const view = newAnswerView()
  failed.view.root.replaceWith(view.root)
  const generation = new Generation(view)
  current = generation
  generation.start()
}

function renderConversation () {
  for (const message of conversation.messages) {
    if (message.role === 'user') {
      appendToLog(userMessage(message.content))
    } else {
      const view = newAnswerView()
      view.typewriter.push(message.content)
      view.typewriter.flush()
      if (message.stats) view.renderStats(message.stats)
      view.setState('done')
    }
  }
  scrollToEnd()
}

function newChat () {
  current?.stop()
  conversation = { conversationId: newId(), messages: [], pending: null }
  saveConversation()
  for (const node of [...ui.log.children]) if (node !== ui.empty) node.remove()
  ui.empty.hidden = false
  ui.prompt.value = ''
  autoGrow()
  updateSendEnabled()
  ui.prompt.focus()
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault()
  const text = ui.prompt.value
  if (text.trim() === '' || current) return
  ui.prompt.value = ''
  autoGrow()
  send(text)
})
ui.prompt.addEventListener('keydown', (event) => {
  // Enter sends, Shift+Enter is a new line; not while an IME is composing (Japanese, Chinese…).
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault()
    ui.form.requestSubmit()
  }
})
ui.prompt.addEventListener('input', () => {
  autoGrow()
  updateSendEnabled()
})
ui.stop.addEventListener('click', () => current?.stop())
ui.newChat.addEventListener('click', newChat)

renderConversation()
const pending = conversation.pending
if (pending && conversation.messages.at(-1)?.role === 'user') {
  const generation = new Generation(newAnswerView())
  current = generation
  generation.reattach(pending.streamId)
} else {
  conversation.pending = null
  setBusy(false)
  ui.prompt.focus()
}
