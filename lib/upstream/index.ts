export { UpstreamClient } from './client.js'
export type { UpstreamClientStats } from './client.js'
export type { UpstreamModel } from './models.js'
export { UpstreamError } from './types.js'
export type {
  ChatRequestBody,
  DeltaEvent,
  FinishEvent,
  ReasoningEvent,
  StreamOptions,
  ToolCallEvent,
  UpstreamClientOptions,
  UpstreamErrorCode,
  UpstreamEvent,
  UpstreamFormat,
  UpstreamReport,
  UsageEvent
} from './types.js'
export { parseRetryAfter } from './errors.js'
