import type { AnswerBuilder, Usage } from './answer.js'
import { DONE } from './events.js'
import type { RelayEvent } from './events.js'
import { DONE_DATA, formatData } from '../sse/format.js'
import type { EndReason, JournalEntry } from './journal.js'

/**
 * Renders journal entries as OpenAI Chat Completions chunks, so the official SDKs can use the
 * relay as their base URL. Built from the normalized events (not the upstream's bytes), so an
 * Anthropic or Responses upstream comes out in Chat Completions format too.
 */
export class OpenAIChunkWriter {
  private readonly head: string
  private readonly includeUsage: boolean
  private roleSent = new Set<number>()

  /**
   * @param includeUsage whether the client asked for the usage chunk (`stream_options.include_usage`),
   *   as OpenAI sends it only then: a client that reads `chunk.choices[0]` of every chunk breaks on it.
   *   (The relay always asks the upstream for usage, for its hooks and metrics.)
   */
  constructor (completionId: string, model: string, includeUsage: boolean) {
    this.head = `{"id":${JSON.stringify(completionId)},"object":"chat.completion.chunk","created":${Math.floor(Date.now() / 1000)},"model":${JSON.stringify(model)}`
    this.includeUsage = includeUsage
  }

  /** The SSE frame for one journal entry; `undefined` for one the client did not ask for. */
  frame (entry: JournalEntry): string | undefined {
    if (entry.data === DONE) return formatData(DONE_DATA)
    const event = JSON.parse(entry.data) as RelayEvent
    if (event.type === 'error') return errorFrame(event.code, event.message)
    if (event.type === 'usage') {
      if (!this.includeUsage) return undefined
      return formatData(`${this.head},"choices":[],"usage":${JSON.stringify(usageOf(event))}}`)
    }
    const index = event.choice ?? 0
    let delta: Record<string, unknown>
    let finishReason: string | null = null
    if (event.type === 'delta') {
      delta = { content: event.content }
    } else if (event.type === 'reasoning') {
      // The field DeepSeek and vLLM send, which their clients (and the OpenAI SDK's raw chunks) read.
      delta = { reasoning_content: event.content }
    } else if (event.type === 'tool_call') {
      const fn: Record<string, string> = { arguments: event.arguments }
      if (event.name !== undefined) fn.name = event.name
      delta = { tool_calls: [event.id === undefined ? { index: event.index, function: fn } : { index: event.index, id: event.id, type: 'function', function: fn }] }
    } else {
      delta = {}
      finishReason = event.reason
    }
    // OpenAI sends the role on a choice's first chunk; clients that build messages rely on it.
    if (!this.roleSent.has(index)) {
      this.roleSent.add(index)
      delta = { role: 'assistant', ...delta }
    }
    return formatData(`${this.head},"choices":[${JSON.stringify({ index, delta, finish_reason: finishReason })}]}`)
  }

  /** The frame for an end without `[DONE]` and without a journaled error (cancel, timeout, …). */
  endFrame (reason: EndReason): string | undefined {
    if (reason === 'done' || reason === 'error') return undefined
    return errorFrame(reason, `the generation ended early: ${reason}`)
  }
}

/**
 * An in-stream error as OpenAI sends it; the official SDKs throw on a chunk with `error`, so a
 * cut answer is never mistaken for a complete one.
 */
function errorFrame (code: string, message: string): string {
  return formatData(JSON.stringify({ error: { message, type: 'relay_error', code } }))
}

/** OpenAI's usage object; reasoning tokens go where OpenAI puts them. */
function usageOf (usage: Usage): Record<string, unknown> {
  const out: Record<string, unknown> = { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens }
  if (usage.reasoning_tokens !== undefined) out.completion_tokens_details = { reasoning_tokens: usage.reasoning_tokens }
  return out
}

/** A whole `chat.completion` object, for `stream: false`. */
export function completionObject (completionId: string, model: string, answer: AnswerBuilder, promptChars: number): Record<string, unknown> {
  const choices = answer.result().map((c) => ({
    index: c.index,
    message: {
      role: 'assistant',
      content: c.toolCalls.length > 0 && c.text === '' ? null : c.text,
      ...(c.reasoning === '' ? {} : { reasoning_content: c.reasoning }),
      ...(c.toolCalls.length > 0
        ? {
            tool_calls: c.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } }))
          }
        : {})
    },
    finish_reason: c.finishReason ?? null
  }))
  return {
    id: completionId,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices,
    usage: usageOf(answer.usageOrEstimate(promptChars).usage)
  }
}
