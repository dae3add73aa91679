import type { ChatRequestBody, UpstreamFormat } from '../types.js'
import { AnthropicAdapter, anthropicRequest } from './anthropic.js'
import { OpenAIAdapter, openaiRequest } from './openai.js'
import { ResponsesAdapter, responsesRequest } from './openai-responses.js'
import type { Adapter, EventSink, RequestShape } from './types.js'

export type { Adapter, EventSink, RequestShape } from './types.js'

/** The request to send for `format`. */
export function buildRequest (format: UpstreamFormat, body: ChatRequestBody, model: string, apiKey: string | undefined): RequestShape {
  if (format === 'anthropic') return anthropicRequest(body, model, apiKey)
  if (format === 'openai-responses') return responsesRequest(body, model, apiKey)
  return openaiRequest(body, model, apiKey)
}

/** A fresh adapter (per attempt) for `format`. */
export function createAdapter (format: UpstreamFormat, sink: EventSink, apiKey: string | undefined): Adapter {
  if (format === 'anthropic') return new AnthropicAdapter(sink, apiKey)
  if (format === 'openai-responses') return new ResponsesAdapter(sink, apiKey)
  return new OpenAIAdapter(sink, apiKey)
}
