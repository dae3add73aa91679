import Fastify from 'fastify'
import t from 'tap'
import relayPlugin from '../../index.js'
import ssePlugin from '../../sse.js'
import type { LlmRelayOptions as RelayPluginOptions } from '../../index.js'
import { startRelayCore } from '../fixtures/relay-core.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, textOf } from '../fixtures/stack.js'

// DESIGN.md: plugin options are validated at registration, and boot fails with a message naming
// the option. A bad one used to boot fine and then fail every request with a 500 (a stream only
// once its generation had already started upstream).

t.test('bad options fail the boot with a TypeError naming the option', async (t) => {
  const { mock, relay } = await startRelayCore(t)
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['heartbeatMs: -5', { relay, heartbeatMs: -5 }, /^fastify-llm-relay: heartbeatMs must be a non-negative integer .*\(got -5\)$/],
    ['heartbeatMs: "1000"', { relay, heartbeatMs: '1000' }, /^fastify-llm-relay: heartbeatMs must be/],
    ['heartbeatMs past the timer range', { relay, heartbeatMs: 2 ** 31 }, /^fastify-llm-relay: heartbeatMs must be/],
    ['maxBufferedBytes: 0', { relay, maxBufferedBytes: 0 }, /^fastify-llm-relay: maxBufferedBytes must be a positive integer \(got 0\)$/],
    ['retryMs: 1.5', { relay, retryMs: 1.5 }, /^fastify-llm-relay: retryMs: retry must be a non-negative integer.*\(got 1.5\)$/],
    ['retryMs: -1', { relay, retryMs: -1 }, /^fastify-llm-relay: retryMs: /],
    ['no upstream and no relay', {}, /^fastify-llm-relay: upstream is required/],
    ['relay: null', { relay: null }, /^fastify-llm-relay: upstream is required/],
    ['relay: {}', { relay: {} }, /^fastify-llm-relay: relay must be a Relay \(got an object, without start, read, find, findActive, cancel, awaitCommit, shutdown\)$/],
    ['relay: "r"', { relay: 'r' }, /^fastify-llm-relay: relay must be a Relay \(got "r"\)$/],
    ['channels: {}', { relay, channels: {} }, /^fastify-llm-relay: channels must be a Channels/],
    ['apiKeys: "k1"', { relay, apiKeys: 'k1' }, /^fastify-llm-relay: apiKeys must be an array of strings \(got a string\)$/],
    ['apiKeys with an empty key', { relay, apiKeys: ['k1', ''] }, /^fastify-llm-relay: apiKeys\[1\] must be a non-empty string .*\(got an empty string\)$/],
    ['apiKeys with a number', { relay, apiKeys: [42] }, /^fastify-llm-relay: apiKeys\[0\] must be a non-empty string .*\(got 42\)$/],
    ['publishKeys with a padded key', { relay, publishKeys: [' secret-key '] }, /^fastify-llm-relay: publishKeys\[0\] must be a non-empty string .*\(got a string with surrounding whitespace\)$/],
    ['authorizeChannel: true', { relay, authorizeChannel: true }, /^fastify-llm-relay: authorizeChannel must be a function \(got true\)$/],
    ['defaultModel: ""', { relay, defaultModel: '' }, /^fastify-llm-relay: defaultModel must be a non-empty string/],
    ['observer without closed', { relay, observer: { opened () {}, resumed () {} } }, /^fastify-llm-relay: observer must be a StreamObserver \(got an object, without closed\)$/]
  ]
  for (const [name, options, message] of cases) {
    const app = Fastify()
    await app.register(ssePlugin)
    // Not awaited: the registration's error surfaces at ready (and at listen).
    void app.register(relayPlugin, options as unknown as RelayPluginOptions)
    await t.rejects(async () => await app.ready(), { name: 'TypeError', message }, `${name}: boot fails naming it`)
    await app.close().catch(() => {})
  }
  // The message never carries a key.
  for (const options of [{ relay, publishKeys: [' secret-key '] }, { relay, apiKeys: 'secret-key' }]) {
    const app = Fastify()
    await app.register(ssePlugin)
    const err = await app.register(relayPlugin, options as unknown as RelayPluginOptions).then(() => undefined, (e: unknown) => e as Error)
    t.ok(err instanceof TypeError, 'awaiting the registration rejects too')
    t.notMatch(err?.message ?? '', /secret-key/, 'the key is not in the message')
    await app.close().catch(() => {})
  }

  // A server with bad options does not listen, so no request can start a generation upstream.
  const bad = Fastify()
  await bad.register(ssePlugin)
  void bad.register(relayPlugin, { relay, heartbeatMs: -5 })
  await t.rejects(bad.listen({ host: '127.0.0.1', port: 0 }), /heartbeatMs/, 'listen fails too')
  t.equal(bad.server.listening, false, 'nothing listens')
  await bad.close().catch(() => {})
  t.equal(mock.requests.length, 0, 'the mock upstream saw no request')
})

t.test('valid options are the ones the streams use', async (t) => {
  const { mock, relay } = await startRelayCore(t)
  const app = Fastify()
  await app.register(ssePlugin)
  await app.register(relayPlugin, { relay, heartbeatMs: 40, retryMs: 1234, maxBufferedBytes: 1 << 16, defaultModel: 'm-1' })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const res = await collectSse(`${url}/v1/chat/stream`, {
    method: 'POST',
    body: { messages: [{ role: 'user', content: 'hi' }], mock: { tokens: ['a', 'b'], firstTokenDelayMs: 0, tokenDelayMs: 250 } },
    timeoutMs: 5000
  })
  t.equal(res.status, 200)
  t.same(res.retries, [1234], 'retryMs is the stream\'s retry')
  t.ok(res.comments >= 2, `heartbeatMs 40: pings while the upstream pauses 250 ms (got ${res.comments})`)
  t.equal(textOf(res.events), 'ab')
  t.equal(closeReason(res.events), 'done')
  t.equal(mock.requests.length, 1)

  // Defaults when nothing is given: retry 3000, no ping within a short answer.
  const plain = Fastify()
  await plain.register(ssePlugin)
  await plain.register(relayPlugin, { relay })
  t.teardown(() => plain.close())
  await plain.listen({ host: '127.0.0.1', port: 0 })
  const plainUrl = `http://127.0.0.1:${(plain.server.address() as { port: number }).port}`
  const dflt = await collectSse(`${plainUrl}/v1/chat/stream`, {
    method: 'POST',
    body: { messages: [{ role: 'user', content: 'hi' }], mock: { tokens: ['c'], firstTokenDelayMs: 0, tokenDelayMs: 1 } },
    timeoutMs: 5000
  })
  t.same(dflt.retries, [3000], 'the default retry')
  t.equal(textOf(dflt.events), 'c')
})
