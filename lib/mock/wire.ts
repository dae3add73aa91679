import type { MockFormat, MockQuirk, MockToolCall } from './script.js'

/** Serializes SSE events, with the quirks a script asked for. */
export class Wire {
  readonly #quirks: ReadonlySet<MockQuirk>
  readonly #prefix: string

  constructor (quirks: readonly MockQuirk[] = []) {
    this.#quirks = new Set(quirks)
    this.#prefix = this.#quirks.has('no-space') ? 'data:' : 'data: '
  }

  /** One event: `data` (JSON-encoded unless a string) and an optional `event:` line. */
  event (data: unknown, event?: string): string {
    const split = this.#quirks.has('split-json')
    const text = typeof data === 'string' ? data : split ? JSON.stringify(data, null, 1) : JSON.stringify(data)
    let frame = ''
    if (this.#quirks.has('comments')) frame += ': keep-alive\n'
    if (event !== undefined) frame += `event: ${event}\n`
    else if (this.#quirks.has('event-message')) frame += 'event: message\n'
    // A JSON text holds no raw line break, so splitting on `\n` only splits `split-json` output.
    for (const line of text.split('\n')) frame += `${this.#prefix}${line}\n`
    return this.lineEnds(`${frame}\n`)
  }

  /** OpenAI's sentinel, or nothing with `no-done`. */
  done (): string {
    if (this.#quirks.has('no-done')) return ''
    if (this.#quirks.has('done-no-blank')) return `${this.#prefix}[DONE]`
    return this.lineEnds(`${this.#prefix}[DONE]\n\n`)
  }

  /** A comment line (keep-alive ping). */
  comment (text: string): string {
    return this.lineEnds(`: ${text}\n\n`)
  }

  lineEnds (text: string): string {
    if (this.#quirks.has('crlf')) return text.replaceAll('\n', '\r\n')
    if (this.#quirks.has('cr')) return text.replaceAll('\n', '\r')
    return text
  }

  has (quirk: MockQuirk): boolean {
    return this.#quirks.has(quirk)
  }
}

/** What every answer needs to know to render its frames. */
export interface AnswerContext {
  id: string
  model: string
  created: number
  n: number
  promptTokens: number
  /** openai: the delta field that carries reasoning. */
  reasoningField: 'reasoning_content' | 'reasoning'
  /** anthropic: a `redacted_thinking` block after the thinking block. */
  redactedThinking: boolean
}

/** Tokens sent, for usage: `completion` includes `reasoning`, as providers count them. */
export interface TokenCounts {
  completion: number
  reasoning: number
}

/** Renders one answer in one wire format. Methods return ready-to-write body text ('' for nothing). */
export interface Frames {
  start (): string
  /** One reasoning (thinking) token, before the answer. */
  reasoning (choice: number, text: string): string
  /** After the last reasoning token: what closes the reasoning (a signature, summary done events). */
  reasoningEnd (choice: number): string
  /** Before the answer: what holds it (Anthropic's text block, the Responses message item). */
  answerStart (): string
  token (choice: number, text: string): string
  toolCalls (choice: number, calls: readonly MockToolCall[]): string
  /** `counts` (per choice), for formats that report usage with the finish. */
  finish (choice: number, reason: string, counts: TokenCounts): string
  /** `counts` for all choices. */
  usage (counts: TokenCounts): string
  end (): string
  /** The same answer as one non-stream JSON document. */
  whole (text: string, reasoning: string, calls: readonly MockToolCall[], reason: string, counts: TokenCounts): unknown
}

/** The signature a thinking block ends with (opaque to the relay, as it is to any client). */
const SIGNATURE = 'EqQBCkgIBRABGAIiQMockSignatureOfTheThinkingBlock0123456789abcdefghij'
/** The encrypted payload of a redacted thinking block. */
const REDACTED = 'EmwKAhgBEgyMockRedactedThinkingPayload0123456789abcdefghijklmnop'

function argsOf (call: MockToolCall): string {
  return typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments)
}

/** Splits arguments into three fragments, as providers stream them mid-token. */
function pieces (text: string): string[] {
  const third = Math.max(1, Math.ceil(text.length / 3))
  const out: string[] = []
  for (let i = 0; i < text.length; i += third) out.push(text.slice(i, i + third))
  return out
}

function callId (call: MockToolCall, j: number): string {
  return call.id ?? `call_mock_${j}`
}

export function createFrames (format: MockFormat, wire: Wire, ctx: AnswerContext): Frames {
  if (format === 'anthropic') return anthropicFrames(wire, ctx)
  if (format === 'openai-responses') return responsesFrames(wire, ctx)
  return openaiFrames(wire, ctx)
}

function openaiFrames (wire: Wire, ctx: AnswerContext): Frames {
  const chunk = (choices: unknown[], extra?: Record<string, unknown>): string =>
    wire.event({ id: ctx.id, object: 'chat.completion.chunk', created: ctx.created, model: ctx.model, choices, ...extra })
  return {
    start () {
      let out = ''
      for (let k = 0; k < ctx.n; k++) out += chunk([{ index: k, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])
      return out
    },
    // DeepSeek sends `content: null` beside `reasoning_content`; Ollama `content: ""` beside `reasoning`.
    reasoning: (choice, text) => chunk([{ index: choice, delta: ctx.reasoningField === 'reasoning' ? { content: '', reasoning: text } : { content: null, reasoning_content: text }, logprobs: null, finish_reason: null }]),
    reasoningEnd: () => '',
    answerStart: () => '',
    token: (choice, text) => chunk([{ index: choice, delta: { content: text }, logprobs: null, finish_reason: null }]),
    toolCalls (choice, calls) {
      let out = ''
      calls.forEach((call, j) => {
        out += chunk([{ index: choice, delta: { tool_calls: [{ index: j, id: callId(call, j), type: 'function', function: { name: call.name, arguments: '' } }] }, finish_reason: null }])
        for (const piece of pieces(argsOf(call))) {
          out += chunk([{ index: choice, delta: { tool_calls: [{ index: j, function: { arguments: piece } }] }, finish_reason: null }])
        }
      })
      return out
    },
    finish: (choice, reason) => chunk([{ index: choice, delta: {}, logprobs: null, finish_reason: reason }]),
    usage: (counts) => chunk([], { usage: openaiUsage(ctx, counts) }),
    end: () => wire.done(),
    whole: (text, reasoning, calls, reason, counts) => ({
      id: ctx.id,
      object: 'chat.completion',
      created: ctx.created,
      model: ctx.model,
      choices: Array.from({ length: ctx.n }, (_, k) => ({
        index: k,
        message: {
          role: 'assistant',
          content: text === '' && calls.length > 0 ? null : text,
          ...(reasoning === '' ? {} : { [ctx.reasoningField]: reasoning }),
          ...(calls.length > 0 ? { tool_calls: calls.map((call, j) => ({ id: callId(call, j), type: 'function', function: { name: call.name, arguments: argsOf(call) } })) } : {})
        },
        finish_reason: reason
      })),
      usage: openaiUsage(ctx, { completion: counts.completion * ctx.n, reasoning: counts.reasoning * ctx.n })
    })
  }
}

function openaiUsage (ctx: AnswerContext, counts: TokenCounts): Record<string, unknown> {
  return {
    prompt_tokens: ctx.promptTokens,
    completion_tokens: counts.completion,
    total_tokens: ctx.promptTokens + counts.completion,
    ...(counts.reasoning > 0 ? { completion_tokens_details: { reasoning_tokens: counts.reasoning } } : {})
  }
}

function responsesFrames (wire: Wire, ctx: AnswerContext): Frames {
  let seq = 0
  let reason = 'stop'
  let counts: TokenCounts = { completion: 0, reasoning: 0 }
  /** The next output item's index: the reasoning item (if any) comes first. */
  let output = 0
  let summary: string | undefined
  const ev = (type: string, fields: Record<string, unknown>): string => wire.event({ type, sequence_number: seq++, ...fields }, type)
  const response = (status: string, extra?: Record<string, unknown>): Record<string, unknown> =>
    ({ id: ctx.id, object: 'response', created_at: ctx.created, status, model: ctx.model, output: [], ...extra })
  const usage = (): unknown => ({
    input_tokens: ctx.promptTokens,
    output_tokens: counts.completion,
    ...(counts.reasoning > 0 ? { output_tokens_details: { reasoning_tokens: counts.reasoning } } : {}),
    total_tokens: ctx.promptTokens + counts.completion
  })
  const reasoningItem = (text: string): Record<string, unknown> => ({ id: 'rs_mock', type: 'reasoning', summary: [{ type: 'summary_text', text }] })
  let message = 0
  return {
    start: () => ev('response.created', { response: response('in_progress') }),
    reasoning (_choice, text) {
      let out = ''
      if (summary === undefined) {
        summary = ''
        out += ev('response.output_item.added', { output_index: output, item: { id: 'rs_mock', type: 'reasoning', summary: [] } }) +
          ev('response.reasoning_summary_part.added', { item_id: 'rs_mock', output_index: output, summary_index: 0, part: { type: 'summary_text', text: '' } })
      }
      summary += text
      return out + ev('response.reasoning_summary_text.delta', { item_id: 'rs_mock', output_index: output, summary_index: 0, delta: text })
    },
    reasoningEnd () {
      if (summary === undefined) return ''
      const index = output++
      return ev('response.reasoning_summary_text.done', { item_id: 'rs_mock', output_index: index, summary_index: 0, text: summary }) +
        ev('response.reasoning_summary_part.done', { item_id: 'rs_mock', output_index: index, summary_index: 0, part: { type: 'summary_text', text: summary } }) +
        ev('response.output_item.done', { output_index: index, item: reasoningItem(summary) })
    },
    answerStart () {
      message = output++
      return ev('response.output_item.added', { output_index: message, item: { id: 'msg_mock', type: 'message', role: 'assistant', content: [] } })
    },
    token: (_choice, text) => ev('response.output_text.delta', { item_id: 'msg_mock', output_index: message, content_index: 0, delta: text }),
    toolCalls (_choice, calls) {
      let out = ''
      calls.forEach((call, j) => {
        const index = output++
        const item = { id: `fc_mock_${j}`, type: 'function_call', call_id: callId(call, j), name: call.name, arguments: '' }
        out += ev('response.output_item.added', { output_index: index, item })
        for (const piece of pieces(argsOf(call))) out += ev('response.function_call_arguments.delta', { item_id: item.id, output_index: index, delta: piece })
        out += ev('response.function_call_arguments.done', { item_id: item.id, output_index: index, arguments: argsOf(call) })
      })
      return out
    },
    finish (_choice, why, sent) {
      reason = why
      counts = sent
      return ''
    },
    usage: () => '',
    end: () => reason === 'length'
      ? ev('response.incomplete', { response: response('incomplete', { incomplete_details: { reason: 'max_output_tokens' }, usage: usage() }) })
      : ev('response.completed', { response: response('completed', { usage: usage() }) }),
    whole: (text, reasoning, calls, why, sent) => {
      counts = sent
      return response(why === 'length' ? 'incomplete' : 'completed', {
        output: [
          ...(reasoning === '' ? [] : [reasoningItem(reasoning)]),
          { id: 'msg_mock', type: 'message', role: 'assistant', content: [{ type: 'output_text', text }] },
          ...calls.map((call, j) => ({ id: `fc_mock_${j}`, type: 'function_call', call_id: callId(call, j), name: call.name, arguments: argsOf(call) }))
        ],
        ...(why === 'length' ? { incomplete_details: { reason: 'max_output_tokens' } } : {}),
        usage: usage()
      })
    }
  }
}

const STOP_REASONS: Record<string, string> = { stop: 'end_turn', length: 'max_tokens', tool_calls: 'tool_use' }

function anthropicFrames (wire: Wire, ctx: AnswerContext): Frames {
  /** Index of the open text block, if any. */
  let textBlock: number | undefined
  let thinkingBlock: number | undefined
  let blocks = 0
  const ev = (type: string, fields: Record<string, unknown>): string => wire.event({ type, ...fields }, type)
  const closeText = (): string => {
    if (textBlock === undefined) return ''
    const index = textBlock
    textBlock = undefined
    return ev('content_block_stop', { index })
  }
  return {
    start: () => ev('message_start', { message: { id: ctx.id, type: 'message', role: 'assistant', model: ctx.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: ctx.promptTokens, output_tokens: 1 } } }),
    reasoning (_choice, text) {
      let out = ''
      if (thinkingBlock === undefined) {
        thinkingBlock = blocks++
        out += ev('content_block_start', { index: thinkingBlock, content_block: { type: 'thinking', thinking: '', signature: '' } })
      }
      return out + ev('content_block_delta', { index: thinkingBlock, delta: { type: 'thinking_delta', thinking: text } })
    },
    reasoningEnd () {
      if (thinkingBlock === undefined) return ''
      let out = ev('content_block_delta', { index: thinkingBlock, delta: { type: 'signature_delta', signature: SIGNATURE } }) +
        ev('content_block_stop', { index: thinkingBlock })
      if (ctx.redactedThinking) {
        const index = blocks++
        out += ev('content_block_start', { index, content_block: { type: 'redacted_thinking', data: REDACTED } }) + ev('content_block_stop', { index })
      }
      return out
    },
    answerStart () {
      textBlock = blocks++
      return ev('content_block_start', { index: textBlock, content_block: { type: 'text', text: '' } })
    },
    token: (_choice, text) => ev('content_block_delta', { index: textBlock ?? 0, delta: { type: 'text_delta', text } }),
    toolCalls (_choice, calls) {
      let out = closeText()
      calls.forEach((call, j) => {
        const index = blocks++
        out += ev('content_block_start', { index, content_block: { type: 'tool_use', id: call.id ?? `toolu_mock_${j}`, name: call.name, input: {} } })
        for (const piece of pieces(argsOf(call))) out += ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: piece } })
        out += ev('content_block_stop', { index })
      })
      return out
    },
    // Anthropic counts thinking in output_tokens and reports no figure of its own for it.
    finish: (_choice, reason, counts) => closeText() +
      ev('message_delta', { delta: { stop_reason: STOP_REASONS[reason] ?? reason, stop_sequence: null }, usage: { output_tokens: counts.completion } }),
    usage: () => '',
    end: () => ev('message_stop', {}),
    whole: (text, reasoning, calls, reason, counts) => ({
      id: ctx.id,
      type: 'message',
      role: 'assistant',
      model: ctx.model,
      content: [
        ...(reasoning === '' ? [] : [{ type: 'thinking', thinking: reasoning, signature: SIGNATURE }]),
        ...(reasoning !== '' && ctx.redactedThinking ? [{ type: 'redacted_thinking', data: REDACTED }] : []),
        ...(text === '' ? [] : [{ type: 'text', text }]),
        ...calls.map((call, j) => ({ type: 'tool_use', id: call.id ?? `toolu_mock_${j}`, name: call.name, input: typeof call.arguments === 'string' ? JSON.parse(call.arguments) : call.arguments }))
      ],
      stop_reason: STOP_REASONS[reason] ?? reason,
      usage: { input_tokens: ctx.promptTokens, output_tokens: counts.completion }
    })
  }
}
