// Model output → safe DOM. Model text is untrusted: a prompt injection can make a model write
// `<img src=x onerror=…>`, `[click](javascript:…)` or an image whose URL carries the user's data
// away. Three walls, each enough on its own for what it covers:
// 1. The markdown renderer (marked) is told to show raw HTML as text, to link only absolute
//    http(s) and mailto URLs (anything else shows as its text), and to load no images (an image
//    becomes a link to it: loading one is a request the model chose, a known way to leak data).
// 2. DOMPurify then keeps only the elements and attributes this renderer produces, with the same
//    URL rule, whatever came through.
// 3. The page's Content-Security-Policy (plugins/chat-page.ts) runs no inline script and loads
//    no image from elsewhere.
// Links open in a new tab with rel="noopener noreferrer": the linked page gets no handle on this
// one and no Referer. Code is highlighted (highlight.js), and code blocks get a copy button.

import { Lexer, Marked } from './vendor/marked.js'
import DOMPurify from './vendor/purify.js'
import { highlight } from './highlight.js'

/** @param {string} text */
const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/**
 * The URL a link may point to, or null: absolute http, https or mailto only. Parsed by the
 * browser's URL parser, so tricks like `java\tscript:` or `JaVaScRiPt:` are seen as what they are.
 * @param {string} href
 */
export function safeUrl (href) {
  try {
    const url = new URL(href)
    return url.protocol === 'https:' || url.protocol === 'http:' || url.protocol === 'mailto:' ? url.href : null
  } catch {
    return null // relative or unparsable
  }
}

