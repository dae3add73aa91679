import { Writable } from 'node:stream'
import t from 'tap'
import { startMockUpstream } from '../../lib/mock/index.js'
import type { GenerationInfo, GenerationResult } from '../../lib/relay/generation.js'
import { startRelay } from '../fixtures/relay.js'
import { collectSse } from '../fixtures/sse-client.js'
import { closeReason, untilClose, waitUntil } from '../fixtures/stack.js'

t.test('hooks see the start, each event, and the finish with the full text — also on cancel', async (t) => {
  const mock = await startMockUpstream()
  const started: GenerationInfo[] = []
  const finished: GenerationResult[] = []
  let events = 0
  const logs: string[] = []
  const relay = await startRelay({
    env: { UPSTREAM_URL: mock.url, UPSTREAM_API_KEY: 'sk-never-logged' },
    logger: { level: 'info', stream: new Writable({ write (chunk, _enc, done) { logs.push(String(chunk)); done() } }) },
    hooks: {
      onStart: (info) => { started.push(info) },
      onEvent: () => { events++ },
      onFinish: (result) => { finished.push(result) }
    }
  })
  t.teardown(async () => { await relay.close(); await mock.close() })
  const body = { messages: [{ role: 'user', content: 'persist me' }], conversationId: 'c-7' }

  const done = await collectSse(`${relay.url}/v1/chat/stream`, { method: 'POST', body: { ...body, mock: { tokens: ['Hi', ' there'], firstTokenDelayMs: 0 } }, until: untilClose })
  t.equal(closeReason(done.events), 'done')
  await waitUntil(() => finished.length === 1)
  t.equal(started[0]?.conversationId, 'c-7')
  t.equal(events, 4, 'two deltas, finish, usage')
  t.match(finished[0], { reason: 'done', text: 'Hi there', finishReason: 'stop', usageEstimated: false, conversationId: 'c-7' })

  const tokens = Array.from({ length: 100 }, (_, i) => `w${i} `)
  const cut = await collectSse(`${relay.url}/v1/chat/stream`, {
    method: 'POST',
    body: { ...body, mock: { tokens, tokenDelayMs: 20, firstTokenDelayMs: 0, usage: false } },
    onEvent: (e) => {
      if (e.id === '3') void fetch(`${relay.url}/v1/chat/stream/${done.headers['x-stream-id'] as string}`, { method: 'DELETE' })
    },
    until: (_e, all) => all.length >= 4
  })
  const cutId = cut.headers['x-stream-id'] as string
  // The server notices the client leaving (and logs it) before the DELETE stops the generation.
  await waitUntil(() => logs.some((l) => l.includes('client disconnected') && l.includes(cutId)), 3000, 'the disconnect log line')
  await fetch(`${relay.url}/v1/chat/stream/${cutId}`, { method: 'DELETE' })
  await waitUntil(() => finished.length === 2)
  const partial = finished[1] as GenerationResult
  t.equal(partial.reason, 'cancelled')
  t.ok(partial.text.length > 0 && tokens.join('').startsWith(partial.text), 'the partial text')
  t.equal(partial.usageEstimated, true, 'usage estimated when the upstream sent none')
  t.ok(partial.usage.completion_tokens > 0)

  const line = JSON.parse(logs.find((l) => l.includes('client disconnected') && l.includes(cutId)) as string) as { level: number, streamId: string }
  t.equal(line.level, 30, 'a client leaving is info, not an error')
  t.equal(line.streamId, cutId, 'with the stream id')
  t.notOk(logs.some((l) => l.includes('sk-never-logged')), 'the upstream key is in no log line')
})

t.test('hooks that throw are logged and never disturb the stream', async (t) => {
  const mock = await startMockUpstream()
  const logs: Array<{ level: number, msg: string, streamId?: string }> = []
  const relay = await startRelay({
    env: { UPSTREAM_URL: mock.url },
    logger: { level: 'warn', stream: new Writable({ write (chunk, _enc, done) { logs.push(JSON.parse(String(chunk)) as typeof logs[number]); done() } }) },
    hooks: {
      onStart: () => { throw new Error('onStart broke') },
      onEvent: () => { throw new Error('onEvent broke') },
      onFinish: async () => { throw new Error('onFinish broke') }
    }
  })
  t.teardown(async () => { await relay.close(); await mock.close() })
  const tokens = ['All', ' of', ' it']
  const res = await collectSse(`${relay.url}/v1/chat/stream`, {
    method: 'POST',
    body: { messages: [{ role: 'user', content: 'Hi' }], mock: { tokens, firstTokenDelayMs: 0 } },
    until: untilClose
  })
  t.equal(res.status, 200)
  t.equal(closeReason(res.events), 'done', 'the answer ends normally')
  t.equal(res.events.filter((e) => e.data.includes('"delta"')).map((e) => JSON.parse(e.data).content).join(''), tokens.join(''), 'whole')
  await waitUntil(() => ['onStart', 'onEvent', 'onFinish'].every((hook) => logs.some((l) => l.msg.includes(hook))), 3000, 'a log line per failing hook')
  const streamId = res.headers['x-stream-id'] as string
  for (const hook of ['onStart', 'onEvent', 'onFinish']) {
    const line = logs.find((l) => l.msg.includes(hook))
    t.equal(line?.level, 50, `${hook}: logged as an error`)
    t.equal(line?.streamId, streamId, `${hook}: with the stream id`)
  }
  t.equal(logs.filter((l) => l.msg.includes('onEvent')).length, 1, 'a hook failing per event is logged once per generation, not per token')
})
