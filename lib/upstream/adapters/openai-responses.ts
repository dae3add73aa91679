import { badResponse, inBandError } from '../errors.js'
import type { ChatRequestBody } from '../types.js'
import { parseLoose } from './openai.js'
import { asRecord, ReasoningParts, typedRecord, usageEvent } from './types.js'
import type { Adapter, EventSink, RequestShape } from './types.js'

/** Chat Completions parameters with no Responses equivalent, or renamed below. */
const DROPPED = new Set(['messages', 'max_tokens', 'max_completion_tokens', 'stream_options', 'n', 'tools', 'stream'])

/**
 * Responses API request: `messages` become `input` (the API accepts `{role, content}` items),
 * `max_tokens` becomes `max_output_tokens`, function tools lose their `function` wrapper.
 */
export function responsesRequest (body: ChatRequestBody, model: string, apiKey: string | undefined): RequestShape {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(body)) if (!DROPPED.has(key)) out[key] = body[key]
  out.model = typeof body.model === 'string' && body.model !== '' ? body.model : model
  if (body.input === undefined) out.input = body.messages ?? []
  const maxTokens = body.max_completion_tokens ?? body.max_tokens
  if (typeof maxTokens === 'number') out.max_output_tokens = maxTokens
  if (Array.isArray(body.tools)) {
    out.tools = body.tools.map((tool: unknown) => {
      const fn = asRecord(asRecord(tool)?.function)
      return fn === undefined ? tool : { type: 'function', ...fn }
    })
  }
  out.stream = true
  return { path: '/responses', headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }, body: out }
}

interface Call { index: number, sent: number }

/**
 * Responses API events: reasoning (the summary's text, or the reasoning text that open-weight
 * models served with this API send), text deltas, function calls (`output_item.added` names them,
 * argument deltas follow), and the terminal `response.completed` / `response.incomplete` /
 * `response.failed` (or `error`). Everything is choice 0: the API has no `n`.
 */
export class ResponsesAdapter implements Adapter {
  readonly #sink: EventSink
  readonly #apiKey: string | undefined
  /** Function-call items by item id, in the order they were announced. */
  readonly #calls = new Map<string, Call>()
  /** Summary parts (`item:s<summary_index>`) and reasoning text parts (`item:c<content_index>`). */
  readonly #reasoning = new ReasoningParts()
  #ended = false

  constructor (sink: EventSink, apiKey: string | undefined) {
    this.#sink = sink
    this.#apiKey = apiKey
  }