/** A fence's language as a class name, or '' (`c++`, `objective-c` and `c#` are names too). */
const LANGUAGE = /^[\w#+.-]{1,32}$/

/** The depth (1-6) of the first heading of the answer being rendered (see `heading` below). */
let headingBase = 1

const marked = new Marked({
  gfm: true,
  renderer: {
    /** @param {{ text: string, block?: boolean }} token */
    html ({ text, block }) {
      // Raw HTML is shown as the text it is; a block of it as a paragraph of that text.
      return block ? `<p>${escapeHtml(text.trimEnd())}</p>\n` : escapeHtml(text)
    },
    /** @param {{ tokens: any[], depth: number }} token */
    heading ({ tokens, depth }) {
      // The answer sits under the page's h1 and the answer's own (hidden) h2: its first heading
      // is an h3 whatever its depth (models often start at ##), the others keep their distance
      // from it, so that the outline a screen reader lists has no gap.
      const level = Math.max(3, Math.min(6, depth - headingBase + 3))
      return `<h${level} class="md-h${depth}">${this.parser.parseInline(tokens)}</h${level}>\n`
    },
    /** @param {{ href: string, title?: string | null, tokens: any[] }} token */
    link ({ href, title, tokens }) {
      const inner = this.parser.parseInline(tokens)
      const url = safeUrl(href)
      if (url === null) return inner
      return `<a href="${escapeHtml(url)}"${title ? ` title="${escapeHtml(title)}"` : ''}>${inner}</a>`
    },
    /** @param {{ href: string, text: string }} token */
    image ({ href, text }) {
      const url = safeUrl(href)
      const label = text.trim() === '' ? 'image' : text
      if (url === null) return escapeHtml(label)
      return `<a class="image-link" href="${escapeHtml(url)}">${escapeHtml(`Image: ${label}`)}</a>`
    },
    /** @param {{ text: string, lang?: string }} token */
    code ({ text, lang }) {
      const name = (lang ?? '').trim().split(/\s/, 1)[0]?.toLowerCase() ?? ''
      const language = LANGUAGE.test(name) ? name : ''
      const html = highlight(text, language) ?? escapeHtml(text)
      return `<pre><code${language ? ` class="language-${escapeHtml(language)}"` : ''}>${html}</code></pre>\n`
    }
  }
})

/** What the renderer above produces, and nothing else. */
const PURIFY = {
  ALLOWED_TAGS: ['a', 'blockquote', 'br', 'code', 'del', 'em', 'h3', 'h4', 'h5', 'h6', 'hr', 'input', 'li', 'ol', 'p', 'pre', 'span', 'strong', 'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul'],
  ALLOWED_ATTR: ['align', 'checked', 'class', 'disabled', 'href', 'start', 'title', 'type'],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
  // DOMPurify tests every attribute value that is not known to be URI-safe with this (`align`,
  // `type` too): DOMPurify's own rule, with only the schemes links may have. A value with no
  // scheme passes here; decorate() then unwraps any link that is not absolute.
  ALLOWED_URI_REGEXP: /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i,
  RETURN_DOM_FRAGMENT: true
}

/**
 * Splits markdown into block tokens (paragraphs, lists, code blocks…), each with its `raw` text.
 * @param {string} source  with `\n` line ends only
 * @param {Record<string, { href: string, title?: string }>} links  reference definitions seen
 *   before this text (`[x]: https://…`): earlier blocks' definitions serve later ones; new ones
 *   are added to it
 * @returns {any[]} marked's block tokens
 */
export function lex (source, links) {
  const lexer = new Lexer(marked.defaults)
  Object.assign(lexer.tokens.links, links)
  const tokens = lexer.lex(source)
  Object.assign(links, tokens.links)
  return tokens
}

/**
 * Renders block tokens to DOM nodes, sanitized.
 * @param {any[]} tokens  from {@link lex}
 * @param {object} [options]
 * @param {number} [options.headingBase]  the depth of the answer's first heading: it becomes h3
 * @returns {DocumentFragment}
 */
export function render (tokens, { headingBase: base = 1 } = {}) {
  headingBase = base
  const html = marked.parser(tokens)
  const fragment = /** @type {DocumentFragment} */ (/** @type {unknown} */ (DOMPurify.sanitize(html, PURIFY)))
  decorate(fragment)
  return fragment
}

/**
 * What HTML cannot say: links open safely, task-list boxes are read-only, code blocks get a
 * header with their language and a copy button (app.js handles its clicks), wide tables scroll.
 * @param {DocumentFragment} fragment
 */
function decorate (fragment) {
  for (const link of fragment.querySelectorAll('a')) {
    if (safeUrl(link.getAttribute('href') ?? '') === null) {
      link.replaceWith(...link.childNodes)
      continue
    }
    link.target = '_blank'
    link.rel = 'noopener noreferrer'
  }
  for (const input of fragment.querySelectorAll('input')) {
    if (input.type !== 'checkbox') {
      input.remove()
      continue
    }
    input.disabled = true
    input.setAttribute('aria-label', input.checked ? 'Done' : 'To do')
    input.parentElement?.classList.add('task')
  }
  for (const pre of fragment.querySelectorAll('pre')) {
    const block = document.createElement('div')
    block.className = 'code-block'
    const head = document.createElement('div')
    head.className = 'code-head'
    const language = document.createElement('span')
    language.className = 'code-lang'
    language.textContent = /language-(\S+)/.exec(pre.firstElementChild?.className ?? '')?.[1] ?? 'code'
    const copy = document.createElement('button')
    copy.type = 'button'
    copy.className = 'copy-code'
    copy.dataset.action = 'copy-code'
    copy.textContent = 'Copy'
    copy.setAttribute('aria-label', `Copy ${language.textContent === 'code' ? '' : `${language.textContent} `}code`)
    head.append(language, copy)
    // A code block scrolls sideways; focusable, so that the keyboard can scroll it too.
    pre.tabIndex = 0
    pre.replaceWith(block)
    block.append(head, pre)
  }
  for (const table of fragment.querySelectorAll('table')) {
    const wrap = document.createElement('div')
    wrap.className = 'table-wrap'
    wrap.tabIndex = 0
    table.replaceWith(wrap)
    wrap.append(table)
  }
}

/**
 * What a screen reader should hear for a rendered block: its text, or for a code block and a
 * table a short summary (reading code aloud as it streams helps nobody).
 * @param {Node} node
 */
export function spokenText (node) {
  if (!(node instanceof HTMLElement)) return (node.textContent ?? '').trim()
  if (node.classList.contains('code-block')) {
    const language = node.querySelector('.code-lang')?.textContent
    return language && language !== 'code' ? `Code block, ${language}.` : 'Code block.'
  }
  if (node.classList.contains('table-wrap')) {
    return `Table, ${node.querySelectorAll('tbody tr').length} rows.`
  }
  return (node.textContent ?? '').replace(/\s+/g, ' ').trim()
}
