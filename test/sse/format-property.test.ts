import t from 'tap'
import fc from 'fast-check'
import { createParser } from 'eventsource-parser'
import type { EventSourceMessage } from 'eventsource-parser'
import { formatEvent } from '../../lib/sse/index.js'
import type { SseEvent } from '../../lib/sse/index.js'

// Text biased toward what breaks framings: line terminators in every form, U+2028/2029 (line
// breaks for JS, not for SSE), NUL, leading spaces and colons, surrogate pairs, any code point.
const awkward = fc.constantFrom('\r', '\n', '\r\n', '\n\r', '\u2028', '\u2029', '\u0000', ' ', ':', 'data: ', '[DONE]', '😀', '\uFEFF')
const text = fc.array(fc.oneof(awkward, fc.string({ unit: 'binary', maxLength: 4 })), { maxLength: 12 }).map((parts) => parts.join(''))
const singleLine = text.map((s) => s.replace(/[\r\n\0]/g, ''))

const event: fc.Arbitrary<SseEvent> = fc.record({
  data: fc.oneof(
    text,
    fc.record({ type: fc.constant('delta'), content: text }),
    fc.jsonValue()
  ),
  event: fc.option(singleLine, { nil: undefined }),
  id: fc.option(fc.oneof(singleLine, fc.nat()), { nil: undefined }),
  retry: fc.option(fc.nat(), { nil: undefined })
}, { requiredKeys: ['data'] })

/** What a spec parser must give back for `ev`. */
function expected (ev: SseEvent): EventSourceMessage {
  // SSE joins data lines with LF: a raw CR or CRLF in string data comes back as LF.
  const data = typeof ev.data === 'string' ? ev.data.replace(/\r\n?/g, '\n') : JSON.stringify(ev.data)
  return {
    data,
    // An empty event type means the default, `message`: the parser reports it as undefined.
    event: ev.event === '' ? undefined : ev.event,
    id: ev.id === undefined ? undefined : String(ev.id)
  }
}

/** Splits `s` at the given fractions, so frames reach the parser cut at arbitrary points. */
function split (s: string, cuts: number[]): string[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * s.length)))].sort((a, b) => a - b)
  const out: string[] = []
  let last = 0
  for (const p of points) {
    out.push(s.slice(last, p))
    last = p
  }
  out.push(s.slice(last))
  return out
}

t.test('formatEvent then eventsource-parser gives back the same events, one for one', async (t) => {
  fc.assert(fc.property(
    fc.array(event, { minLength: 1, maxLength: 8 }),
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
    (events, cuts) => {
      const wire = events.map(formatEvent).join('')
      const got: EventSourceMessage[] = []
      const retries: number[] = []
      const errors: unknown[] = []
      const parser = createParser({
        onEvent: (e) => { got.push(e) },
        onRetry: (r) => { retries.push(r) },
        onError: (e) => { errors.push(e) }
      })
      for (const chunk of split(wire, cuts)) parser.feed(chunk)
      t.same(errors, [], 'no parse errors')
      t.same(got, events.map(expected))
      t.same(retries, events.flatMap((e) => e.retry === undefined ? [] : [e.retry]))
      for (const [i, ev] of events.entries()) {
        // JSON data is exact, CRs included: this is what the relay's deltas rely on.
        if (typeof ev.data !== 'string') t.same(JSON.parse(got[i]?.data ?? 'null'), ev.data)
      }
    }
  ), { numRuns: 500 })
})

t.test('a field with CR, LF or NUL is always rejected', async (t) => {
  fc.assert(fc.property(
    singleLine, fc.constantFrom('\r', '\n', '\u0000'), singleLine, fc.constantFrom('event', 'id'),
    (before, bad, after, field) => {
      const value = before + bad + after
      t.throws(() => formatEvent({ data: 'x', [field]: value }), { name: 'TypeError', message: new RegExp(`"${field}"`) })
    }
  ), { numRuns: 200 })
})
