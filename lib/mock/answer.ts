/** The last user message's text, whatever shape the request used (Chat, Responses, Messages). */
export function lastUserText (body: Record<string, unknown>): string {
  const list = Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? body.input : []
  for (let i = list.length - 1; i >= 0; i--) {
    const message = list[i] as { role?: unknown, content?: unknown } | null
    if (message?.role !== 'user') continue
    if (typeof message.content === 'string') return message.content
    if (Array.isArray(message.content)) {
      return message.content.map((part: { text?: unknown }) => typeof part?.text === 'string' ? part.text : '').join(' ')
    }
  }
  return typeof body.input === 'string' ? body.input : ''
}

/** The demo answer: it says what the page is showing, so a visitor learns what to try. */
export function defaultAnswer (body: Record<string, unknown>): string {
  const said = lastUserText(body).replace(/\s+/g, ' ').trim()
  const quote = said.length > 80 ? `${said.slice(0, 77)}…` : said
  const opening = quote === ''
    ? 'Hello! I am the mock model built into this relay.'
    : `You asked: “${quote}” I am the mock model built into this relay, so I cannot really answer that, but I can show you how a streamed answer feels.`
  return `${opening} Every word you see arrives as its own server-sent event, passed token by token from the mock upstream through the relay to this page. ` +
    'Try reloading the page halfway through: the stream picks up exactly where it left off, without repeating a word. ' +
    'Or press Stop, and the upstream request is cancelled at once, which is visible in the mock\'s log. ' +
    'Point UPSTREAM_URL at a real provider when you want real answers.'
}

/** Word-sized tokens that keep their leading spaces, so joining them gives the text back exactly. */
export function tokenize (text: string): string[] {
  return text.match(/\s*\S+|\s+/g) ?? []
}

/** A rough prompt size for usage: words in the request's messages. */
export function promptTokens (body: Record<string, unknown>): number {
  const list = Array.isArray(body.messages) ? body.messages : Array.isArray(body.input) ? body.input : []
  let words = 0
  for (const m of list) {
    const content = (m as { content?: unknown } | null)?.content
    if (typeof content === 'string') words += tokenize(content).length + 4
  }
  return Math.max(words, 1)
}
