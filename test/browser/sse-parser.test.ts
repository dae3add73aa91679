/**
 * The page's SSE parser (public/sse.js), run in Node: it is plain JS with no DOM use. Streams are
 * split at every awkward place: mid-line, between the \r and \n of a CRLF, one character at a
 * time; the events must come out the same.
 */
import t from 'tap'
// @ts-expect-error: public/ is browser JS outside the TypeScript project (no .d.ts on purpose)
import { SseParser } from '../../public/sse.js'

interface Parsed { events: Array<{ event: string, data: string, id: string | undefined }>, ids: string[], retries: number[] }

function parse (chunks: string[]): Parsed {
  const out: Parsed = { events: [], ids: [], retries: [] }
  const parser = new SseParser({
    onEvent: (e: Parsed['events'][number]) => out.events.push(e),
    onId: (id: string) => out.ids.push(id),
    onRetry: (ms: number) => out.retries.push(ms)
  })
  for (const chunk of chunks) parser.push(chunk)
  return out
}

/** Every way of cutting `text` in two, and one character at a time. */
function splits (text: string): string[][] {
  const ways = [[text], [...text]]
  for (let i = 1; i < text.length; i++) ways.push([text.slice(0, i), text.slice(i)])
  return ways
}

const relayStream = 'retry: 3000\n\nid: 1\ndata: {"type":"delta","content":"Hel"}\n\n: ping\n\n' +
  'id: 2\ndata: {"type":"delta","content":"lo\\n"}\n\nid: 3\ndata: [DONE]\n\nevent: close\ndata: {"reason":"done"}\n\n'

t.test('the relay\'s stream, however it is cut', async (t) => {
  const whole = parse([relayStream])
  t.same(whole.events, [
    { event: 'message', data: '{"type":"delta","content":"Hel"}', id: '1' },
    { event: 'message', data: '{"type":"delta","content":"lo\\n"}', id: '2' },
    { event: 'message', data: '[DONE]', id: '3' },
    { event: 'close', data: '{"reason":"done"}', id: undefined }
  ])
  t.same(whole.ids, ['1', '2', '3'])
  t.same(whole.retries, [3000])
  for (const chunks of splits(relayStream)) t.same(parse(chunks), whole)
})

t.test('CRLF and lone CR line ends, also split between \\r and \\n', async (t) => {
  const lf = 'id: 7\ndata: a\ndata: b\n\n'
  const expected = parse([lf])
  t.same(expected.events, [{ event: 'message', data: 'a\nb', id: '7' }], 'data lines join with \\n')
  for (const text of [lf.replaceAll('\n', '\r\n'), lf.replaceAll('\n', '\r')]) {
    for (const chunks of splits(text)) t.same(parse(chunks), expected, JSON.stringify(chunks))
  }
})

t.test('the spec\'s small print', async (t) => {
  t.same(parse(['\uFEFFdata: x\n\n']).events, [{ event: 'message', data: 'x', id: undefined }], 'a leading BOM is dropped')
  t.same(parse(['data:x\n\n']).events[0]?.data, 'x', 'the space after the colon is optional')
  t.same(parse(['data:  x\n\n']).events[0]?.data, ' x', 'only one space is removed')
  t.same(parse(['data\n\n']).events[0]?.data, '', 'a field with no colon has an empty value')
  t.same(parse(['id: 5\n\n']), { events: [], ids: ['5'], retries: [] }, 'an id with no data moves the resume point but is no event')
  t.same(parse(['id: 1\0\ndata: x\n\n']).ids, [], 'an id with NUL is ignored')
  t.same(parse(['retry: soon\n\n']).retries, [], 'a retry that is not digits is ignored')
  t.same(parse(['data: x\n']).events, [], 'no event before its blank line (a cut stream)')
  t.same(parse(['event: error\ndata: {"type":"error"}\n\ndata: y\n\n']).events.map((e) => e.event), ['error', 'message'], 'the event type does not stick')
})
