import Fastify from 'fastify'
import t from 'tap'
import relayPlugin, { Channels, MemoryStore, Relay, UpstreamClient } from '../../index.js'
import { startMockUpstream } from '../../mock.js'
import ssePlugin from '../../sse.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, textOf } from '../fixtures/stack.js'

// The package entry, used the way an application composes its own server from the parts.
t.test('an application composes the relay from the package entry', async (t) => {
  const mock = await startMockUpstream({ port: 0 })
  t.teardown(() => mock.close())
  const upstream = new UpstreamClient({ url: mock.url, apiKey: 'sk-test', model: 'test-model' })
  const store = new MemoryStore()
  const relay = new Relay({ upstream, store })
  const channels = new Channels({ store })

  const app = Fastify()
  await app.register(ssePlugin)
  await app.register(relayPlugin, { relay, channels })
  // The application's own route next to the relay's, pushing to a channel from a handler.
  app.post('/orders/:id/ship', async (request) => {
    const { id } = request.params as { id: string }
    return { ids: await channels.publish(`order-${id}`, { event: 'shipped', data: { id } }) }
  })
  app.addHook('preClose', async () => { await relay.shutdown(0) })
  app.addHook('onClose', async () => { await upstream.close(); await store.close() })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const answer = await collectSse(`${url}/v1/chat/stream`, {
    method: 'POST',
    body: { messages: [{ role: 'user', content: 'hi' }], mock: { text: 'Composed by hand.', tokenDelayMs: 1 } }
  })
  t.equal(answer.status, 200)
  t.equal(textOf(answer.events), 'Composed by hand.')
  t.equal(closeReason(answer.events), 'done')
  t.equal(mock.requests.at(-1)?.headers.authorization, 'Bearer sk-test', 'the upstream key is the one given')

  const shipped = await fetch(`${url}/orders/7/ship`, { method: 'POST' })
  t.same(await shipped.json(), { ids: [1] })
  const channel = await collectSse(`${url}/v1/channels/order-7/stream`, { until: (e) => e.event === 'shipped' })
  t.same(channel.events.map((e) => [e.id, e.event, e.data]), [['1', 'shipped', '{"id":"7"}']])
})
