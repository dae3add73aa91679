// Options are validated once, at construction, with messages that name the option.
import t from 'tap'
import { UpstreamClient } from '../../lib/upstream/index.js'
import type { UpstreamClientOptions } from '../../lib/upstream/index.js'

const bad: Array<[Partial<UpstreamClientOptions> & Record<string, unknown>, RegExp]> = [
  [{ url: '' }, /option url \(UPSTREAM_URL\) must be a non-empty string/],
  [{ url: 'not a url' }, /option url \(UPSTREAM_URL\) must be an absolute URL/],
  [{ url: 'ftp://x/v1' }, /must use http: or https:/],
  [{ url: 'http://user:pw@x/v1' }, /must not carry credentials/],
  [{ url: 'https://api.openai.com/v1/chat/completions' }, /^upstream option url \(UPSTREAM_URL\) must be the API's base URL, without the endpoint: it ends in \/chat\/completions, which the relay appends itself; use https:\/\/api\.openai\.com\/v1$/],
  [{ url: 'https://api.openai.com/v1/responses/' }, /it ends in \/responses, .*; use https:\/\/api\.openai\.com\/v1$/],
  [{ url: 'https://api.anthropic.com/v1/messages', format: 'anthropic' }, /it ends in \/messages, .*; use https:\/\/api\.anthropic\.com\/v1$/],
  [{ url: 'http://x/v1', format: 'gemini' as never }, /option format \(UPSTREAM_FORMAT\) must be one of openai, openai-responses, anthropic/],
  [{ url: 'http://x/v1', connectTimeoutMs: -1 }, /connectTimeoutMs \(UPSTREAM_CONNECT_TIMEOUT_MS\) must be a non-negative integer/],
  [{ url: 'http://x/v1', headersTimeoutMs: -1 }, /headersTimeoutMs \(UPSTREAM_HEADERS_TIMEOUT_MS\) must be a non-negative integer/],
  [{ url: 'http://x/v1', firstTokenTimeoutMs: 1.5 }, /firstTokenTimeoutMs/],
  [{ url: 'http://x/v1', idleTimeoutMs: '5' as never }, /idleTimeoutMs/],
  [{ url: 'http://x/v1', maxRetries: -2 }, /maxRetries \(UPSTREAM_MAX_RETRIES\)/],
  [{ url: 'http://x/v1', connections: 0 }, /connections must be an integer >= 1/],
  [{ url: 'http://x/v1', model: '' }, /model \(UPSTREAM_MODEL\) must be a non-empty string/],
  [{ url: 'http://x/v1', apiKey: 42 as never }, /apiKey \(UPSTREAM_API_KEY\) must be a string/]
]

for (const [options, message] of bad) {
  t.throws(() => new UpstreamClient(options as UpstreamClientOptions), { name: 'TypeError', message }, JSON.stringify(options))
}

t.test('valid options construct and close', async t => {
  const client = new UpstreamClient({ url: 'https://api.example.com/v1/', apiKey: 'k', connectTimeoutMs: 0, maxRetries: 0 })
  t.same(client.stats, { connected: 0, free: 0, running: 0, pending: 0 })
  await client.close()
  await client.close()
  t.pass('close is idempotent')
})
