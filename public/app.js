// The chat page: the relay's reference client.
//
// Conversations live in localStorage (conversations.js), listed in the sidebar (sidebar.js). One
// answer = one Generation (generation.js); several conversations may each have one running: an
// answer goes on in the background while another conversation is shown, and on a reload every
// running answer is re-attached through GET /v1/conversations/:id/stream. Answers render as
// sanitized markdown while they stream (views.js, streaming-markdown.js, markdown.js).
//
// Test and demo hook: window.__relayExtraBody (an object, or a function returning one) is merged
// into every POST /v1/chat body. The relay forwards unknown fields upstream and the embedded mock
// upstream reads a `mock` field, so the browser tests (or a developer in the console) script the
// answer, e.g. `window.__relayExtraBody = { mock: { tokens: ['Hi', '!'], tokenDelayMs: 50 } }`.
// Only code already running in the page can set it, so it opens nothing to other origins.

import { ConversationStore, newConversation } from './conversations.js'
import { el } from './dom.js'
import { Generation } from './generation.js'
import { ChatList } from './sidebar.js'
import { AnswerView, UserMessageView } from './views.js'

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
  toggleChats: /** @type {HTMLButtonElement} */ (byId('toggle-chats')),
  sidebar: byId('sidebar'),
  backdrop: byId('backdrop'),
  connection: byId('connection'),
  status: byId('status'),
  announcer: byId('announcer')
}

/**
 * @typedef {import('./conversations.js').Conversation} Conversation
 * @typedef {import('./conversations.js').Message} Message
 */

const store = new ConversationStore()
/** @type {Map<string, Generation>} the answer being generated in each conversation */
const running = new Map()
/** @type {WeakMap<Message, UserMessageView | AnswerView>} the views of the shown conversation */
const views = new WeakMap()
/** @type {Conversation} */
let current = (() => {
  const id = store.currentId
  return (id !== null && store.load(id)) || newConversation()
})()

const chatList = new ChatList(/** @type {HTMLUListElement} */ (byId('chat-list')), byId('chat-list-empty'), {
  open: (id) => {
    closeDrawer(false)
    if (id !== current.id) openConversation(id)
    else ui.prompt.focus()
  },
  rename: (id, title) => {
    const conversation = conversationById(id)
    if (conversation === null) return
    conversation.title = title
    store.save(conversation, { touch: false })
    renderList()
  },
  remove: (id) => removeConversation(id)
})

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
const status = (text) => { ui.status.textContent = text }

/**
 * One finished block of the answer being written, for screen readers. The region keeps a few
 * (removing old ones announces nothing).
 * @param {string} text
 */
function announce (text) {
  ui.announcer.append(el('p', undefined, text))
  while (ui.announcer.childElementCount > 8) ui.announcer.firstElementChild?.remove()
}

// Keep the newest text in view while the reader is at the bottom; leave them alone once they
// scroll up to read. Measured before each frame's render, applied after it (one layout a frame).
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

/** @param {Generation} generation */
const isShown = (generation) => generation.conversation === current

/** @type {import('./generation.js').GenerationHost} */
const host = {
  headers: authHeaders,
  extraBody,
  save: (conversation) => {
    store.save(conversation)
    renderList()
  },
  changed: (generation) => {
    const id = generation.conversation.id
    if (generation.running) {
      running.set(id, generation)
    } else if (running.get(id) === generation) {
      running.delete(id)
      const last = generation.conversation.messages.at(-1)
      if (last?.role === 'assistant' && !views.has(last)) views.set(last, generation.view)
    }
    if (isShown(generation)) updateControls()
    renderList()
  },
  status: (generation, message) => { if (isShown(generation)) status(message) },
  connection: (generation, state) => { if (isShown(generation)) showConnection(state) },
  retry: () => regenerate(),
  saveKey: (key) => {
    if (key) localStorage.setItem(API_KEY_STORAGE, key)
    else localStorage.removeItem(API_KEY_STORAGE)
  }
}

/** @param {Conversation} conversation */
function newAnswerView (conversation) {
  const shown = () => conversation === current
  return new AnswerView({
    beforeWrite: () => { if (shown()) measureStick() },
    afterWrite: () => { if (shown()) applyStick() },
    announce: (text) => { if (shown()) announce(text) },
    status
  })
}

/** @param {HTMLElement} node */
function appendToLog (node) {
  ui.empty.hidden = true
  ui.log.append(node)
}

