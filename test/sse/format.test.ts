import t from 'tap'
import { createParser } from 'eventsource-parser'
import type { EventSourceMessage } from 'eventsource-parser'
import { DONE_DATA, PING_FRAME, formatClose, formatComment, formatError, formatEvent, formatRetry } from '../../lib/sse/index.js'

/** Parses a whole SSE text with the reference parser. */
function parse (text: string): { events: EventSourceMessage[], comments: string[], retries: number[] } {
  const events: EventSourceMessage[] = []
  const comments: string[] = []
  const retries: number[] = []
  const parser = createParser({
    onEvent: (ev) => { events.push(ev) },
    onComment: (c) => { comments.push(c) },
    onRetry: (r) => { retries.push(r) }
  })
  parser.feed(text)
  return { events, comments, retries }
}

t.test('field order and a single data line for JSON', async (t) => {
  t.equal(formatEvent({ event: 'x', id: 1, retry: 0, data: 'line' }), 'event: x\nid: 1\nretry: 0\ndata: line\n\n')
  t.equal(formatEvent({ data: { type: 'delta', content: 'a\r\nb\n' } }), 'data: {"type":"delta","content":"a\\r\\nb\\n"}\n\n')
  t.equal(formatEvent({ data: 42 }), 'data: 42\n\n')
  t.equal(formatEvent({ data: null }), 'data: null\n\n')
})

t.test('id 0, empty data and retry 0 are written', async (t) => {
  const text = formatEvent({ id: 0, data: '', retry: 0 })
  t.equal(text, 'id: 0\nretry: 0\ndata: \n\n')
  const { events, retries } = parse(text)
  t.same(events, [{ id: '0', event: undefined, data: '' }])
  t.same(retries, [0])
  t.equal(formatEvent({ id: '', data: 'x' }), 'id: \ndata: x\n\n', 'an empty id is sent: it resets the last event id')
})

t.test('multi-line data: one data line per line, trailing terminator kept', async (t) => {
  t.equal(formatEvent({ data: 'a\nb' }), 'data: a\ndata: b\n\n')
  t.equal(formatEvent({ data: 'a\r\nb\rc' }), 'data: a\ndata: b\ndata: c\n\n', 'CRLF is one terminator, CR another')
  t.equal(formatEvent({ data: 'a\n' }), 'data: a\ndata: \n\n', 'a trailing LF gives a final empty data line')
  t.equal(formatEvent({ data: '\n\n' }), 'data: \ndata: \ndata: \n\n')
  t.equal(formatEvent({ data: '\r\n' }), 'data: \ndata: \n\n')
  t.equal(formatEvent({ data: ' lead' }), 'data:  lead\n\n', 'a leading space survives the one space the parser strips')
  for (const data of ['a\nb', 'a\n', '\n', '\n\nx\n\n', ' x\n y ', '']) {
    t.same(parse(formatEvent({ data })).events.map((e) => e.data), [data], JSON.stringify(data))
  }
  t.same(parse(formatEvent({ data: 'a\r\nb\rc\r' })).events.map((e) => e.data), ['a\nb\nc\n'],
    'CR and CRLF come back as LF: SSE cannot carry a raw CR')
})

t.test('unicode, U+2028 and NUL pass as is', async (t) => {
  const data = 'x\u2028y\u2029z\u0000\u0085é😀'
  t.equal(formatEvent({ data }), `data: ${data}\n\n`)
  t.same(parse(formatEvent({ data, event: 'é😀', id: 'ü' })).events, [{ id: 'ü', event: 'é😀', data }])
})

t.test('CR, LF or NUL in event or id: TypeError naming the field', async (t) => {
  for (const bad of ['a\nb', 'a\rb', 'a\r\n', '\u0000', 'x\u0000']) {
    t.throws(() => formatEvent({ event: bad, data: 'x' }), { name: 'TypeError', message: /"event"/ }, `event ${JSON.stringify(bad)}`)
    t.throws(() => formatEvent({ id: bad, data: 'x' }), { name: 'TypeError', message: /"id"/ }, `id ${JSON.stringify(bad)}`)
  }
  t.throws(() => formatEvent({ id: Number.NaN, data: 'x' }), { name: 'TypeError', message: /"id"/ })
  t.throws(() => formatEvent({ retry: -1, data: 'x' }), { name: 'TypeError', message: /"retry"/ })
  t.throws(() => formatEvent({ retry: 1.5, data: 'x' }), { name: 'TypeError', message: /"retry"/ })
  t.throws(() => formatEvent({ data: undefined }), { name: 'TypeError', message: /data/ })
  t.throws(() => formatEvent({ data: () => 1 }), { name: 'TypeError', message: /data/ })
  t.throws(() => formatEvent({ data: 1n }), TypeError, 'BigInt is not JSON')
})

t.test('comments, retry, close, error, done', async (t) => {
  t.equal(PING_FRAME, ': ping\n\n')
  t.equal(formatComment('hi'), ': hi\n\n')
  t.equal(formatComment('a\nb\r\nc'), ': a\n: b\n: c\n\n')
  t.same(parse(formatComment('a\nb') + formatComment('')).events, [], 'comments are not events')
  t.same(parse(formatComment('a\nb')).comments, ['a', 'b'])
  t.equal(formatRetry(3000), 'retry: 3000\n\n')
  t.equal(formatRetry(0), 'retry: 0\n\n')
  t.throws(() => formatRetry(-5), TypeError)

  t.equal(formatClose('done'), 'event: close\ndata: {"reason":"done"}\n\n')
  t.equal(formatClose('error', { reason: 'nope', streamId: 's1' }), 'event: close\ndata: {"reason":"error","streamId":"s1"}\n\n',
    'reason comes first and extra cannot override it')
  const close = parse(formatClose('shutdown')).events
  t.same(close, [{ id: undefined, event: 'close', data: '{"reason":"shutdown"}' }], 'close is a real event: it has a data line')

  t.equal(formatError({ code: 'upstream_timeout', message: 'slow' }),
    'event: error\ndata: {"type":"error","code":"upstream_timeout","message":"slow"}\n\n')
  t.equal(formatError(new Error('boom')), 'event: error\ndata: {"type":"error","code":"internal_error","message":"boom"}\n\n')
  t.equal(formatError({ message: 'multi\nline' }), 'event: error\ndata: {"type":"error","code":"internal_error","message":"multi\\nline"}\n\n')

  t.equal(DONE_DATA, '[DONE]')
  t.same(parse(formatEvent({ data: DONE_DATA, id: 6 })).events, [{ id: '6', event: undefined, data: '[DONE]' }])
})
