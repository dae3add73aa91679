// One answer being generated (or re-attached to) and shown: POST /v1/chat starts it, a
// StreamFollower (stream.js) reads its events and resumes after drops, an AnswerView (views.js)
// shows it, and its conversation (conversations.js) records how it ended.
//
// A reasoning model's thinking (`reasoning` events, before the answer's deltas) goes to the
// view's thinking block (reasoning.js): open while it streams, closed when the first delta comes.
// "Thought for N s" is measured on events this page saw arrive live, from the first `reasoning`
// event to the first delta: a replay (a reload, a second tab) delivers old events in a burst, so
// their arrival says nothing about when the model sent them. A reload keeps what the page had
// measured (Progress); a page that saw only the replay of the thinking's start says "Thought
// process", without a duration, rather than a wrong one.

import { StreamFollower, HttpError, httpErrorFrom } from './stream.js'
import { thoughtSeconds } from './reasoning.js'

/**
 * What a generation needs from the page around it.
 * @typedef {object} GenerationHost
 * @property {() => Record<string, string>} headers  e.g. Authorization
 * @property {() => Record<string, unknown>} extraBody  merged into the POST body (app.js)
 * @property {(conversation: import('./conversations.js').Conversation) => void} save
 * @property {(generation: Generation) => void} changed  it started or ended
 * @property {(generation: Generation, message: string) => void} status  for screen readers
 * @property {(generation: Generation, state: 'reconnecting' | 'offline' | null) => void} connection
 * @property {(generation: Generation) => void} retry  its error card's Retry
 * @property {(key: string) => void} saveKey  the relay API key typed into a 401 card
 */

const CUT_REASONS = /** @type {Record<string, string>} */ ({
  abandoned: 'The relay stopped this answer because no one was reading it.',
  timeout: 'The answer took too long and was cut off by the relay.',
  shutdown: 'The relay restarted while answering.',
  slow_consumer: 'The connection was too slow to keep up with the answer.',
  superseded: 'A newer answer in this conversation (another tab?) replaced this one.',
  error: 'The answer failed.'
})

const HTTP_TITLES = /** @type {Record<number, string>} */ ({
  401: 'The relay needs an API key.',
  413: 'The conversation is too long for the relay.',
  429: 'Too many requests right now.',
  502: 'The model provider failed.',
  503: 'The relay is busy.',
  504: 'The model provider did not answer in time.'
})

/**
 * Re-attached with no record of what this page had counted (the answer was started in another
 * tab, or the page was closed without `pagehide`): the relay replays the answer so far at once,
 * then the live tokens follow. Tokens within this long of the first are the replay, and left
 * out of the rate; an estimate, where the recorded case is exact.
 */
const REPLAY_WINDOW_MS = 100

export class Generation {
  /**
   * @param {object} options
   * @param {import('./conversations.js').Conversation} options.conversation
   * @param {import('./views.js').AnswerView} options.view
   * @param {GenerationHost} options.host
   */
  constructor ({ conversation, view, host }) {
    this.conversation = conversation
    this.view = view
    this.host = host
    this.text = ''
    /** The thinking so far (`reasoning` events); kept apart from the answer. */
    this.reasoning = ''
    /** When the first `reasoning` event arrived, if this page (or it before a reload) saw it live. */
    /** @type {number | null} */
    this.reasoningStartedAt = null
    /** How long the model thought; null while unknown (see the top of this file). */
    /** @type {number | null} */
    this.thoughtMs = null
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
    // Times are epoch ms (Date.now), so that they survive a reload.
    this.startedAt = Date.now()
    /** @type {number | null} */
    this.ttftMs = null
    this.tokens = 0
    this.resumes = 0
    // The rate counts live tokens only: from rateFirstAt on, rateTokens of them.
    /** @type {number | null} */
    this.rateFirstAt = null
    this.rateTokens = 0
    /** @type {number | null} */
    this.lastTokenAt = null
    /** Events up to this id were counted before a reload: shown again, not counted again. */
    this.countedThroughId = 0
    /** Re-attached with nothing recorded: when the replay began (see REPLAY_WINDOW_MS). */
    /** @type {number | null} */
    this.replayFrom = null
    this.estimateReplay = false
    /** Whether this page saw the answer start (else the time to first token is unknown). */
    this.ttftKnown = true
    view.onWrite = () => this.renderStats()
  }

