// A server that ignored `stream: true` answers one JSON document: its content is delivered as
// one delta (plus tool calls, finish, usage) instead of hanging or failing.
import t from 'tap'
import type { UpstreamFormat } from '../../lib/upstream/index.js'
import { ask, assertNoOpenSockets, harness, summarize } from '../fixtures/mock.js'

for (const format of ['openai', 'openai-responses', 'anthropic'] as UpstreamFormat[]) {
  t.test(format, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format, maxRetries: 0 })
    const { events, error } = await ask(upstream, { fault: 'json', text: 'Whole answer.', toolCalls: [{ name: 'f', arguments: { a: 1 } }] })
    t.equal(error, undefined)
    t.same(events[0], { type: 'delta', choice: 0, content: 'Whole answer.' }, 'the text as one delta')
    const summary = summarize(events)
    t.match(summary.tools['0:0'], { name: 'f', arguments: '{"a":1}' })
    t.equal(summary.finish[0], 'tool_calls')
    t.equal(summary.usageEvents, 1)
    await assertNoOpenSockets(t, upstream, mock)
  })
}
