// Every provider stream goes through the client over a real socket, delivered whole, byte by
// byte and at random split points: the normalized answer must be the same each way and match the
// stream. Two sets: the project's own fixtures (test/fixtures/upstream/, written to the
// providers' documented formats; its README says which), always; and the captures of real
// providers beside the checkout (../shared/fixtures/upstream/), in addition when present and
// required when CI=true. Expected values are literals read off the files.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { UpstreamError } from '../../lib/upstream/index.js'
import type { UpstreamFormat } from '../../lib/upstream/index.js'
import { ask, assertNoOpenSockets, harness, summarize } from '../fixtures/mock.js'
import type { Summary } from '../fixtures/mock.js'
import { ownFixture, sharedCaptures } from '../fixtures/upstream-captures.js'

interface Capture {
  name: string
  format: UpstreamFormat
  body: Buffer
  expected?: Omit<Summary, 'usageEvents'>
  error?: { code: string, status: number, retryable: boolean, message: RegExp }
}

const own: Capture[] = [
  {
    name: 'openai-chat-text-usage.sse',
    format: 'openai',
    body: ownFixture('openai-chat-text-usage.sse'),
    expected: {
      reasoning: {},
      text: { 0: 'Server-Sent Events keep one HTTP response open and push each token as a `data:` line.\n\nRésumé after a drop: send `Last-Event-ID` — déjà vu 🎉' },
      tools: {},
      finish: { 0: 'stop' },
      usage: { prompt_tokens: 21, completion_tokens: 31, total_tokens: 52, reasoning_tokens: 0 }
    }
  },
  {
    name: 'openai-chat-parallel-tool-calls.sse',
    format: 'openai',
    body: ownFixture('openai-chat-parallel-tool-calls.sse'),
    expected: {
      reasoning: {},
      text: {},
      tools: {
        '0:0': { id: 'call_Xq1mN7bVzR2kL9sT4wYd8pHc', name: 'get_weather', arguments: '{"city":"Lyon","unit":"c"}' },
        '0:1': { id: 'call_Pf3aJ6gKq0uE5rW2iO8nMb1v', name: 'get_time', arguments: '{"timezone":"Europe/Paris"}' }
      },
      finish: { 0: 'tool_calls' },
      usage: { prompt_tokens: 112, completion_tokens: 47, total_tokens: 159, reasoning_tokens: 0 }
    }
  },
  {
    name: 'openai-chat-n3-choices.sse',
    format: 'openai',
    body: ownFixture('openai-chat-n3-choices.sse'),
    expected: {
      reasoning: {},
      text: { 0: 'Red sky at night.', 1: 'Blue hour in Tōkyō.', 2: 'Grey rain\nthen sun.' },
      tools: {},
      finish: { 0: 'stop', 1: 'stop', 2: 'stop' },
      usage: { prompt_tokens: 18, completion_tokens: 16, total_tokens: 34, reasoning_tokens: 0 }
    }
  },
  {
    name: 'azure-chat-prompt-filter.sse',
    format: 'openai',
    body: ownFixture('azure-chat-prompt-filter.sse'),
    expected: {
      reasoning: {},
      text: { 0: 'Copenhagen is the capital of Denmark.' },
      tools: {},
      finish: { 0: 'stop' },
      usage: { prompt_tokens: 14, completion_tokens: 8, total_tokens: 22, reasoning_tokens: 0 }
    }
  },
  {
    name: 'anthropic-tool-use.sse',
    format: 'anthropic',
    body: ownFixture('anthropic-tool-use.sse'),
    expected: {
      reasoning: {},
      text: { 0: 'Let me look up the forecast for Zürich.' },
      tools: { '0:0': { id: 'toolu_01Ab2Cd3Ef4Gh5Ij6Kl7Mn8o', name: 'get_forecast', arguments: '{"city": "Zürich", "days": 3}' } },
      finish: { 0: 'tool_calls' },
      // input 412 + 0 cache creation + 2048 cache read; output 71 from message_delta.
      usage: { prompt_tokens: 2460, completion_tokens: 71, total_tokens: 2531 }
    }
  },
  {
    name: 'openai-responses-text.sse',
    format: 'openai-responses',
    body: ownFixture('openai-responses-text.sse'),
    expected: {
      reasoning: {},
      text: { 0: 'Hej från Stockholm! The answer is 42.' },
      tools: {},
      finish: { 0: 'stop' },
      usage: { prompt_tokens: 19, completion_tokens: 12, total_tokens: 31, reasoning_tokens: 0 }
    }
  },
  {
    name: 'deepseek-reasoning-content.sse',
    format: 'openai',
    body: ownFixture('deepseek-reasoning-content.sse'),
    expected: {
      reasoning: { 0: 'Okay, the user asks for 17 × 23. 17 × 20 = 340, 17 × 3 = 51.\n\n340 + 51 = 391.' },
      text: { 0: '17 × 23 = **391**.' },
      tools: {},
      finish: { 0: 'stop' },
      usage: { prompt_tokens: 14, completion_tokens: 37, total_tokens: 51, reasoning_tokens: 29 }
    }
  },
  {
    name: 'openrouter-reasoning.sse',
    format: 'openai',
    body: ownFixture('openrouter-reasoning.sse'),
    expected: {
      // `reasoning` and `reasoning_details` carry the same text: it is read once.
      reasoning: { 0: 'The user wants a haiku about autumn. Five, seven, five syllables…' },
      text: { 0: 'Crisp leaves drift and fall,\namber light on quiet paths —\nthe year exhales slow.' },
      tools: {},
      finish: { 0: 'stop' },
      usage: { prompt_tokens: 38, completion_tokens: 96, total_tokens: 134, reasoning_tokens: 61 }
    }
  },
  {
    name: 'ollama-reasoning.sse',
    format: 'openai',
    body: ownFixture('ollama-reasoning.sse'),
    expected: {
      reasoning: { 0: 'Okay, the user said "hi". I should greet them\nback.' },
      text: { 0: 'Hello! How can I help? 😊' },
      tools: {},
      finish: { 0: 'stop' },
      usage: { prompt_tokens: 11, completion_tokens: 23, total_tokens: 34 }
    }
  },
  {
    name: 'openai-responses-reasoning-summary.sse',
    format: 'openai-responses',
    body: ownFixture('openai-responses-reasoning-summary.sse'),
    expected: {
      // Two summary parts, joined by a blank line; the .done events add nothing the deltas had.
      reasoning: { 0: '**Comparing growth rates**\n\nDoubling every year beats adding 10 %.\n\n**Checking the crossover**\n\nAfter 4 years: 16× vs 1.46×.' },
      text: { 0: 'Doubling wins from year 1 onward.' },
      tools: {},
      finish: { 0: 'stop' },
      usage: { prompt_tokens: 27, completion_tokens: 389, total_tokens: 416, reasoning_tokens: 320 }
    }
  },
  {
    name: 'openai-responses-reasoning-text.sse',
    format: 'openai-responses',
    body: ownFixture('openai-responses-reasoning-text.sse'),
    expected: {
      reasoning: { 0: 'We need the boiling point of water at sea level: 100 °C.' },
      text: { 0: 'Water boils at 100 °C (212 °F) at sea level.' },
      tools: {},
      finish: { 0: 'stop' },
      usage: { prompt_tokens: 72, completion_tokens: 29, total_tokens: 101, reasoning_tokens: 15 }
    }
  },
  {
    name: 'anthropic-thinking.sse',
    format: 'anthropic',
    body: ownFixture('anthropic-thinking.sse'),
    expected: {
      // The signature and the redacted_thinking block are no events.
      reasoning: { 0: 'Let me work out 27 × 453.\n\n27 × 400 = 10800, 27 × 53 = 1431.\n\n10800 + 1431 = 12231.' },
      text: { 0: '27 × 453 = **12,231**.' },
      tools: {},
      finish: { 0: 'stop' },
      // Anthropic counts thinking in output_tokens, with no figure of its own.
      usage: { prompt_tokens: 58, completion_tokens: 187, total_tokens: 245 }
    }
  },
  {
    name: 'openai-responses-error.sse',
    format: 'openai-responses',
    body: ownFixture('openai-responses-error.sse'),
    // insufficient_quota: a 429 that retrying cannot fix (see errors.ts).
    error: { code: 'upstream_rate_limited', status: 429, retryable: false, message: /exceeded your current quota/ }
  }
]