  get running () {
    return !this.finished
  }

  /** @returns {import('./views.js').Stats} */
  stats () {
    const seconds = this.rateFirstAt !== null && this.lastTokenAt !== null ? (this.lastTokenAt - this.rateFirstAt) / 1000 : 0
    return {
      ttftMs: this.ttftMs,
      tokens: this.tokens,
      // Below a quarter second the rate is noise.
      tokensPerSecond: this.rateTokens > 1 && seconds >= 0.25 ? (this.rateTokens - 1) / seconds : null,
      resumes: this.resumes
    }
  }

  renderStats () {
    this.view.renderStats(this.stats())
  }

  /**
   * What a reload needs to go on counting where this page stopped (saved on `pagehide`).
   * @returns {import('./conversations.js').Progress}
   */
  progress () {
    return {
      lastEventId: this.follower?.lastEventId ?? null,
      tokens: this.tokens,
      firstTokenAt: this.rateFirstAt,
      lastTokenAt: this.lastTokenAt,
      ttftMs: this.ttftMs,
      resumes: this.resumes,
      reasoningStartedAt: this.reasoningStartedAt,
      thoughtMs: this.thoughtMs
    }
  }

  /** Starts a new answer for the conversation's messages. */
  async start () {
    this.view.setState('waiting', this.startedAt)
    this.view.announcing = true
    this.host.changed(this)
    this.host.status(this, 'Generating an answer…')
    let res
    try {
      res = await fetch('/v1/chat', {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.host.headers() },
        body: JSON.stringify({
          ...this.host.extraBody(),
          // The context is what the conversation shows: stopped and cut answers included.
          messages: this.conversation.messages.filter((m) => m.content !== '').map(({ role, content }) => ({ role, content })),
          conversationId: this.conversation.id
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
    this.conversation.pending = { streamId, startedAt: this.startedAt }
    this.host.save(this.conversation)
    await this.follow(streamUrl)
  }

  /**
   * Re-attaches after a reload: the conversation's active generation, else (it finished
   * meanwhile) a replay of the one this page was showing, which the relay keeps for RETAIN_MS.
   * @param {import('./conversations.js').Pending} pending
   */
  async reattach ({ streamId, startedAt, progress }) {
    this.streamId = streamId
    this.ttftKnown = false
    if (progress) {
      this.tokens = progress.tokens
      this.rateTokens = progress.tokens
      this.rateFirstAt = progress.firstTokenAt
      this.lastTokenAt = progress.lastTokenAt
      this.ttftMs = progress.ttftMs
      this.resumes = progress.resumes
      this.countedThroughId = Number(progress.lastEventId ?? 0) || 0
      this.reasoningStartedAt = progress.reasoningStartedAt ?? null
      this.thoughtMs = progress.thoughtMs ?? null
    } else {
      this.estimateReplay = true
    }
    // Still silent after a reload: the wait counts from the answer's start, not from the reload.
    this.view.setState('waiting', startedAt)
    this.host.changed(this)
    this.host.status(this, 'Re-attaching to the answer in progress…')
    const attachUrl = `/v1/conversations/${encodeURIComponent(this.conversation.id)}/stream`
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
      headers: this.host.headers(),
      onEvent: (event) => this.onEvent(event),
      onOpen: (res) => {
        const id = res.headers.get('x-stream-id')
        if (id && id !== this.streamId) {
          // A newer answer than the one this page recorded: nothing recorded counts for it.
          this.streamId = id
          this.conversation.pending = { streamId: id }
          this.host.save(this.conversation)
          this.reasoningStartedAt = null
          this.thoughtMs = null
          this.tokens = 0
          this.rateTokens = 0
          this.rateFirstAt = null
          this.countedThroughId = 0
          this.ttftMs = null
          this.ttftKnown = false
          this.estimateReplay = true
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
        this.host.status(this, 'Reconnected; the answer continues.')
      },
      onState: (state) => {
        if (this.finished) return
        this.host.connection(this, state === 'reconnecting' || state === 'offline' ? state : null)
        if (state === 'reconnecting') this.host.status(this, 'Connection lost, reconnecting…')
      }
    })
    let outcome
    try {
      outcome = await this.follower.run()
    } catch (err) {
      this.host.connection(this, null)
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
    this.host.connection(this, null)
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
    const isText = (data.type === 'delta' || data.type === 'reasoning') && (data.choice ?? 0) === 0 && typeof data.content === 'string'
    if (isText) {
      // The first token of any kind ends the wait.
      if (this.view.root.dataset.state === 'waiting') this.view.setState('streaming')
      const now = Date.now()
      const seen = this.provenance(Number(event.id ?? 0), now)
      if (data.type === 'reasoning') {
        this.think(data.content, seen, now)
      } else {
        this.endThinking(seen === 'live', true, now)
        this.count(seen, now)
        this.text += data.content
        this.view.push(data.content)
      }
    } else if (data.type === 'finish' && (data.choice ?? 0) === 0) {
      this.finishReason = String(data.reason)
    }
  }

  /**
   * Where an event comes from: `counted`, this page saw it before a reload; `replay`, the burst
   * of old events that re-attaching with nothing recorded starts with (see REPLAY_WINDOW_MS);
   * `live`, the model sent it just now.
   * @param {number} id  its event id
   * @param {number} now
   * @returns {'counted' | 'replay' | 'live'}
   */
  provenance (id, now) {
    if (id !== 0 && id <= this.countedThroughId) return 'counted'
    if (this.estimateReplay) {
      this.replayFrom ??= now
      if (now - this.replayFrom < REPLAY_WINDOW_MS) return 'replay'
      this.estimateReplay = false
    }
    return 'live'
  }

  /**
   * One piece of the model's thinking, into its block.
   * @param {string} content
   * @param {'counted' | 'replay' | 'live'} seen
   * @param {number} now
   */
  think (content, seen, now) {
    if (this.reasoning === '') {
      // Counted before a reload: reasoningStartedAt is the one recorded then (or unknown).
      if (seen === 'live') this.reasoningStartedAt = now
      if (seen !== 'counted') this.host.status(this, 'The model is thinking…')
    }
    this.reasoning += content
    this.view.startReasoning().push(content)
  }

  /**
   * The thinking is over (the answer starts, or the stream ends): its block shows all of it and
   * how long it took, if this page can tell (see the top of this file).
   * @param {boolean} live  the event that ends it arrived live
   * @param {boolean} collapse  the answer starts: the block closes
   * @param {number} now
   */
  endThinking (live, collapse, now = Date.now()) {
    const view = this.view.reasoning
    if (view === null || !view.thinking) return
    if (this.thoughtMs === null && live && this.reasoningStartedAt !== null) this.thoughtMs = now - this.reasoningStartedAt
    view.finish(this.thoughtMs, collapse)
    if (live && collapse) {
      const seconds = this.thoughtMs === null ? null : thoughtSeconds(this.thoughtMs)
      this.host.status(this, seconds === null ? 'The model has thought; the answer follows.' : `Thought for ${seconds} ${seconds === 1 ? 'second' : 'seconds'}; the answer follows.`)
    }
  }

  /**
   * Counts one token of the answer for the stats, unless it was counted before a reload.
   * @param {'counted' | 'replay' | 'live'} seen  see {@link provenance}
   * @param {number} now
   */
  count (seen, now) {
    if (seen === 'counted') return
    if (this.tokens === 0 && this.ttftKnown) this.ttftMs = now - this.startedAt
    this.tokens++
    this.lastTokenAt = now
    if (seen === 'replay') return
    // Live from here: the screen reader hears new blocks as they finish.
    this.view.announcing = true
    this.rateFirstAt ??= now
    this.rateTokens++
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
    const notice = this.finishReason === 'length' ? 'The answer reached the length limit.' : undefined
    this.record({ outcome: 'done', notice })
    if (notice) this.view.showNotice(notice)
    this.endTurn('done', 'Answer complete.')
  }

  /** @param {string} notice */
  stopped (notice) {
    if (this.finished) return
    this.finished = true
    this.follower?.stop()
    // Keep what was said: the next turn's context includes the partial answer, as on screen.
    this.record({ outcome: 'stopped', notice })
    this.view.showNotice(notice)
    this.endTurn('stopped', 'Stopped.')
  }

  /**
   * Adds the answer to its conversation, with how it ended, so that a reload shows it the same.
   * @param {Pick<import('./conversations.js').Message, 'outcome' | 'notice' | 'error'>} end
   */
  record (end) {
    // The answer is final: the thinking is over (after Reconnect, which records nothing, it may
    // go on). Thinking and no answer: the block stays open, it is all there is to read.
    this.endThinking(true, false)
    /** @type {import('./conversations.js').Message} */
    const message = { role: 'assistant', content: this.text, stats: this.stats(), outcome: end.outcome }
    if (this.reasoning !== '') {
      message.reasoning = this.reasoning
      if (this.thoughtMs !== null) message.thoughtMs = this.thoughtMs
    }
    if (end.notice) message.notice = end.notice
    if (end.error) message.error = end.error
    this.conversation.messages.push(message)
    this.conversation.pending = null
    this.host.save(this.conversation)
  }

  /** The Stop button, or Escape. */
  stop () {
    if (this.finished) return
    this.stoppedByUser = true
    this.stopped('Stopped.')
    if (this.streamId !== null) void this.cancelOnRelay()
  }

  async cancelOnRelay () {
    try {
      const res = await fetch(`/v1/chat/stream/${encodeURIComponent(String(this.streamId))}`, {
        method: 'DELETE',
        headers: this.host.headers()
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
    this.fail({
      title: HTTP_TITLES[error.status] ?? `The relay refused the request (${error.status}).`,
      detail: error.message,
      code: error.code,
      retryAfter: error.retryAfter ?? undefined,
      action: 'regenerate',
      askForKey: error.status === 401
    })
  }

  /**
   * @param {object} failure
   * @param {string} failure.title
   * @param {string} [failure.detail]
   * @param {string} [failure.code]
   * @param {number} [failure.retryAfter]  seconds
   * @param {'regenerate' | 'resume'} failure.action
   * @param {boolean} [failure.askForKey]
   */
  fail ({ title, detail, code, retryAfter, action, askForKey }) {
    if (this.finished) return
    this.finished = true
    this.follower?.stop()
    if (action === 'regenerate') {
      /** @type {{ title: string, detail?: string, code?: string }} */
      const error = { title }
      if (detail) error.detail = detail
      if (code) error.code = code
      this.record({ outcome: 'error', error })
    }
    this.view.showError({
      title,
      detail,
      code,
      retryAfter,
      askForKey,
      action: action === 'resume'
        ? { label: 'Reconnect', run: () => this.resumeAfterFailure() }
        : {
            label: 'Retry',
            run: (key) => {
              if (askForKey) this.host.saveKey(key ?? '')
              this.host.retry(this)
            }
          }
    })
    this.endTurn('error', `Error: ${title}`, action === 'regenerate')
    // The keyboard goes to the way out, when the answer is on screen.
    if (this.view.root.isConnected) this.view.retryButton?.focus()
  }

  /** Reconnect, after giving up, from the last event received: no text is lost or repeated. */
  resumeAfterFailure () {
    const lastEventId = this.follower?.lastEventId ?? null
    const url = this.follower?.url ?? `/v1/chat/stream/${encodeURIComponent(String(this.streamId))}`
    this.finished = false
    this.view.clearError()
    this.view.setState('streaming')
    this.host.changed(this)
    void this.follow(url, false, lastEventId)
  }

  /**
   * @param {'done' | 'stopped' | 'error'} state
   * @param {string} message
   * @param {boolean} [final]  the answer will not continue (an error offering Reconnect may)
   */
  endTurn (state, message, final = true) {
    this.host.connection(this, null)
    this.host.changed(this)
    this.renderStats()
    this.host.status(this, message)
    if (state !== 'done') {
      // Stop and errors show what arrived at once.
      if (final) this.view.end()
      else this.view.typewriter.flush()
      this.view.setState(state)
      return
    }
    // The caret goes, and the test-visible state changes, only once the text is all on screen.
    void this.view.typewriter.drained().then(() => {
      this.view.end()
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
