import { badResponse, inBandError } from '../errors.js'
import type { ChatRequestBody } from '../types.js'
import { parseLoose } from './openai.js'
import { asRecord, ReasoningParts, typedRecord, usageEvent } from './types.js'
import type { Adapter, EventSink, RequestShape } from './types.js'

/** OpenAI-only parameters the Messages API rejects; the ones it renames are rebuilt below. */
const DROPPED = new Set([
  'messages', 'n', 'stream', 'stream_options', 'presence_penalty', 'frequency_penalty', 'logit_bias',
  'logprobs', 'top_logprobs', 'response_format', 'seed', 'user', 'parallel_tool_calls',
  'max_completion_tokens', 'max_tokens', 'stop', 'tools', 'tool_choice'
])

/** The Messages API requires `max_tokens`; this is used when the request names none. */
const DEFAULT_MAX_TOKENS = 4096

const TOOL_CHOICE: Record<string, unknown> = { auto: { type: 'auto' }, required: { type: 'any' }, none: { type: 'none' } }

/**
 * Messages API request: system messages move to `system`, `max_tokens` is required, `stop`
 * becomes `stop_sequences`, function tools become `{name, description, input_schema}`.
 */
export function anthropicRequest (body: ChatRequestBody, model: string, apiKey: string | undefined): RequestShape {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(body)) if (!DROPPED.has(key)) out[key] = body[key]
  out.model = typeof body.model === 'string' && body.model !== '' ? body.model : model
  const system: string[] = []
  const messages: unknown[] = []
  for (const m of Array.isArray(body.messages) ? body.messages : []) {
    const message = asRecord(m)
    if ((message?.role === 'system' || message?.role === 'developer') && typeof message.content === 'string') system.push(message.content)
    else messages.push(m)
  }
  out.messages = messages
  if (system.length > 0 && out.system === undefined) out.system = system.join('\n\n')
  const maxTokens = body.max_tokens ?? body.max_completion_tokens
  out.max_tokens = typeof maxTokens === 'number' ? maxTokens : DEFAULT_MAX_TOKENS
  if (body.stop !== undefined && body.stop !== null) out.stop_sequences = Array.isArray(body.stop) ? body.stop : [body.stop]
  if (Array.isArray(body.tools)) {
    out.tools = body.tools.map((tool: unknown) => {
      const fn = asRecord(asRecord(tool)?.function)
      return fn === undefined ? tool : { name: fn.name, description: fn.description, input_schema: fn.parameters ?? { type: 'object' } }
    })
  }
  if (typeof body.tool_choice === 'string') out.tool_choice = TOOL_CHOICE[body.tool_choice]
  else {
    const name = asRecord(asRecord(body.tool_choice)?.function)?.name
    if (typeof name === 'string') out.tool_choice = { type: 'tool', name }
  }
  out.stream = true
  const headers: Record<string, string> = { 'anthropic-version': '2023-06-01' }
  if (apiKey !== undefined) headers['x-api-key'] = apiKey
  return { path: '/messages', headers, body: out }
}

/** Anthropic stop reasons in OpenAI's vocabulary. */
const STOP_REASONS: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter'
}

/**
 * Messages API events. Content blocks are numbered across thinking, text and tools; tool-call
 * indexes count only `tool_use` blocks, as OpenAI's `tool_calls[].index` does. Thinking blocks
 * become reasoning (several blocks, as with interleaved thinking, joined by a blank line); their
 * signature and `redacted_thinking` blocks are progress, never events.
 */
export class AnthropicAdapter implements Adapter {
  readonly #sink: EventSink
  readonly #apiKey: string | undefined
  /** Content block index → tool-call index. */
  readonly #tools = new Map<number, number>()
  readonly #thinking = new ReasoningParts()
  #prompt = 0
  #completion = 0
  #sawUsage = false
  #finished = false
  #ended = false

  constructor (sink: EventSink, apiKey: string | undefined) {
    this.#sink = sink
    this.#apiKey = apiKey
  }

