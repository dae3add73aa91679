import t from 'tap'
import type { Test } from 'tap'
import { ConfigError, readConfig } from '../../lib/config.js'
import type { RelayConfig } from '../../lib/config.js'
import { MAX_TIMER_MS, resolveSseOptions } from '../../lib/sse/options.js'
import { runRelayProcessToExit } from '../fixtures/relay-process.js'

/** Node runs a timer above this after 1 ms instead (TimeoutOverflowWarning). */
const NODE_TIMER_LIMIT = 2_147_483_647

/** Every millisecond setting, its key in RelayConfig, and whether 0 is allowed (0 = off/at once). */
const MS_SETTINGS: Array<[string, keyof RelayConfig, boolean]> = [
  ['UPSTREAM_CONNECT_TIMEOUT_MS', 'upstreamConnectTimeoutMs', false],
  ['UPSTREAM_HEADERS_TIMEOUT_MS', 'upstreamHeadersTimeoutMs', true],
  ['UPSTREAM_FIRST_TOKEN_TIMEOUT_MS', 'upstreamFirstTokenTimeoutMs', false],
  ['UPSTREAM_IDLE_TIMEOUT_MS', 'upstreamIdleTimeoutMs', false],
  ['STREAM_MAX_DURATION_MS', 'streamMaxDurationMs', true],
  ['HEARTBEAT_MS', 'heartbeatMs', true],
  ['DETACH_GRACE_MS', 'detachGraceMs', true],
  ['RETAIN_MS', 'retainMs', false],
  ['SHUTDOWN_GRACE_MS', 'shutdownGraceMs', true],
  ['REQUEST_TIMEOUT_MS', 'requestTimeoutMs', true]
]

/** The ConfigError that `readConfig(env)` throws, or a failed assertion when it throws none. */
const configError = (t: Test, env: Record<string, string>): ConfigError | undefined => {
  try {
    readConfig(env)
  } catch (err) {
    t.ok(err instanceof ConfigError, `${JSON.stringify(env)}: a ConfigError (got ${String(err)})`)
    return err as ConfigError
  }
  t.fail(`${JSON.stringify(env)} was accepted`)
  return undefined
}

t.test('defaults are the ones README.md states', async (t) => {
  const config = readConfig({})
  t.match(config, {
    port: 3000,
    host: '127.0.0.1',
    upstreamUrl: undefined,
    upstreamApiKey: undefined,
    upstreamModel: 'gpt-4o-mini',
    upstreamFormat: 'openai',
    upstreamConnectTimeoutMs: 10_000,
    upstreamHeadersTimeoutMs: 30_000,
    upstreamFirstTokenTimeoutMs: 60_000,
    upstreamIdleTimeoutMs: 30_000,
    upstreamMaxRetries: 2,
    streamMaxDurationMs: 600_000,
    heartbeatMs: 15_000,
    detachGraceMs: 15_000,
    retainMs: 300_000,
    redis: undefined,
    relayApiKeys: [],
    relayPublishKeys: [],
    maxStreamsPerClient: 8,
    maxStreams: 10_000,
    maxBodyBytes: 1_048_576
  }, 'the contract\'s defaults')
  t.equal(config.shutdownGraceMs, 10_000, 'SHUTDOWN_GRACE_MS (README)')
  t.equal(config.requestTimeoutMs, 60_000, 'REQUEST_TIMEOUT_MS (README)')
  t.equal(config.trustProxy, undefined, 'TRUST_PROXY (README)')
  t.equal(config.logLevel, 'info', 'LOG_LEVEL (README)')
  t.equal(config.maxBufferedBytes, 1_048_576, 'MAX_BUFFERED_BYTES (README)')
  t.equal(config.sseFastPath, true, 'SSE_FAST_PATH (README)')
  t.equal(MAX_TIMER_MS, NODE_TIMER_LIMIT, 'the shared limit is Node\'s timer limit')
})

t.test('every ms setting accepts 2147483647 and refuses 2147483648, naming itself and the limit', async (t) => {
  for (const [name, key] of MS_SETTINGS) {
    t.equal(readConfig({ [name]: String(NODE_TIMER_LIMIT) })[key], NODE_TIMER_LIMIT, `${name}=${NODE_TIMER_LIMIT} accepted`)
    for (const value of [String(NODE_TIMER_LIMIT + 1), '3000000000', '99999999999999999999999']) {
      const err = configError(t, { [name]: value })
      t.equal(err?.message, `${name} must be at most 2147483647 ms (about 24.8 days), got ${value}`, `${name}=${value}`)
    }
  }
})

