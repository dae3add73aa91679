import type { UpstreamEvent } from '../upstream/types.js'

/**
 * The wire form of each relay event (README "The wire format"): one line of JSON per event.
 * Hand-built for the per-token path: `JSON.stringify` of the content string alone escapes it
 * exactly (CR, LF, U+2028 and all), and skips serializing the surrounding object.
 */
export function eventData (event: UpstreamEvent): string {
  if (event.type === 'usage') {
    return `{"type":"usage","prompt_tokens":${event.prompt_tokens},"completion_tokens":${event.completion_tokens},"total_tokens":${event.total_tokens}` +
      (event.reasoning_tokens === undefined ? '}' : `,"reasoning_tokens":${event.reasoning_tokens}}`)
  }
  // The wire format's events name no choice; `choice` appears only for the extra choices of `n > 1`.
  const choice = event.choice === 0 ? '' : `,"choice":${event.choice}`
  switch (event.type) {
    case 'delta':
      return `{"type":"delta"${choice},"content":${JSON.stringify(event.content)}}`
    case 'reasoning':
      return `{"type":"reasoning"${choice},"content":${JSON.stringify(event.content)}}`
    case 'tool_call':
      return `{"type":"tool_call"${choice},"index":${event.index}` +
        (event.id === undefined ? '' : `,"id":${JSON.stringify(event.id)}`) +
        (event.name === undefined ? '' : `,"name":${JSON.stringify(event.name)}`) +
        `,"arguments":${JSON.stringify(event.arguments)}}`
    case 'finish':
      return `{"type":"finish"${choice},"reason":${JSON.stringify(event.reason)}}`
  }
}

/** The data of an `error` event. */
export function errorData (code: string, message: string): string {
  return JSON.stringify({ type: 'error', code, message })
}

/** The literal sentinel that ends a complete answer. */
export { DONE_DATA as DONE } from '../sse/format.js'

/** A relay event as a reader sees it, parsed back from the journal's data. */
export type RelayEvent =
  | { type: 'reasoning', choice?: number, content: string }
  | { type: 'delta', choice?: number, content: string }
  | { type: 'tool_call', choice?: number, index: number, id?: string, name?: string, arguments: string }
  | { type: 'finish', choice?: number, reason: string }
  | { type: 'usage', prompt_tokens: number, completion_tokens: number, total_tokens: number, reasoning_tokens?: number }
  | { type: 'error', code: string, message: string }