  onEvent (event: string | undefined, data: string): void {
    const typed = typedRecord(event, data, this.#sink, this.#apiKey)
    if (typed === undefined) return
    const { record, type } = typed
    switch (type) {
      case 'content_block_delta': {
        const delta = asRecord(record.delta)
        if (delta?.type === 'text_delta' && typeof delta.text === 'string' && delta.text !== '') {
          this.#sink.emit({ type: 'delta', choice: 0, content: delta.text })
        } else if (delta?.type === 'thinking_delta') {
          this.#thinkingText(record.index, delta.thinking)
        } else if (delta?.type === 'signature_delta') {
          this.#sink.progress()
        } else if (delta?.type === 'input_json_delta' && typeof delta.partial_json === 'string' && delta.partial_json !== '') {
          const index = this.#tools.get(record.index as number)
          if (index !== undefined) this.#sink.emit({ type: 'tool_call', choice: 0, index, arguments: delta.partial_json })
        }
        return
      }
      case 'content_block_start':
        return this.#blockStart(record.index, asRecord(record.content_block), false)
      case 'message_start':
        return this.#usage(asRecord(asRecord(record.message)?.usage))
      case 'message_delta': {
        this.#usage(asRecord(record.usage))
        const reason = asRecord(record.delta)?.stop_reason
        if (typeof reason === 'string' && !this.#finished) {
          this.#finished = true
          this.#sink.emit({ type: 'finish', choice: 0, reason: STOP_REASONS[reason] ?? reason })
        }
        return
      }
      case 'message_stop':
        return this.#complete()
      case 'error':
        return this.#sink.fail(inBandError(record, this.#apiKey))
    }
  }

  #thinkingText (index: unknown, text: unknown): void {
    if (typeof text !== 'string') return
    const content = this.#thinking.next(String(index), text, false)
    if (content !== '') this.#sink.emit({ type: 'reasoning', choice: 0, content })
  }

  #blockStart (index: unknown, block: Record<string, unknown> | undefined, whole: boolean): void {
    if (block?.type === 'text' && typeof block.text === 'string' && block.text !== '') {
      this.#sink.emit({ type: 'delta', choice: 0, content: block.text })
    } else if (block?.type === 'thinking') {
      // While streaming the block starts empty and its text follows as thinking_delta.
      this.#thinkingText(index, block.thinking)
    } else if (block?.type === 'redacted_thinking') {
      this.#sink.progress()
    } else if (block?.type === 'tool_use' && typeof index === 'number') {
      const toolIndex = this.#tools.size
      this.#tools.set(index, toolIndex)
      // While streaming, `input` is `{}` and the arguments follow as deltas; a whole message has them here.
      const args = whole && block.input !== undefined ? JSON.stringify(block.input) : ''
      this.#sink.emit({
        type: 'tool_call',
        choice: 0,
        index: toolIndex,
        ...(typeof block.id === 'string' ? { id: block.id } : {}),
        ...(typeof block.name === 'string' ? { name: block.name } : {}),
        arguments: args
      })
    }
  }

  /** `message_start` carries the input side, `message_delta` the cumulative output side. */
  #usage (usage: Record<string, unknown> | undefined): void {
    if (usage === undefined) return
    this.#sawUsage = true
    // Cached input tokens are reported apart from `input_tokens`; OpenAI's prompt_tokens includes them.
    const input = ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens']
      .reduce((sum, key) => sum + (typeof usage[key] === 'number' ? usage[key] : 0), 0)
    if (typeof usage.input_tokens === 'number') this.#prompt = input
    if (typeof usage.output_tokens === 'number') this.#completion = usage.output_tokens
  }

  #complete (): void {
    if (this.#ended) return
    this.#ended = true
    if (this.#sawUsage) this.#sink.emit(usageEvent(this.#prompt, this.#completion))
    this.#sink.end()
  }

  onUnknownField (field: string, value: string): void {
    if (field === 'error') this.#sink.fail(inBandError(parseLoose(value), this.#apiKey))
  }

  onBodyEnd (): string | undefined {
    if (this.#ended) return undefined
    // A stop reason was seen: the answer is whole even if `message_stop` was lost.
    if (this.#finished) {
      this.#complete()
      return undefined
    }
    return 'no message_stop event'
  }

  onWhole (json: unknown): void {
    const record = asRecord(json)
    if (record === undefined) return this.#sink.fail(badResponse('upstream answered JSON that is not an object'))
    if (record.type === 'error' || (record.error !== undefined && record.error !== null)) {
      return this.#sink.fail(inBandError(record, this.#apiKey))
    }
    const content = Array.isArray(record.content) ? record.content : []
    content.forEach((block: unknown, i: number) => this.#blockStart(i, asRecord(block), true))
    this.#usage(asRecord(record.usage))
    const reason = typeof record.stop_reason === 'string' ? record.stop_reason : 'end_turn'
    this.#finished = true
    this.#sink.emit({ type: 'finish', choice: 0, reason: STOP_REASONS[reason] ?? reason })
    this.#complete()
  }
}
