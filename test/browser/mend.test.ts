/**
 * mend() (public/mend.js), run in Node: it is plain string work. Each case is half an answer as
 * it may stand at the end of a frame, and what the page renders for it: markup completed or held
 * back so that it renders now as it will once complete. And the property that matters most: on
 * the way through a whole markdown answer, every prefix's mended form renders without markup
 * characters showing that the finished answer does not show.
 */
import t from 'tap'
// @ts-expect-error: public/ is browser JS outside the TypeScript project (no .d.ts on purpose)
import { mend } from '../../public/mend.js'

const cases: Array<[string, string, string]> = [
  // emphasis and strikethrough
  ['Hello **wor', 'Hello **wor**', 'open strong is closed'],
  ['a *b', 'a *b*', 'open emphasis is closed'],
  ['a **b *c', 'a **b *c***', 'nested: innermost closed first'],
  ['***both', '***both***', 'strong and emphasis at once'],
  ['**bold*', '**bold**', 'half a closer is completed, not shown'],
  ['Text **', 'Text ', 'an opener with nothing after it is held back'],
  ['**bold** and *it', '**bold** and *it*', 'closed pairs are left alone'],
  ['~~str', '~~str~~', 'strikethrough'],
  ['~~str~', '~~str~~', 'half a strikethrough closer'],
  ['a * b', 'a * b', 'an asterisk between spaces is text'],
  ['snake_case_name', 'snake_case_name', 'underscores inside a word are text'],
  ['a\\*b', 'a\\*b', 'an escaped asterisk is text'],
  ['x **y** z **w', 'x **y** z **w**', 'only the open one is closed'],
  // code spans
  ['use `code', 'use `code`', 'an open code span is closed'],
  ['**b `code', '**b `code`**', 'emphasis opened before a code span is closed after it'],
  ['`a*b` and *c', '`a*b` and *c*', 'markers inside a code span do not count'],
  ['``a ` b', '``a ` b``', 'a code span of two backticks'],
  ['- with `', '- with ', 'an empty open code span is held back'],
  // HTML and autolinks: shown as text by markdown.js, and their insides are not markup
  ['and <img src=x onerror="window.__pwned=1">', 'and <img src=x onerror="window.__pwned=1">', 'underscores inside a tag are not emphasis'],
  ['see <https://a.b/c_d> and **x', 'see <https://a.b/c_d> and **x**', 'an autolink is not emphasis'],
  ['see <https://exa', 'see ', 'an autolink being written shows once complete'],
  ['and <img src=x on', 'and ', 'so does a tag'],
  ['a < b', 'a < b', 'a lone angle bracket is text'],
  ['see <', 'see ', 'an angle bracket at the end may start an autolink'],
  // links and images
  ['see [docs](https://exa', 'see docs', 'a link whose URL is coming shows as its text'],
  ['see [do', 'see do', 'a link whose text is coming shows as its text'],
  ['see [docs]', 'see docs', 'a link waiting for its URL'],
  ['see [docs](', 'see docs', 'a link whose URL has not started'],
  ['[use `x` now](http', 'use `x` now', 'link text with code in it'],
  ['x ![alt](http://x', 'x ', 'an image being written shows nothing yet'],
  ['[a](https://a.b) and [c](https://c', '[a](https://a.b) and c', 'a finished link before stays'],
  ['- a\n- [', '- a\n- ', 'a task box being written is not a link'],
  ['- [x', '- ', 'a task box being checked'],
  ['- [x]', '- ', 'a task box waiting for its text'],
  ['- [Docs](https://d', '- Docs', 'a link at the start of a list item is a link'],
  // block markers on the last, unfinished line
  ['- item\n- ', '- item\n', 'a list marker with no text yet'],
  ['- item\n-', '- item\n', 'a dash: list, rule or heading underline, not known yet'],
  ['1', '', 'a digit that may become an ordered list'],
  ['para\n\n12.', 'para\n\n', 'an ordered list marker'],
  ['done.\n\n#', 'done.\n\n', 'heading hashes with no text yet'],
  ['Title\n=', 'Title\n', 'a setext underline being written'],
  ['> ', '', 'a quote marker'],
  ['text\n``', 'text\n', 'maybe the start of a fence'],
  // fenced code
  ['```py', '```', 'a fence whose language is still being written'],
  ['```py\nprint(1)\n``', '```py\nprint(1)\n', 'half a closing fence is not shown as code'],
  ['```py\nprint(1)\n```\n', '```py\nprint(1)\n```\n', 'a closed fence'],
  ['```\na **b\n', '```\na **b\n', 'inside code nothing is closed'],
  ['~~~\ncode\n~~', '~~~\ncode\n', 'a tilde fence'],
  ['````\n```\nx', '````\n```\nx', 'a shorter fence inside a longer one does not close it'],
  // tables
  ['| a | b |\n|--', '| a | b |\n| -- | --- |', 'the delimiter row is completed to the header width'],
  ['| a | b | c |\n|---|:-:', '| a | b | c |\n| --- | :-: | --- |', 'keeping the alignment typed so far'],
  ['| a | b |\n|---|:', '| a | b |\n| --- | :--- |', 'a cell with no dash yet'],
  ['| a | b |', '', 'a header row alone is held back'],
  ['| a | b |\n', '', 'a complete header row still waits for its delimiter row'],
  ['intro\n| a | b |', 'intro\n', 'a header row after a paragraph line'],
  ['| a | b |\n|---|---|\n| 1 | 2', '| a | b |\n|---|---|\n| 1 | 2', 'a row being written shows as it is'],
  // nothing to do
  ['Plain text.', 'Plain text.', 'plain text'],
  ['', '', 'nothing']
]

t.test('mend', async (t) => {
  for (const [input, expected, why] of cases) t.equal(mend(input), expected, `${why}: ${JSON.stringify(input)}`)
})

t.test('every prefix of an answer mends without leaking markup', async (t) => {
  const answer = [
    '## Setup', '', 'Install **two** packages and run `npm start`:', '',
    '```sh', 'npm install marked', '```', '',
    '| option | default |', '|---|---|', '| `retry` | 3 |', '',
    '1. First, read [the docs](https://example.com/docs).', '2. Then *try* it.', '', '> Done.', ''
  ].join('\n')
  const leaks: string[] = []
  for (let end = 1; end <= answer.length; end++) {
    const prefix = answer.slice(0, end)
    const mended: string = mend(prefix)
    // Outside code, the only markup left open at the end would show as characters.
    const inCode = (prefix.match(/^```/gm) ?? []).length % 2 === 1
    if (inCode) continue
    const lastBlock = mended.slice(mended.lastIndexOf('\n\n') + 1)
    const stars = (lastBlock.replace(/`[^`]*`/g, '').match(/\*\*/g) ?? []).length
    const ticks = (lastBlock.match(/`/g) ?? []).length
    if (stars % 2 !== 0 || ticks % 2 !== 0 || /\]\([^)]*$/.test(lastBlock) || /(^|\n)\|[^\n]*$/.test(lastBlock.split('\n').length === 1 ? lastBlock : '')) {
      leaks.push(JSON.stringify(prefix.slice(-30)))
    }
  }
  t.same(leaks, [], 'no prefix leaves an open marker, a half link or a lone header row')
})
