import type { Dispatcher } from 'undici'
import { buildRequest } from './adapters/index.js'
import { httpError, transportError } from './errors.js'
import type { ResolvedOptions } from './options.js'
import { UpstreamError } from './types.js'

/** One model of the upstream's list, in OpenAI's shape (`GET /models`). */
export interface UpstreamModel {
  id: string
  created?: number
  owned_by?: string
}

/** Largest model list read (OpenAI's is ~100 KB). */
const LIST_LIMIT = 4 * 1024 * 1024

/**
 * The upstream's own model list (`GET ${url}/models`, the path of OpenAI's and Anthropic's APIs),
 * with the format's credentials. Anthropic's entries (`{ id, created_at }`) come back in OpenAI's
 * shape. Fails with an {@link UpstreamError} like a chat request would.
 */
export async function listModels (dispatcher: Dispatcher, options: ResolvedOptions, basePath: string, signal?: AbortSignal): Promise<UpstreamModel[]> {
  // The credential headers a chat request of the format carries (the body is not sent).
  const { headers } = buildRequest(options.format, {}, options.model, options.apiKey)
  let response: Dispatcher.ResponseData
  try {
    response = await dispatcher.request({
      method: 'GET',
      path: `${basePath}/models${options.url.search}`,
      headers: { accept: 'application/json', ...headers },
      signal,
      headersTimeout: options.connectTimeoutMs + options.firstTokenTimeoutMs,
      bodyTimeout: options.idleTimeoutMs
    })
  } catch (err) {
    throw transportError(err, false)
  }
  const text = await readLimited(response.body)
  if (response.statusCode < 200 || response.statusCode > 299) throw httpError(response.statusCode, response.headers, text, options.apiKey)
  let list: unknown
  try {
    list = (JSON.parse(text) as { data?: unknown }).data
  } catch {
    list = undefined
  }
  if (!Array.isArray(list)) throw new UpstreamError('upstream_bad_response', 'the upstream\'s model list is not JSON with a data array', { status: 502 })
  return list.flatMap((item: unknown): UpstreamModel[] => {
    const m = item as { id?: unknown, created?: unknown, created_at?: unknown, owned_by?: unknown }
    if (typeof m?.id !== 'string') return []
    const created = typeof m.created === 'number' ? m.created : typeof m.created_at === 'string' ? Math.floor(Date.parse(m.created_at) / 1000) : undefined
    return [{ id: m.id, ...(Number.isFinite(created) ? { created } : {}), ...(typeof m.owned_by === 'string' ? { owned_by: m.owned_by } : {}) }]
  })
}

async function readLimited (body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > LIST_LIMIT) {
      body.destroy()
      throw new UpstreamError('upstream_bad_response', 'the upstream\'s model list is too large', { status: 502 })
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
