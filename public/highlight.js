// Syntax highlighting for code blocks: highlight.js's core and the grammars of the languages
// models write most, served from node_modules by plugins/chat-page.ts. A fence naming another
// language (or none) shows as plain code: guessing the language costs a pass per grammar.

import hljs from './vendor/highlight/core.js'
import bash from './vendor/highlight/bash.js'
import c from './vendor/highlight/c.js'
import cpp from './vendor/highlight/cpp.js'
import csharp from './vendor/highlight/csharp.js'
import css from './vendor/highlight/css.js'
import diff from './vendor/highlight/diff.js'
import go from './vendor/highlight/go.js'
import java from './vendor/highlight/java.js'
import javascript from './vendor/highlight/javascript.js'
import json from './vendor/highlight/json.js'
import markdown from './vendor/highlight/markdown.js'
import php from './vendor/highlight/php.js'
import python from './vendor/highlight/python.js'
import ruby from './vendor/highlight/ruby.js'
import rust from './vendor/highlight/rust.js'
import shell from './vendor/highlight/shell.js'
import sql from './vendor/highlight/sql.js'
import typescript from './vendor/highlight/typescript.js'
import xml from './vendor/highlight/xml.js'
import yaml from './vendor/highlight/yaml.js'

const grammars = { bash, c, cpp, csharp, css, diff, go, java, javascript, json, markdown, php, python, ruby, rust, shell, sql, typescript, xml, yaml }
for (const [name, grammar] of Object.entries(grammars)) hljs.registerLanguage(name, grammar)

/**
 * @param {string} code
 * @param {string} language  a fence's language: a name or an alias (`js`, `py`, `sh`, `html`…)
 * @returns {string | null} HTML: the code escaped, in `<span class="hljs-…">`s; null when the
 *   language is not one of the above
 */
export function highlight (code, language) {
  if (language === '' || hljs.getLanguage(language) === undefined) return null
  return hljs.highlight(code, { language, ignoreIllegals: true }).value
}