/** The captured streams of real providers (../shared/fixtures/upstream/, its README). */
function captured (dir: string): Capture[] {
  const read = (name: string): Buffer => readFileSync(join(dir, name))
  /** JSON-lines captures as SSE, as their README says to replay them. */
  const jsonLines = (name: string, withEventLines: boolean, done: boolean): Buffer => {
    const lines = read(name).toString('utf8').split('\n').filter(line => line.trim() !== '')
    const events = lines.map(line => withEventLines
      ? `event: ${(JSON.parse(line) as { type: string }).type}\ndata: ${line}\n\n`
      : `data: ${line}\n\n`)
    return Buffer.from(events.join('') + (done ? 'data: [DONE]\n\n' : ''))
  }
  return [
    {
      name: 'captured/openai-chat-text-usage.sse',
      format: 'openai',
      body: read('openai-chat-text-usage.sse'),
      expected: {
        reasoning: {},
        text: { 0: "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend checking a reliable weather website or a weather app." },
        tools: {},
        finish: { 0: 'stop' },
        usage: { prompt_tokens: 14, completion_tokens: 30, total_tokens: 44, reasoning_tokens: 0 }
      }
    },
    {
      name: 'captured/openai-chat-parallel-tool-calls.sse',
      format: 'openai',
      body: read('openai-chat-parallel-tool-calls.sse'),
      expected: {
        reasoning: {},
        text: {},
        tools: {
          '0:0': { id: 'call_JMW1whyEaYG438VE1OIflxA2', name: 'GetWeatherArgs', arguments: '{"city": "Edinburgh", "country": "GB", "units": "c"}' },
          '0:1': { id: 'call_DNYTawLBoN8fj3KN6qU9N1Ou', name: 'get_stock_price', arguments: '{"ticker": "AAPL", "exchange": "NASDAQ"}' }
        },
        finish: { 0: 'tool_calls' },
        usage: { prompt_tokens: 149, completion_tokens: 60, total_tokens: 209, reasoning_tokens: 0 }
      }
    },
    {
      name: 'captured/openai-chat-n3-choices.sse',
      format: 'openai',
      body: read('openai-chat-n3-choices.sse'),
      expected: {
        reasoning: {},
        text: {
          0: '{"city":"San Francisco","temperature":65,"units":"f"}',
          1: '{"city":"San Francisco","temperature":61,"units":"f"}',
          2: '{"city":"San Francisco","temperature":59,"units":"f"}'
        },
        tools: {},
        finish: { 0: 'stop', 1: 'stop', 2: 'stop' },
        usage: { prompt_tokens: 79, completion_tokens: 42, total_tokens: 121, reasoning_tokens: 0 }
      }
    },
    {
      name: 'captured/anthropic-tool-use.sse',
      format: 'anthropic',
      body: read('anthropic-tool-use.sse'),
      expected: {
        reasoning: {},
        text: { 0: "I'll check the current weather in Paris for you." },
        tools: { '0:0': { id: 'toolu_01NRLabsLyVHZPKxbKvkfSMn', name: 'get_weather', arguments: '{"location": "Paris"}' } },
        finish: { 0: 'tool_calls' },
        // input 377 (+0 cache creation, +0 cache read), output 65 from message_delta.
        usage: { prompt_tokens: 377, completion_tokens: 65, total_tokens: 442 }
      }
    },
    {
      name: 'captured/azure-chat-prompt-filter.chunks.jsonl',
      format: 'openai',
      body: jsonLines('azure-chat-prompt-filter.chunks.jsonl', false, true),
      expected: {
        reasoning: {},
        text: { 0: 'Capital of Denmark.' },
        tools: {},
        finish: { 0: 'stop' },
        usage: { prompt_tokens: 15, completion_tokens: 78, total_tokens: 93, reasoning_tokens: 64 }
      }
    },
    {
      name: 'captured/openai-responses-error.chunks.jsonl',
      format: 'openai-responses',
      body: jsonLines('openai-responses-error.chunks.jsonl', true, false),
      error: { code: 'upstream_rate_limited', status: 429, retryable: false, message: /exceeded your current quota/ }
    }
  ]
}