t.test('0 stays allowed where it was, and refused where the minimum is 1', async (t) => {
  for (const [name, key, zeroAllowed] of MS_SETTINGS) {
    if (zeroAllowed) {
      t.equal(readConfig({ [name]: '0' })[key], 0, `${name}=0 accepted`)
    } else {
      t.equal(configError(t, { [name]: '0' })?.message, `${name} must be at least 1, got 0`, `${name}=0 refused`)
    }
  }
})

t.test('a value that is not a whole number is refused, naming the variable', async (t) => {
  for (const [name] of MS_SETTINGS) {
    for (const value of ['abc', '1.5', '-1', '1e3', '15s']) {
      const err = configError(t, { [name]: value })
      t.equal(err?.message, `${name} must be a whole number, got ${JSON.stringify(value)}`, `${name}=${value}`)
    }
  }
  t.equal(configError(t, { PORT: 'x' })?.message, 'PORT must be a whole number, got "x"', 'PORT=x')
  t.match(configError(t, { PORT: '65536' })?.message, /^PORT must be at most 65535, got 65536$/, 'PORT=65536')
  t.equal(readConfig({ PORT: '65535' }).port, 65535, 'PORT=65535 accepted')
})

t.test('MAX_BUFFERED_BYTES is a positive byte count; SSE_FAST_PATH is true or false', async (t) => {
  t.equal(readConfig({ MAX_BUFFERED_BYTES: '65536' }).maxBufferedBytes, 65536)
  t.match(configError(t, { MAX_BUFFERED_BYTES: '0' })?.message, /^MAX_BUFFERED_BYTES must be at least 1, got 0$/)
  t.equal(configError(t, { MAX_BUFFERED_BYTES: '1MiB' })?.message, 'MAX_BUFFERED_BYTES must be a whole number, got "1MiB"')
  t.equal(readConfig({ SSE_FAST_PATH: 'false' }).sseFastPath, false)
  t.equal(readConfig({ SSE_FAST_PATH: 'TRUE' }).sseFastPath, true)
  t.equal(configError(t, { SSE_FAST_PATH: 'off' })?.message, 'SSE_FAST_PATH must be true or false, got "off"')
})

t.test('an UPSTREAM_URL that ends in an endpoint path is refused, naming the fix', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['https://api.openai.com/v1/chat/completions', '/chat/completions', 'https://api.openai.com/v1'],
    ['https://api.openai.com/v1/chat/completions/', '/chat/completions', 'https://api.openai.com/v1'],
    ['https://api.openai.com/v1/responses', '/responses', 'https://api.openai.com/v1'],
    ['https://api.anthropic.com/v1/messages/', '/messages', 'https://api.anthropic.com/v1'],
    ['https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21', '/chat/completions', 'https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21']
  ]
  for (const [url, endpoint, base] of cases) {
    const err = configError(t, { UPSTREAM_URL: url })
    t.equal(err?.message, `UPSTREAM_URL must be the API's base URL, without the endpoint: it ends in ${endpoint}, which the relay appends itself; use ${base}`, url)
  }
  for (const url of ['https://api.openai.com/v1', 'https://api.openai.com/v1/', 'http://127.0.0.1:8000/v1/completions-proxy']) {
    t.equal(readConfig({ UPSTREAM_URL: url }).upstreamUrl, url.replace(/\/$/, ''), `${url}: a base URL is accepted`)
  }
})

t.test('SSE options (library users) refuse ms values above the same limit with a TypeError naming the option', async (t) => {
  for (const option of ['retry', 'heartbeatMs', 'timeoutMs'] as const) {
    t.equal(resolveSseOptions({ [option]: NODE_TIMER_LIMIT })[option], NODE_TIMER_LIMIT, `${option}=${NODE_TIMER_LIMIT} accepted`)
    t.throws(() => resolveSseOptions({ [option]: NODE_TIMER_LIMIT + 1 }, 'x: '), {
      name: 'TypeError',
      message: `x: ${option} must be a non-negative integer no larger than 2147483647 (got 2147483648)`
    }, `${option}=${NODE_TIMER_LIMIT + 1} refused`)
  }
})

