/**
 * The chat page: `public/` as static files, and the few browser modules it imports from
 * `node_modules` (marked, DOMPurify, highlight.js) under `/vendor/`, served as they ship.
 *
 * Why serve the packages' own ESM files instead of bundling: the page is plain ES modules, so
 * the browser can import these files directly; `npm install && npm start` stays the whole setup
 * (no bundler, nothing generated into `public/`), the page needs no network at run time, and the
 * packages are runtime dependencies, so a project that installs this one gets them too.
 *
 * Every response of the page carries a Content-Security-Policy: scripts only from this origin and
 * never inline, no plugins, no frames, images only from here. The page never puts model output
 * into the DOM unsanitized (see `public/markdown.js`); the policy is the second wall.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'

/** Options of {@link chatPage}. */
export interface ChatPageOptions {
  /** The page's folder. @default the package's `public/` */
  root?: string
}

/**
 * The page's policy. `style-src 'self'` still lets scripts set element styles through the CSSOM
 * (the composer's height); `img-src data:` is for the inline favicon.
 */
export const CHAT_PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'"
].join('; ')

/** The files behind `/vendor/NAME`: package entry points, resolved the way Node imports them. */
const VENDOR_ENTRIES: Record<string, string> = {
  'marked.js': 'marked',
  'purify.js': 'dompurify',
  'highlight/core.js': '@highlightjs/cdn-assets/es/core.min.js'
}

/** highlight.js grammars: `/vendor/highlight/NAME.js`, any that the package ships. */
const HIGHLIGHT_LANGUAGE = /^[a-z0-9-]{1,32}$/

interface VendorFile { body: Buffer, etag: string }

const chatPage: FastifyPluginAsync<ChatPageOptions> = async (app, options) => {
  const root = options.root ?? publicDir()
  const files = new Map<string, Promise<VendorFile | null>>()

  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', CHAT_PAGE_CSP)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('referrer-policy', 'no-referrer')
  })

  await app.register(fastifyStatic, { root, index: ['index.html'], wildcard: false })

  /** Read once, kept in memory: a few hundred kilobytes that change only with `npm install`. */
  const load = (name: string, path: string): Promise<VendorFile | null> => {
    let file = files.get(name)
    if (file === undefined) {
      file = readFile(path).then(
        (body) => ({ body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` }),
        () => null
      )
      files.set(name, file)
    }
    return file
  }

  const send = async (reply: FastifyReply, ifNoneMatch: string | undefined, file: VendorFile | null) => {
    if (file === null) return await reply.code(404).send({ error: { code: 'not_found', message: 'no such page module' } })
    reply.header('etag', file.etag).header('cache-control', 'no-cache').type('text/javascript; charset=utf-8')
    if (ifNoneMatch === file.etag) return await reply.code(304).send()
    return await reply.send(file.body)
  }

  for (const [name, specifier] of Object.entries(VENDOR_ENTRIES)) {
    const path = fileURLToPath(import.meta.resolve(specifier))
    app.get(`/vendor/${name}`, async (request, reply) => await send(reply, request.headers['if-none-match'], await load(name, path)))
  }

  const languages = join(dirname(fileURLToPath(import.meta.resolve('@highlightjs/cdn-assets/es/core.min.js'))), 'languages')
  app.get<{ Params: { file: string } }>('/vendor/highlight/:file', async (request, reply) => {
    const language = request.params.file.endsWith('.js') ? request.params.file.slice(0, -3) : ''
    // The name is checked before it touches the file system: no path can leave the folder.
    const file = HIGHLIGHT_LANGUAGE.test(language) ? await load(`highlight/${language}`, join(languages, `${language}.min.js`)) : null
    return await send(reply, request.headers['if-none-match'], file)
  })
}

/** `public/` beside the package root, whether running from the sources or from `dist/`. */
function publicDir (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  return join(dir, 'public')
}

export default chatPage
