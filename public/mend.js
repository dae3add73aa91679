// Markdown that is still being written, made to render now as it will render when complete.
//
// Half an answer is not valid markdown yet: `**bol` shows its asterisks until the closing pair
// arrives, `[docs](https://exa` shows as brackets and a URL, a table's header row is a paragraph
// of pipes until its `|---|` row comes, a fence's closing backticks show as code for a token.
// Rendered as is, the text would change shape when the markup completes: asterisks vanish,
// a paragraph turns into a table. mend() closes or hides such endings in the live tail only
// (never in finished blocks, never in what is copied or stored), so each frame already shows
// what the finished markup will look like, and completing it changes nothing on screen.
// Pure string work, no DOM: test/browser/mend.test.ts runs it in Node.

/** A last, unfinished line that may still become block markup: a list marker, a heading's
 * hashes, a rule or setext underline, a fence's first backticks, a quote or table pipe. */
const PENDING_MARKER = /^ {0,3}(?:[-*+_=]+|#{1,6}|\d{1,9}[.)]?|>|`{1,2}|~{1,2}|\|) *$/
const FENCE = /^ {0,3}(`{3,}|~{3,})/
/** An autolink (`<https://exa`) or HTML tag (`<img src=`) not closed yet, at the end (or its `<`). */
const UNFINISHED_TAG = /<(?:[A-Za-z][A-Za-z0-9+.-]*:[^\s<>]*|\/?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?)?$/
/** Text before a list item's content. */
const TASK_START = /(?:^|\n) {0,9}(?:[-*+]|\d{1,9}[.)]) +$/
const PIPE_ROW = /^ {0,3}\|/
const DELIMITER_PREFIX = /^ {0,3}\|?[ :|-]*$/

/**
 * @param {string} source  the unfinished tail of an answer (its finished blocks are not given)
 * @returns {string} markdown to render for this frame
 */
export function mend (source) {
  const lastBreak = source.lastIndexOf('\n')
  const lastLine = source.slice(lastBreak + 1)
  const fence = openFence(source)
  if (fence !== null) {
    // Inside code nothing is markup, but the fence's own lines are: the opening line's language
    // may be half-typed (`pyth`) and the closing fence may be half there.
    if (fence.start > lastBreak) return source.slice(0, fence.start) + fence.marker
    const closing = lastLine.trimStart()
    if (closing !== '' && fence.marker.startsWith(closing)) return source.slice(0, lastBreak + 1)
    return source
  }
  let text = source
  if (lastLine !== '' && PENDING_MARKER.test(lastLine)) text = source.slice(0, lastBreak + 1)
  text = mendTable(text)
  const blockStart = Math.max(0, text.lastIndexOf('\n\n') + 1)
  return text.slice(0, blockStart) + mendInline(text.slice(blockStart))
}

/**
 * The fenced code block still open at the end of `source`, if any.
 * @param {string} source
 * @returns {{ start: number, marker: string } | null}  where its opening line starts, its fence
 */
function openFence (source) {
  /** @type {{ start: number, marker: string } | null} */
  let open = null
  let start = 0
  while (start <= source.length) {
    const end = source.indexOf('\n', start)
    const line = source.slice(start, end === -1 ? source.length : end)
    const match = FENCE.exec(line)
    if (open === null) {
      // A backtick fence's info string may not contain a backtick (CommonMark 4.5).
      if (match && !(match[1]?.[0] === '`' && line.slice(match[0].length).includes('`'))) open = { start, marker: /** @type {string} */ (match[1]) }
    } else if (match && match[1]?.[0] === open.marker[0] && (match[1]?.length ?? 0) >= open.marker.length && line.slice(match[0].length).trim() === '') {
      open = null
    }
    if (end === -1) break
    start = end + 1
  }
  return open
}

/**
 * A table being written: its header row alone shows as a paragraph of pipes, so it is held back
 * until the delimiter row starts, which is then completed to the header's width.
 * @param {string} text
 */
function mendTable (text) {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  let first = lines.length
  while (first > 0 && PIPE_ROW.test(/** @type {string} */ (lines[first - 1]))) first--
  const rows = lines.length - first
  if (rows === 0) return text
  const header = /** @type {string} */ (lines[first])
  if (rows === 1) return lines.slice(0, first).join('\n') + (first > 0 ? '\n' : '')
  const delimiter = /** @type {string} */ (lines[first + 1])
  if (rows === 2 && !text.endsWith('\n') && DELIMITER_PREFIX.test(delimiter)) {
    // The delimiter row being written: given the header's width, keeping the alignment typed.
    const typed = cellsOf(delimiter)
    const cells = cellsOf(header).map((_, i) => {
      const cell = typed[i]?.trim() ?? ''
      return cell.includes('-') ? cell : `${cell}---`
    })
    return `${lines.slice(0, first + 1).join('\n')}\n| ${cells.join(' | ')} |`
  }
  return text
}

/**
 * A table row's cells, without the outer pipes.
 * @param {string} row
 */
const cellsOf = (row) => row.trim().replace(/^\||\|$/g, '').split('|')

/**
 * Closes what the last block left open: a code span, emphasis, a link whose text or URL is
 * still coming (shown as its text, which is what the link will show).
 * @param {string} block
 */
function mendInline (block) {
  // Code spans first: nothing inside one is markup. `plain` is `block` with each closed span
  // masked (same length), so positions found in it hold in `block`.
  let plain = ''
  let i = 0
  while (i < block.length) {
    const tick = block.indexOf('`', i)
    if (tick === -1) {
      plain += block.slice(i)
      break
    }
    let run = tick
    while (block[run] === '`') run++
    const ticks = block.slice(tick, run)
    const close = findRun(block, ticks, run)
    if (close === -1) {
      // A code span open to the end: close it; emphasis opened before it is still open. With
      // nothing in it yet, it is held back (an empty span would show its backticks).
      plain += block.slice(i, tick)
      const closers = emphasis(maskTags(plain), false).closers
      return run === block.length ? block.slice(0, tick) + closers : block + ticks + closers
    }
    plain += block.slice(i, tick) + ' '.repeat(close + ticks.length - tick)
    i = close + ticks.length
  }
  plain = maskTags(plain)
  let text = block
  // An autolink or tag still being written (`<https://exa`, `<img src=`) shows once it closes:
  // it shows without its brackets (an autolink), or it is a tag and shows as written.
  const tag = UNFINISHED_TAG.exec(plain)
  if (tag !== null) {
    text = text.slice(0, tag.index)
    plain = plain.slice(0, tag.index)
  }
  const link = pendingLink(plain)
  if (link !== null) {
    // An image will show as a link with its text (markdown.js loads no images); a link as its text.
    const label = link.image ? '' : block.slice(link.labelStart, link.labelEnd)
    text = block.slice(0, link.start) + label
    plain = plain.slice(0, link.start) + (link.image ? '' : plain.slice(link.labelStart, link.labelEnd))
  }
  const { keep, closers } = emphasis(plain, true)
  return text.slice(0, keep) + closers
}

/**
 * Masks HTML tags and autolinks (`<img src=x_y>`, `<https://a.b/c_d>`): what is inside them is
 * not emphasis. Same length, so positions hold.
 * @param {string} text
 */
const maskTags = (text) => text.replace(/<[A-Za-z/!?][^<>\n]*>/g, (tag) => ' '.repeat(tag.length))

/**
 * The position of a backtick run of exactly `ticks` at or after `from`, or -1.
 * @param {string} text
 * @param {string} ticks
 * @param {number} from
 */
function findRun (text, ticks, from) {
  let at = text.indexOf(ticks, from)
  while (at !== -1) {
    let end = at
    while (text[end] === '`') end++
    if (end - at === ticks.length) return at
    at = text.indexOf(ticks, end)
  }
  return -1
}

/**
 * A link or image at the very end whose text or destination is not complete yet: `[text`,
 * `[text]`, `[text](` or `[text](https://exa`.
 * @param {string} text
 * @returns {{ start: number, labelStart: number, labelEnd: number, image: boolean } | null}
 */
function pendingLink (text) {
  const open = text.lastIndexOf('[')
  if (open === -1) return null
  // `- [`, `- [x`, `- [x]` at the start of a list item: a task box, not a link.
  if (TASK_START.test(text.slice(0, open)) && /^[ xX]?\]?$/.test(text.slice(open + 1))) {
    return { start: open, labelStart: open, labelEnd: open, image: false }
  }
  const image = open > 0 && text[open - 1] === '!'
  const close = text.indexOf(']', open)
  if (close === -1) {
    if (text.includes('\n', open)) return null
    return { start: image ? open - 1 : open, labelStart: open + 1, labelEnd: text.length, image }
  }
  const after = text.slice(close + 1)
  if (!(after === '' || (after[0] === '(' && !after.includes(')')))) return null
  return { start: image ? open - 1 : open, labelStart: open + 1, labelEnd: close, image }
}

