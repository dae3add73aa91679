// The upstream's socket is destroyed mid-body: `upstream_reset` (502), nothing left open.
import t from 'tap'
import { ask, assertNoOpenSockets, harness, summarize } from '../fixtures/mock.js'

t.test('reset after two tokens', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 2 })
  const { events, error } = await ask(upstream, { tokens: ['a', 'b', 'c'], fault: 'reset', faultAfterTokens: 2 })
  t.equal(summarize(events).text[0], 'ab')
  t.match(error, { code: 'upstream_reset', status: 502 })
  t.equal(mock.requests.length, 1, 'not retried after a token')
  await assertNoOpenSockets(t, upstream, mock)
})

t.test('reset right after the headers, before any token: retryable', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  const { events, error } = await ask(upstream, { fault: 'reset' })
  t.same(events, [])
  t.match(error, { code: 'upstream_reset', status: 502, retryable: true })
  await assertNoOpenSockets(t, upstream, mock)
})