/**
 * Starts (or, with `pending`, re-attaches to) the answer to a conversation's last question.
 * @param {Conversation} conversation
 * @param {Conversation['pending']} [pending]
 */
function startGeneration (conversation, pending = null) {
  const generation = new Generation({ conversation, view: newAnswerView(conversation), host })
  running.set(conversation.id, generation)
  if (conversation === current) appendToLog(generation.view.root)
  if (pending) void generation.reattach(pending)
  else void generation.start()
}

/** Shows the current conversation: its messages, and its running answer if it has one. */
function renderConversation () {
  for (const node of [...ui.log.children]) if (node !== ui.empty) node.remove()
  ui.empty.hidden = current.messages.length > 0
  const messages = current.messages
  messages.forEach((message, index) => {
    if (message.role === 'user') {
      const view = new UserMessageView(message.content)
      views.set(message, view)
      appendToLog(view.root)
      return
    }
    const view = newAnswerView(current)
    views.set(message, view)
    if (message.reasoning) view.showReasoning(message.reasoning, message.thoughtMs ?? null)
    view.showText(message.content)
    if (message.stats) view.renderStats(message.stats)
    const outcome = message.outcome ?? 'done'
    if (message.notice) view.showNotice(message.notice)
    if (outcome === 'error' && message.error) {
      // Retry only where it makes sense: on the last answer.
      view.showError({ ...message.error, action: index === messages.length - 1 ? { label: 'Retry', run: () => regenerate() } : undefined })
    }
    view.setState(outcome)
    appendToLog(view.root)
  })
  const generation = running.get(current.id)
  if (generation) {
    appendToLog(generation.view.root)
  } else if (current.pending && messages.at(-1)?.role === 'user') {
    startGeneration(current, current.pending)
  } else if (current.pending) {
    current.pending = null
    store.save(current, { touch: false })
  }
  updateControls()
  scrollToEnd()
}

/** The composer, Stop, and the actions on the last messages, for the shown conversation's state. */
function updateControls () {
  const busy = running.has(current.id)
  const hadFocus = document.activeElement === ui.prompt || document.activeElement === ui.stop
  ui.prompt.disabled = busy
  ui.send.hidden = busy
  ui.stop.hidden = !busy
  ui.stop.disabled = !busy
  ui.log.setAttribute('aria-busy', String(busy))
  updateSendEnabled()
  // A disabled textarea drops focus to <body>; keep the keyboard where the action is.
  if (hadFocus) (busy ? ui.stop : ui.prompt).focus()

  const messages = current.messages
  const lastUser = messages.findLastIndex((m) => m.role === 'user')
  messages.forEach((message, index) => {
    const view = views.get(message)
    if (view instanceof UserMessageView) {
      view.setEditable(!busy && index === lastUser ? editLastMessage : null)
    } else if (view instanceof AnswerView) {
      const last = index === messages.length - 1 && messages[index - 1]?.role === 'user'
      view.setActions({ copy: message.content === '' ? null : message.content, regenerate: !busy && last ? regenerate : null, status })
    }
  })
}

function updateSendEnabled () {
  ui.send.disabled = ui.prompt.disabled || ui.prompt.value.trim() === ''
}

function renderList () {
  chatList.render(store.list(), current.id, new Set(running.keys()))
}

/** @param {string} id */
function conversationById (id) {
  if (id === current.id) return current
  return running.get(id)?.conversation ?? store.load(id)
}

/** @param {Conversation} conversation */
function show (conversation) {
  current = conversation
  store.currentId = conversation.id
  const generation = running.get(conversation.id)
  showConnection(null)
  status('')
  renderConversation()
  renderList()
  if (generation && !generation.finished) status('An answer is being written in this chat.')
}

/** @param {string} id */
function openConversation (id) {
  const conversation = conversationById(id)
  if (conversation === null) return renderList()
  show(conversation)
  if (!ui.prompt.disabled) ui.prompt.focus()
}

function newChat () {
  closeDrawer(false)
  if (current.messages.length > 0 || running.has(current.id)) show(newConversation())
  ui.prompt.value = ''
  autoGrow()
  updateSendEnabled()
  ui.prompt.focus()
}

/** @param {string} id */
function removeConversation (id) {
  // A running answer is stopped on the relay too: nobody will read it.
  running.get(id)?.stop()
  running.delete(id)
  store.remove(id)
  if (id === current.id) show(newConversation())
  else renderList()
}

