import type { ChatRequestBody, UpstreamEvent } from '../upstream/types.js'
import type { RelayEvent } from './events.js'

/** A tool call put together from its fragments. */
export interface AssembledToolCall {
  index: number
  id: string | undefined
  name: string | undefined
  arguments: string
}

/** One choice of an answer, put together. */
export interface AssembledChoice {
  index: number
  /** The model's reasoning (thinking) before the answer; `''` when it sent none. */
  reasoning: string
  text: string
  toolCalls: AssembledToolCall[]
  finishReason: string | undefined
}

/** Token counts, from the upstream or estimated. */
export interface Usage {
  prompt_tokens: number
  completion_tokens: number
  total_tokens: number
  /** Of `completion_tokens`, those spent reasoning: when the upstream reports it, or estimated from reasoning text. */
  reasoning_tokens?: number
}

/**
 * Puts an answer together from its events: reasoning and text per choice, tool calls merged by
 * index, finish reasons, usage. Used for the non-streaming OpenAI endpoint and for the `onFinish`
 * hook.
 */
export class AnswerBuilder {
  private readonly choices = new Map<number, AssembledChoice>()
  usage: Usage | undefined

  add (event: RelayEvent): void {
    if (event.type === 'usage') {
      this.usage = usageOf(event)
      return
    }
    if (event.type === 'error') return
    const choice = this.choice(event.choice ?? 0)
    if (event.type === 'delta') {
      choice.text += event.content
    } else if (event.type === 'reasoning') {
      choice.reasoning += event.content
    } else if (event.type === 'finish') {
      choice.finishReason = event.reason
    } else {
      let call = choice.toolCalls.find((c) => c.index === event.index)
      if (call === undefined) {
        call = { index: event.index, id: undefined, name: undefined, arguments: '' }
        choice.toolCalls.push(call)
      }
      // Some providers repeat `id`/`name` (or send them empty) on later fragments: the first non-empty wins.
      if (call.id === undefined && event.id) call.id = event.id
      if (call.name === undefined && event.name) call.name = event.name
      call.arguments += event.arguments
    }
  }

  /** The choices in index order (choice 0 always present). */
  result (): AssembledChoice[] {
    this.choice(0)
    return [...this.choices.values()].sort((a, b) => a.index - b.index)
  }

  /**
   * The upstream's usage, or an estimate (about four characters a token, the common rule of
   * thumb for English text) when the upstream sent none — e.g. a cancelled answer.
   */
  usageOrEstimate (promptChars: number): { usage: Usage, estimated: boolean } {
    if (this.usage !== undefined) return { usage: this.usage, estimated: false }
    let chars = 0
    let reasoningChars = 0
    for (const c of this.choices.values()) {
      chars += c.text.length
      reasoningChars += c.reasoning.length
      for (const call of c.toolCalls) chars += call.arguments.length + (call.name?.length ?? 0)
    }
    return { usage: estimateUsage(chars, reasoningChars, promptChars), estimated: true }
  }

  private choice (index: number): AssembledChoice {
    let choice = this.choices.get(index)
    if (choice === undefined) {
      choice = { index, reasoning: '', text: '', toolCalls: [], finishReason: undefined }
      this.choices.set(index, choice)
    }
    return choice
  }
}

/** The usage an upstream reported, as the relay's {@link Usage}. */
function usageOf (event: Extract<UpstreamEvent, { type: 'usage' }>): Usage {
  const usage: Usage = { prompt_tokens: event.prompt_tokens, completion_tokens: event.completion_tokens, total_tokens: event.total_tokens }
  if (event.reasoning_tokens !== undefined) usage.reasoning_tokens = event.reasoning_tokens
  return usage
}

/**
 * Usage estimated from characters: about four a token, the common rule of thumb for English
 * text. Reasoning is output the upstream bills as completion tokens.
 */
export function estimateUsage (outputChars: number, reasoningChars: number, promptChars: number): Usage {
  const reasoning = Math.ceil(reasoningChars / 4)
  const completion = Math.ceil(outputChars / 4) + reasoning
  const prompt = Math.ceil(promptChars / 4)
  const usage: Usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion }
  if (reasoning > 0) usage.reasoning_tokens = reasoning
  return usage
}

/**
 * What a generation's log line and metrics need of its events, without keeping the text: counts
 * by type, and the characters an estimate of the usage needs when the upstream sends none.
 */
export class OutputTally {
  /** Answer text pieces (`delta` events): the upstream's content tokens. */
  deltas = 0
  private chars = 0
  private reasoningChars = 0
  private usage: Usage | undefined

  add (event: UpstreamEvent): void {
    switch (event.type) {
      case 'delta':
        this.deltas++
        this.chars += event.content.length
        break
      case 'reasoning':
        this.reasoningChars += event.content.length
        break
      case 'tool_call':
        this.chars += event.arguments.length + (event.name?.length ?? 0)
        break
      case 'usage':
        this.usage = usageOf(event)
        break
    }
  }

  /** The upstream's usage, or an estimate ({@link estimateUsage}) when it sent none. */
  usageOrEstimate (body: ChatRequestBody): { usage: Usage, estimated: boolean } {
    if (this.usage !== undefined) return { usage: this.usage, estimated: false }
    return { usage: estimateUsage(this.chars, this.reasoningChars, promptChars(body)), estimated: true }
  }
}

/** Characters of the prompt, for the usage estimate when the upstream sent none. */
export function promptChars (body: ChatRequestBody): number {
  const messages = body.messages
  if (!Array.isArray(messages)) return 0
  let chars = 0
  for (const m of messages) {
    const content = (m as { content?: unknown }).content
    if (typeof content === 'string') chars += content.length
    else if (content != null) chars += JSON.stringify(content).length
  }
  return chars
}
