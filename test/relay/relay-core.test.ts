/**
 * The Relay core's edges between the store and the generation: a start refused after the
 * generation was made must not leave it running, a shutdown must not miss a start still waiting
 * on the store, and a hook that never settles must not hold a stop, the time limit or a shutdown.
 * A real mock upstream and UpstreamClient; stores are the memory store, slowed or failing where said.
 */
import t from 'tap'
import { MemoryStore } from '../../lib/relay/stores/memory.js'
import { startRelayCore } from '../fixtures/relay-core.js'
import { waitUntil } from '../fixtures/wait.js'

const slow = (tag: string): Record<string, unknown> =>
  ({ messages: [{ role: 'user', content: 'Hi' }], mock: { tokens: Array.from({ length: 100 }, (_, i) => `t${i} `), tokenDelayMs: 30, firstTokenDelayMs: 0, tag } })

/** What a promise rejects with, or 'resolved'; 'pending' after `ms`. */
async function outcome (promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve('pending'), ms) })
  try {
    return await Promise.race([promise.then(() => 'resolved', (err: unknown) => err), late])
  } finally {
    clearTimeout(timer)
  }
}

t.test('a start refused after its generation was made (the conversation swap failed): 503, and the generation is stopped', async (t) => {
  class SwapFails extends MemoryStore {
    override async swapActive (): Promise<string | undefined> { throw new Error('store away') }
  }
  const store = new SwapFails()
  const { relay, mock } = await startRelayCore(t, store, { detachGraceMs: 60_000 })
  const err = await outcome(relay.start({ owner: null, client: 'c', conversationId: 'conv', body: slow('swap') }), 3000)
  t.match(err, { code: 'store_unavailable', status: 503 })
  await waitUntil(() => relay.local.size === 0, 3000, 'the generation to end')
  const [request] = mock.requests.filter((r) => r.tag === 'swap')
  t.ok(request === undefined || request.aborted, 'the upstream request never ran, or was aborted')
})

t.test('a shutdown that begins while a start waits on the store refuses that start too', async (t) => {
  class SlowSlots extends MemoryStore {
    override async acquireSlot (client: string, max: number): Promise<boolean> {
      await new Promise((resolve) => setTimeout(resolve, 100))
      return await super.acquireSlot(client, max)
    }
  }
  const store = new SlowSlots()
  const { relay, mock } = await startRelayCore(t, store, { detachGraceMs: 60_000 })
  const starting = outcome(relay.start({ owner: null, client: 'c', body: slow('late-start') }), 3000)
  await new Promise((resolve) => setTimeout(resolve, 20))
  await relay.shutdown(1000)
  t.match(await starting, { code: 'shutting_down', status: 503 }, 'the start is refused')
  t.equal(relay.local.size, 0, 'nothing runs after the shutdown returned')
  t.equal(store.size, 0, 'its journal was discarded')
  t.equal(mock.requests.filter((r) => r.tag === 'late-start').length, 0, 'the upstream was never called')
})

t.test('an onStart hook that never settles holds neither the time limit nor a shutdown', async (t) => {
  const store = new MemoryStore()
  const { relay, mock } = await startRelayCore(t, store, { detachGraceMs: 60_000, hooks: { onStart: async () => { await new Promise(() => {}) } }, maxDurationMs: 200 })
  const generation = await relay.start({ owner: null, client: 'c', body: slow('hung-hook') })
  t.equal(await outcome(generation.ended, 2000), 'resolved', 'the time limit ends it')
  t.equal(await generation.ended, 'timeout')
  t.equal(mock.requests.filter((r) => r.tag === 'hung-hook').length, 0, 'the upstream was never called')

  const second = await relay.start({ owner: null, client: 'c', body: slow('hung-hook-2') })
  t.equal(await outcome(relay.shutdown(100), 2000), 'resolved', 'a shutdown completes')
  t.equal(await second.ended, 'shutdown')
})