/** @param {string} text */
function send (text) {
  if (running.has(current.id)) return
  /** @type {Message} */
  const message = { role: 'user', content: text }
  current.messages.push(message)
  store.save(current)
  const view = new UserMessageView(text)
  views.set(message, view)
  appendToLog(view.root)
  startGeneration(current)
  scrollToEnd()
}

/** Replaces the last answer (finished, stopped or failed) with a new one for the same messages. */
function regenerate () {
  if (running.has(current.id)) return
  const last = current.messages.at(-1)
  if (last?.role === 'assistant') {
    current.messages.pop()
    views.get(last)?.root.remove()
  }
  if (current.messages.at(-1)?.role !== 'user') return
  store.save(current)
  startGeneration(current)
  // The button that was pressed (Regenerate, Retry, an edit's Send) is gone: the keyboard goes
  // to Stop, where it is while an answer is written.
  if (!ui.stop.hidden && (document.activeElement === document.body || !document.activeElement?.isConnected)) ui.stop.focus()
}

/**
 * The last question, edited: it and everything after it are replaced.
 * @param {string} text
 */
function editLastMessage (text) {
  if (running.has(current.id)) return
  current.messages.splice(current.messages.findLastIndex((m) => m.role === 'user'))
  current.pending = null
  renderConversation()
  send(text)
  if (!ui.stop.hidden) ui.stop.focus()
}

function autoGrow () {
  ui.prompt.style.height = 'auto'
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 200)}px`
}

/** The chat list as a drawer (narrow screens). */
function openDrawer () {
  ui.sidebar.dataset.open = 'true'
  ui.backdrop.hidden = false
  ui.toggleChats.setAttribute('aria-expanded', 'true')
  const target = ui.sidebar.querySelector('[aria-current]') ?? ui.sidebar.querySelector('.chat-open')
  if (target instanceof HTMLElement) target.focus()
}

/** @param {boolean} refocus  give the keyboard back to the Chats button */
function closeDrawer (refocus) {
  if (ui.sidebar.dataset.open !== 'true') return
  ui.sidebar.dataset.open = 'false'
  ui.backdrop.hidden = true
  ui.toggleChats.setAttribute('aria-expanded', 'false')
  if (refocus) ui.toggleChats.focus()
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault()
  const text = ui.prompt.value
  if (text.trim() === '' || running.has(current.id)) return
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
ui.stop.addEventListener('click', () => running.get(current.id)?.stop())
ui.newChat.addEventListener('click', newChat)
ui.toggleChats.addEventListener('click', () => {
  if (ui.sidebar.dataset.open === 'true') closeDrawer(true)
  else openDrawer()
})
ui.backdrop.addEventListener('click', () => closeDrawer(true))
document.addEventListener('keydown', (event) => {
  // Escape: closes the chat list drawer if open, else stops the answer being written. Fields
  // that use Escape themselves (editing a message, renaming a chat) keep it.
  if (event.key !== 'Escape' || event.defaultPrevented || event.isComposing) return
  if (ui.sidebar.dataset.open === 'true') {
    closeDrawer(true)
    return
  }
  const generation = running.get(current.id)
  if (generation) {
    event.preventDefault()
    generation.stop()
  }
})

// What a reload needs to keep the stats of running answers right (see Generation.progress).
// `pagehide` is the last moment of a page; a hidden tab may be discarded without it on phones.
function saveProgress () {
  for (const generation of running.values()) {
    const pending = generation.conversation.pending
    if (pending !== null && pending.streamId === generation.streamId) {
      pending.progress = generation.progress()
      store.save(generation.conversation, { touch: false })
    }
  }
}
window.addEventListener('pagehide', saveProgress)
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'hidden') saveProgress() })

// Another tab changed the list (a new chat, a rename, a deletion): show it.
window.addEventListener('storage', (event) => {
  if (ConversationStore.isListChange(event)) {
    if (!running.has(current.id) && current.messages.length > 0 && store.load(current.id) === null) show(newConversation())
    else renderList()
  }
})

store.currentId = current.id
renderConversation()
renderList()
// Answers that were being written in other conversations when the page went away go on too.
for (const { id } of store.list()) {
  if (id === current.id || running.has(id)) continue
  const conversation = store.load(id)
  if (conversation?.pending && conversation.messages.at(-1)?.role === 'user') startGeneration(conversation, conversation.pending)
}
if (!running.has(current.id)) ui.prompt.focus()