  onEvent (event: string | undefined, data: string): void {
    if (data === '[DONE]') {
      if (this.#ended) return
      return this.#sink.fail(badResponse('upstream sent [DONE] before a response.completed event'))
    }
    const typed = typedRecord(event, data, this.#sink, this.#apiKey)
    if (typed === undefined) return
    const { record, type } = typed
    switch (type) {
      case 'response.output_text.delta':
        if (typeof record.delta === 'string' && record.delta !== '') this.#sink.emit({ type: 'delta', choice: 0, content: record.delta })
        return
      case 'response.reasoning_summary_text.delta':
        return this.#reasoningText(`${String(record.item_id)}:s${String(record.summary_index)}`, record.delta, false)
      case 'response.reasoning_summary_text.done':
        return this.#reasoningText(`${String(record.item_id)}:s${String(record.summary_index)}`, record.text, true)
      case 'response.reasoning_text.delta':
        return this.#reasoningText(`${String(record.item_id)}:c${String(record.content_index)}`, record.delta, false)
      case 'response.reasoning_text.done':
        return this.#reasoningText(`${String(record.item_id)}:c${String(record.content_index)}`, record.text, true)
      case 'response.output_item.added':
        return this.#itemAdded(asRecord(record.item), record.output_index)
      case 'response.function_call_arguments.delta':
        return this.#arguments(record, typeof record.delta === 'string' ? record.delta : '', false)
      case 'response.function_call_arguments.done':
        return this.#arguments(record, typeof record.arguments === 'string' ? record.arguments : '', true)
      case 'response.completed':
        return this.#finish(asRecord(record.response), this.#calls.size > 0 ? 'tool_calls' : 'stop')
      case 'response.incomplete': {
        const response = asRecord(record.response)
        const why = asRecord(response?.incomplete_details)?.reason
        return this.#finish(response, why === 'content_filter' ? 'content_filter' : 'length')
      }
      case 'response.failed': {
        const response = asRecord(record.response)
        return this.#sink.fail(inBandError(response?.error ?? 'the response failed', this.#apiKey))
      }
      case 'error':
        return this.#sink.fail(inBandError(record, this.#apiKey))
    }
  }

  /** A reasoning delta, or with `whole` a `.done` event: only what the deltas did not carry. */
  #reasoningText (key: string, text: unknown, whole: boolean): void {
    if (typeof text !== 'string') return
    const content = this.#reasoning.next(key, text, whole)
    if (content !== '') this.#sink.emit({ type: 'reasoning', choice: 0, content })
  }

  #itemAdded (item: Record<string, unknown> | undefined, outputIndex: unknown): void {
    if (item?.type !== 'function_call') return
    const key = typeof item.id === 'string' ? item.id : String(outputIndex)
    const call: Call = { index: this.#calls.size, sent: 0 }
    this.#calls.set(key, call)
    const args = typeof item.arguments === 'string' ? item.arguments : ''
    call.sent = args.length
    const id = typeof item.call_id === 'string' ? item.call_id : typeof item.id === 'string' ? item.id : undefined
    this.#sink.emit({
      type: 'tool_call',
      choice: 0,
      index: call.index,
      ...(id === undefined ? {} : { id }),
      ...(typeof item.name === 'string' ? { name: item.name } : {}),
      arguments: args
    })
  }

  /** Argument deltas; a `.done` only adds what the deltas did not already carry. */
  #arguments (record: Record<string, unknown>, text: string, whole: boolean): void {
    const key = typeof record.item_id === 'string' ? record.item_id : String(record.output_index)
    const call = this.#calls.get(key)
    if (call === undefined) return
    const fragment = whole ? text.slice(call.sent) : text
    if (fragment === '') return
    call.sent += fragment.length
    this.#sink.emit({ type: 'tool_call', choice: 0, index: call.index, arguments: fragment })
  }

  #finish (response: Record<string, unknown> | undefined, reason: string): void {
    if (this.#ended) return
    this.#ended = true
    this.#sink.emit({ type: 'finish', choice: 0, reason })
    const usage = asRecord(response?.usage)
    if (usage !== undefined) this.#sink.emit(usageEvent(usage.input_tokens, usage.output_tokens, usage.total_tokens, usage.output_tokens_details))
    this.#sink.end()
  }

  onUnknownField (field: string, value: string): void {
    if (field === 'error') this.#sink.fail(inBandError(parseLoose(value), this.#apiKey))
  }

  onBodyEnd (): string | undefined {
    return this.#ended ? undefined : 'no response.completed event'
  }

  onWhole (json: unknown): void {
    const record = asRecord(json)
    if (record === undefined) return this.#sink.fail(badResponse('upstream answered JSON that is not an object'))
    if (record.error !== undefined && record.error !== null) return this.#sink.fail(inBandError(record, this.#apiKey))
    const output = Array.isArray(record.output) ? record.output : []
    for (const entry of output) {
      const item = asRecord(entry)
      if (item?.type === 'message' && Array.isArray(item.content)) {
        for (const part of item.content) {
          const text = asRecord(part)?.text
          if (typeof text === 'string' && text !== '') this.#sink.emit({ type: 'delta', choice: 0, content: text })
        }
      } else if (item?.type === 'function_call') {
        this.#itemAdded(item, undefined)
      } else if (item?.type === 'reasoning') {
        const id = String(item.id)
        const summary = Array.isArray(item.summary) ? item.summary : []
        summary.forEach((part: unknown, i: number) => this.#reasoningText(`${id}:s${i}`, asRecord(part)?.text, true))
        const content = Array.isArray(item.content) ? item.content : []
        content.forEach((part: unknown, i: number) => this.#reasoningText(`${id}:c${i}`, asRecord(part)?.text, true))
      }
    }
    const why = asRecord(record.incomplete_details)?.reason
    const reason = record.status === 'incomplete' ? (why === 'content_filter' ? 'content_filter' : 'length') : this.#calls.size > 0 ? 'tool_calls' : 'stop'
    this.#finish(record, reason)
  }
}
