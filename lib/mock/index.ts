export { startMockUpstream } from './server.js'
export type { MockRequestRecord, MockUpstream, MockUpstreamOptions } from './server.js'
export type { MockFast, MockFault, MockFormat, MockQuirk, MockScript, MockToolCall } from './script.js'
export { defaultAnswer, tokenize } from './answer.js'