/** Deterministic PRNG (mulberry32), so a failing split can be replayed. */
function prng (seed: number): () => number {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function splits (body: Buffer): Array<[string, Buffer[]]> {
  const ways: Array<[string, Buffer[]]> = [['whole', [body]]]
  const bytes: Buffer[] = []
  for (let i = 0; i < body.length; i++) bytes.push(body.subarray(i, i + 1))
  ways.push(['byte by byte', bytes])
  for (const seed of [1, 2, 3]) {
    const random = prng(seed)
    const pieces: Buffer[] = []
    for (let i = 0; i < body.length;) {
      const size = 1 + Math.floor(random() * 40)
      pieces.push(body.subarray(i, i + size))
      i += size
    }
    ways.push([`random splits (seed ${seed})`, pieces])
  }
  return ways
}

const shared = sharedCaptures()
if (shared.missingInCi !== undefined) t.fail(shared.missingInCi)
if (!shared.present) t.comment(`${shared.dir} is not there: replaying the project's own fixtures only`)
const captures = [...own, ...(shared.present ? captured(shared.dir) : [])]

for (const capture of captures) {
  t.test(capture.name, async t => {
    const { mock, client } = await harness(t)
    const upstream = client({ format: capture.format, maxRetries: 0 })
    const results: string[] = []
    for (const [way, pieces] of splits(capture.body)) {
      const outcome = await ask(upstream, { rawBase64: pieces.map(p => p.toString('base64')) })
      if (capture.error !== undefined) {
        t.type(outcome.error, UpstreamError, `${way}: fails`)
        const error = outcome.error as UpstreamError
        t.match(error, { code: capture.error.code, status: capture.error.status, retryable: capture.error.retryable, message: capture.error.message }, `${way}: error`)
        t.same(outcome.events, [], `${way}: no events before the error`)
      } else {
        t.equal(outcome.error, undefined, `${way}: no error`)
        const summary = summarize(outcome.events)
        t.equal(summary.usageEvents, 1, `${way}: one usage event`)
        t.equal(outcome.events.at(-1)?.type, 'usage', `${way}: usage comes last`)
        const { usageEvents, ...rest } = summary
        t.same(rest, capture.expected, `${way}: matches the stream`)
        const firstAnswer = outcome.events.findIndex(e => e.type === 'delta' || e.type === 'tool_call')
        const lastReasoning = outcome.events.findLastIndex(e => e.type === 'reasoning')
        t.ok(lastReasoning < firstAnswer, `${way}: reasoning comes before the answer`)
      }
      results.push(JSON.stringify(outcome.events))
    }
    t.equal(new Set(results).size, 1, 'identical events whatever the split')
    t.equal(mock.requests.length, splits(capture.body).length, 'one request per delivery')
    await assertNoOpenSockets(t, upstream, mock)
  })
}

t.test('a synthetic stream with a byte order mark, CRLF and multi-byte characters split at every byte', async t => {
  const { mock, client } = await harness(t)
  const upstream = client({ maxRetries: 0 })
  // A leading U+FEFF, then one inside the text: only the first is the stream's byte order mark.
  const text = ['\uFEFFGrüße ', '— 東京 ', '🎉🦄', ' [DONE] ', 'line\nbreak\r\n', '"[DONE]"']
  const body = Buffer.from('\uFEFF' + text.map(content => `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\r\n\r\n`).join('') +
    'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\n\r\ndata: [DONE]\r\n\r\n')
  const seen = new Set<string>()
  for (let cut = 1; cut < body.length; cut++) {
    const outcome = await ask(upstream, { rawBase64: [body.subarray(0, cut).toString('base64'), body.subarray(cut).toString('base64')] })
    seen.add(JSON.stringify(summarize(outcome.events)) + String(outcome.error))
  }
  t.same([...seen], [JSON.stringify({ reasoning: {}, text: { 0: text.join('') }, tools: {}, finish: { 0: 'stop' }, usageEvents: 0 }) + 'undefined'], 'every cut gives the exact text')
  await assertNoOpenSockets(t, upstream, mock)
})
