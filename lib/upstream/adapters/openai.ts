import { badResponse, inBandError } from '../errors.js'
import type { ChatRequestBody, UsageEvent } from '../types.js'
import { asRecord, usageEvent, wholeNumber } from './types.js'
import type { Adapter, EventSink, RequestShape } from './types.js'

/** Chat Completions request: the relay's body as is, plus streaming with usage. */
export function openaiRequest (body: ChatRequestBody, model: string, apiKey: string | undefined): RequestShape {
  const streamOptions = asRecord(body.stream_options)
  return {
    path: '/chat/completions',
    headers: apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` },
    body: {
      ...body,
      model: typeof body.model === 'string' && body.model !== '' ? body.model : model,
      stream: true,
      stream_options: { ...streamOptions, include_usage: true }
    }
  }
}

/**
 * OpenAI Chat Completions chunks (and the compatible servers: Azure, vLLM, llama.cpp, Groq,
 * DeepSeek, OpenRouter, Ollama…), reasoning included. Terminal: `[DONE]`, or the body ending after
 * a finish reason on every choice seen.
 */
export class OpenAIAdapter implements Adapter {
  readonly #sink: EventSink
  readonly #apiKey: string | undefined
  /** `finished[choice]`: true once a finish reason came; `false` marks a choice seen. */
  readonly #finished: boolean[] = []
  #open = 0
  #usage: UsageEvent | undefined

  constructor (sink: EventSink, apiKey: string | undefined) {
    this.#sink = sink
    this.#apiKey = apiKey
  }

  onEvent (event: string | undefined, data: string): void {
    // Only the exact sentinel ends the stream: `[DONE] ` or `"[DONE]"` are not it.
    if (data === '[DONE]') return this.#complete()
    if (event === 'error') return this.#sink.fail(inBandError(parseLoose(data), this.#apiKey))
    if (data === '') return
    let chunk: unknown
    try {
      chunk = JSON.parse(data)
    } catch {
      return this.#sink.fail(badResponse(`upstream sent a data line that is not JSON: ${JSON.stringify(data.slice(0, 80))}`))
    }
    const record = asRecord(chunk)
    if (record === undefined) return this.#sink.fail(badResponse('upstream sent a data line that is not a JSON object'))
    // `{"error":…}` (OpenAI, llama.cpp) and vLLM's flat `{"object":"error",…}`.
    if ((record.error !== undefined && record.error !== null) || record.object === 'error') {
      return this.#sink.fail(inBandError(record, this.#apiKey))
    }
    this.#chunk(record)
  }

  #chunk (chunk: Record<string, unknown>): void {
    const choices = chunk.choices
    if (Array.isArray(choices)) {
      for (let i = 0; i < choices.length; i++) {
        const choice = choices[i] as Record<string, unknown> | null
        if (choice === null || typeof choice !== 'object') continue
        // A choice without a numeric index is the i-th; one whose number is no count is garbage, skipped.
        const index = typeof choice.index === 'number' ? wholeNumber(choice.index) : i
        if (index === undefined) continue
        if (this.#finished[index] === undefined) {
          this.#finished[index] = false
          this.#open++
        }
        const delta = choice.delta as Record<string, unknown> | null | undefined
        if (delta !== null && typeof delta === 'object') {
          this.#reasoning(index, delta)
          const content = delta.content
          if (typeof content === 'string' && content !== '') this.#sink.emit({ type: 'delta', choice: index, content })
          const toolCalls = delta.tool_calls
          if (Array.isArray(toolCalls)) this.#toolCalls(index, toolCalls)
        }
        const reason = choice.finish_reason
        if (typeof reason === 'string' && reason !== '' && this.#finished[index] === false) {
          this.#finished[index] = true
          this.#open--
          this.#sink.emit({ type: 'finish', choice: index, reason })
        }
      }
    }
    const usage = chunk.usage ?? asRecord(chunk.x_groq)?.usage
    if (usage !== null && typeof usage === 'object') {
      const u = usage as Record<string, unknown>
      this.#usage = usageEvent(u.prompt_tokens, u.completion_tokens, u.total_tokens, u.completion_tokens_details)
    }
  }

  /**
   * The reasoning of a delta (or a whole message), from whichever field the server uses:
   * `reasoning_content` (DeepSeek, vLLM, SGLang), `reasoning` (OpenRouter, Ollama, newer vLLM),
   * else the text of OpenRouter's `reasoning_details`. A server that fills several sends the same
   * text in each (OpenRouter: `reasoning` and `reasoning_details`), so only the first is read.
   */
  #reasoning (choice: number, delta: Record<string, unknown>): void {
    let text = delta.reasoning_content
    if (typeof text !== 'string' || text === '') text = delta.reasoning
    if (typeof text === 'string' && text !== '') {
      this.#sink.emit({ type: 'reasoning', choice, content: text })
      return
    }
    const details = delta.reasoning_details
    if (!Array.isArray(details) || details.length === 0) return
    let joined = ''
    let progress = false
    for (const entry of details) {
      const detail = asRecord(entry)
      if (detail === undefined) continue
      const part = detail.type === 'reasoning.summary' ? detail.summary : detail.text
      if (typeof part === 'string') joined += part
      // A signature, or thinking the provider sent encrypted: model output, never shown.
      if ((typeof detail.signature === 'string' && detail.signature !== '') || (typeof detail.data === 'string' && detail.data !== '')) progress = true
    }
    if (joined !== '') this.#sink.emit({ type: 'reasoning', choice, content: joined })
    else if (progress) this.#sink.progress()
  }

  #toolCalls (choice: number, calls: unknown[]): void {
    for (let j = 0; j < calls.length; j++) {
      const call = asRecord(calls[j])
      if (call === undefined) continue
      const fn = asRecord(call.function)
      const args = typeof fn?.arguments === 'string' ? fn.arguments : ''
      const id = typeof call.id === 'string' && call.id !== '' ? call.id : undefined
      // Mistral repeats `"name":""` on continuation fragments: empty means absent.
      const name = typeof fn?.name === 'string' && fn.name !== '' ? fn.name : undefined
      const index = typeof call.index === 'number' ? wholeNumber(call.index) : j
      if (index === undefined || (args === '' && id === undefined && name === undefined)) continue
      this.#sink.emit({
        type: 'tool_call',
        choice,
        index,
        ...(id === undefined ? {} : { id }),
        ...(name === undefined ? {} : { name }),
        arguments: args
      })
    }
  }

  #complete (): void {
    if (this.#usage !== undefined) this.#sink.emit(this.#usage)
    this.#usage = undefined
    this.#sink.end()
  }

  onUnknownField (field: string, value: string): void {
    // llama.cpp reports failures as an `error:` SSE field instead of a data line.
    if (field === 'error') this.#sink.fail(inBandError(parseLoose(value), this.#apiKey))
  }

  onBodyEnd (): string | undefined {
    if (this.#finished.length > 0 && this.#open === 0) {
      this.#complete()
      return undefined
    }
    return this.#finished.length === 0 ? 'no choices and no [DONE]' : 'no finish reason and no [DONE]'
  }

  onWhole (json: unknown): void {
    const record = asRecord(json)
    if (record === undefined) return this.#sink.fail(badResponse('upstream answered JSON that is not an object'))
    if ((record.error !== undefined && record.error !== null) || record.object === 'error') {
      return this.#sink.fail(inBandError(record, this.#apiKey))
    }
    const choices = Array.isArray(record.choices) ? record.choices : []
    // A whole completion carries `message` where a chunk carries `delta`: reuse the chunk path.
    this.#chunk({
      choices: choices.map((c: unknown, i: number) => {
        const choice = asRecord(c) ?? {}
        const message = asRecord(choice.message) ?? {}
        const calls = Array.isArray(message.tool_calls) ? message.tool_calls : undefined
        return {
          index: choice.index ?? i,
          delta: {
            reasoning_content: message.reasoning_content,
            reasoning: message.reasoning,
            reasoning_details: message.reasoning_details,
            content: message.content,
            tool_calls: calls?.map((call: unknown, j: number) => ({ index: j, ...asRecord(call) }))
          },
          finish_reason: choice.finish_reason ?? 'stop'
        }
      }),
      usage: record.usage
    })
    this.#complete()
  }
}

/** JSON when it parses, else the text itself (for `event: error` and llama.cpp's `error:`). */
export function parseLoose (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