/**
 * Emphasis (`*`, `_`, single or double) and strikethrough (`~~`) still open at the end of `text`.
 * A run of markers at the very end that closes nothing yet is left out (`keep`): it is either an
 * opener with nothing after it or half a closer (`**bold*`), and shown it would blink.
 * @param {string} text
 * @param {boolean} atEnd  `text` is the end of the tail (else a code span follows it)
 * @returns {{ keep: number, closers: string }}
 */
function emphasis (text, atEnd) {
  const trailing = atEnd ? (/([*_~])\1*$/.exec(text)?.[0] ?? '') : ''
  const body = text.slice(0, text.length - trailing.length)
  /** @type {string[]} */
  const open = []
  let i = 0
  while (i < body.length) {
    const char = body[i]
    if (char !== '*' && char !== '_' && char !== '~') {
      i += char === '\\' ? 2 : 1 // an escaped marker is text
      continue
    }
    let end = i
    while (body[end] === char) end++
    const run = end - i
    const before = i === 0 ? ' ' : /** @type {string} */ (body[i - 1])
    const after = end === text.length ? ' ' : /** @type {string} */ (text[end])
    i = end
    if (char === '~' && run !== 2) continue
    // CommonMark's flanking rules, simplified: an opener is followed by text, a closer preceded
    // by it, and `_` inside a word (snake_case) is neither.
    const canOpen = !/\s/.test(after) && !(char === '_' && /[\p{L}\p{N}]/u.test(before))
    const canClose = !/\s/.test(before) && !(char === '_' && /[\p{L}\p{N}]/u.test(after))
    const left = canClose ? closeRun(open, char, run) : run
    if (left > 0 && canOpen) {
      // `***x` opens strong and emphasis; kept apart so that they can close apart.
      if (left === 3 && char !== '~') open.push(char + char, char)
      else open.push(char.repeat(left))
    }
  }
  let keep = body.length
  if (trailing !== '' && !/\s/.test(body.at(-1) ?? ' ') && closeRun(open, /** @type {string} */ (trailing[0]), trailing.length) === 0) {
    keep = text.length
  }
  return { keep, closers: open.reverse().join('') }
}

/**
 * Closes open markers of `char` with a run of `run` of them, innermost first (`***` can close
 * `*` then `**`).
 * @param {string[]} open  the stack of open markers; closed ones are popped
 * @param {string} char
 * @param {number} run
 * @returns {number} how much of the run is left
 */
function closeRun (open, char, run) {
  let left = run
  const saved = open.length
  while (left > 0 && open.length > 0) {
    const top = /** @type {string} */ (open.at(-1))
    if (top[0] !== char || top.length > left) break
    open.pop()
    left -= top.length
  }
  // A run that closes only part of what it should (`**` against `*` and `**`) still closed it.
  return saved === open.length ? run : left
}