t.test('the server entry with HEARTBEAT_MS=3000000000 exits non-zero with one line naming it, no stack trace', async (t) => {
  const result = await runRelayProcessToExit({ HEARTBEAT_MS: '3000000000' }, 20_000)
  t.notOk(result.timedOut, `the process exited by itself (a bad HEARTBEAT_MS was refused):\n${result.stdout}${result.stderr}`)
  t.not(result.code, 0, 'a non-zero exit code')
  t.not(result.code, null, `exited by itself, not by a signal (${String(result.signal)})`)
  const lines = result.stderr.trim().split('\n')
  t.equal(lines.length, 1, `one line on stderr:\n${result.stderr}`)
  t.match(lines[0], /HEARTBEAT_MS/, 'it names HEARTBEAT_MS')
  t.match(lines[0], /at most 2147483647 ms/, 'it names the limit')
  t.notMatch(result.stderr, /^\s+at /m, 'no stack trace')
})

t.test('LOG_LEVEL is one of pino\'s levels (any case), or the boot stops naming them', async (t) => {
  t.equal(readConfig({ LOG_LEVEL: 'debug' }).logLevel, 'debug')
  t.equal(readConfig({ LOG_LEVEL: 'WARN' }).logLevel, 'warn', 'upper case is read as the level')
  t.equal(readConfig({ LOG_LEVEL: 'silent' }).logLevel, 'silent')
  t.equal(configError(t, { LOG_LEVEL: 'verbose' })?.message,
    'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"')
})

t.test('Redis: a single Redis by URL, a Cluster by its seed nodes, or Sentinels and the master\'s name; a password given once', async (t) => {
  t.same(readConfig({ REDIS_URL: 'rediss://:pw@redis.example:6380/2' }).redis, { url: 'rediss://:pw@redis.example:6380/2', password: undefined }, 'rediss:// unchanged')
  t.same(readConfig({ REDIS_URL: 'redis://r:6379', REDIS_PASSWORD: 'pw' }).redis, { url: 'redis://r:6379', password: 'pw' })
  t.same(readConfig({ REDIS_CLUSTER_NODES: ' n1:7000, n2:7001,[::1]:7002 ', REDIS_PASSWORD: 'pw' }).redis,
    { cluster: [{ host: 'n1', port: 7000 }, { host: 'n2', port: 7001 }, { host: '::1', port: 7002 }], password: 'pw' })
  t.same(readConfig({ REDIS_SENTINELS: 's1:26379,s2:26379', REDIS_SENTINEL_NAME: 'mymaster' }).redis,
    { sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }], name: 'mymaster', password: undefined })
  t.same(readConfig({ REDIS_URL: '', REDIS_CLUSTER_NODES: 'n1:7000' }).redis, { cluster: [{ host: 'n1', port: 7000 }], password: undefined }, 'an empty variable is unset')
  t.equal(readConfig({}).redis, undefined, 'none: the memory store')
})

t.test('Redis: a bad or conflicting combination stops the boot, naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ REDIS_URL: 'http://r:6379' }, /^REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ REDIS_URL: 'redis://r', REDIS_CLUSTER_NODES: 'n1:7000' }, /^REDIS_URL and REDIS_CLUSTER_NODES are both set/],
    [{ REDIS_CLUSTER_NODES: 'n1:7000', REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'm' }, /^REDIS_CLUSTER_NODES and REDIS_SENTINELS are both set/],
    [{ REDIS_CLUSTER_NODES: 'n1' }, /^REDIS_CLUSTER_NODES must be comma-separated host:port, got "n1"/],
    [{ REDIS_CLUSTER_NODES: 'n1:7000,n2:99999' }, /^REDIS_CLUSTER_NODES must be comma-separated host:port, got "n2:99999"/],
    [{ REDIS_CLUSTER_NODES: 'n1:7000,:7001' }, /got ":7001"/],
    [{ REDIS_SENTINELS: 's1:26379' }, /^REDIS_SENTINELS needs REDIS_SENTINEL_NAME/],
    [{ REDIS_SENTINEL_NAME: 'm' }, /^REDIS_SENTINEL_NAME is set without REDIS_SENTINELS/],
    [{ REDIS_SENTINELS: 's1', REDIS_SENTINEL_NAME: 'm' }, /^REDIS_SENTINELS must be comma-separated host:port/],
    [{ REDIS_URL: 'redis://:a@r', REDIS_PASSWORD: 'b' }, /^REDIS_PASSWORD is set and REDIS_URL carries a password too/],
    [{ REDIS_PASSWORD: 'pw' }, /^REDIS_PASSWORD is set but no Redis is/]
  ]
  for (const [env, message] of cases) t.match(configError(t, env)?.message, message, JSON.stringify(env))
})
