import type { ChatRequestBody } from '../upstream/types.js'
import { RelayError } from './errors.js'

/**
 * What the operator allows a client to ask of the upstream through the built-in routes
 * (`UPSTREAM_MODELS`, `MAX_OUTPUT_TOKENS`, `SYSTEM_PROMPT`, `MAX_CHOICES`): the upstream key is
 * the operator's, so the browser never chooses what the operator did not allow.
 */
export interface RequestPolicy {
  /** Models a request may name; another is a `400` naming these. Unset: any model. */
  models?: readonly string[] | undefined
  /**
   * Most output tokens a request may ask for (`max_tokens` / `max_completion_tokens`, which each
   * upstream format maps to its own field); more is a `400`, none is filled in with this. Unset: no cap.
   */
  maxOutputTokens?: number | undefined
  /** A system message put first in every request. */
  systemPrompt?: string | undefined
  /** Most choices (`n`) per request. @default 1 */
  maxChoices?: number
}

/** The output-token fields of a Chat Completions body: the current one, and the one older servers know. */
const MAX_TOKEN_FIELDS = ['max_completion_tokens', 'max_tokens'] as const

/**
 * Checks a client's chat body against the policy and returns the body to send upstream (a new
 * object when something is added; the client's is not changed).
 * @throws {RelayError} `400`, naming the field and what is allowed, before anything is sent upstream.
 */
export function applyPolicy (body: ChatRequestBody, policy: RequestPolicy): ChatRequestBody {
  const { models, maxOutputTokens, systemPrompt } = policy
  const maxChoices = policy.maxChoices ?? 1
  if (models !== undefined && models.length > 0 && body.model !== undefined && !models.includes(body.model as string)) {
    throw new RelayError('model_not_allowed', 400, `model ${JSON.stringify(body.model)} is not allowed; allowed: ${models.join(', ')}`)
  }
  const n = body.n
  if (typeof n === 'number' && n > maxChoices) {
    throw new RelayError('invalid_request', 400, maxChoices === 1 ? 'n must be 1 (this relay allows one choice per request)' : `n must be at most ${maxChoices}`)
  }
  let out = body
  if (maxOutputTokens !== undefined) {
    let asked = false
    for (const field of MAX_TOKEN_FIELDS) {
      const value = body[field]
      if (value === undefined || value === null) continue
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
        throw new RelayError('invalid_request', 400, `${field} must be a positive whole number`)
      }
      if (value > maxOutputTokens) throw new RelayError('invalid_request', 400, `${field} must be at most ${maxOutputTokens}`)
      asked = true
    }
    if (!asked) out = { ...out, max_completion_tokens: maxOutputTokens }
  }
  if (systemPrompt !== undefined && systemPrompt !== '') {
    const messages = out.messages as unknown[]
    out = { ...out, messages: [{ role: 'system', content: systemPrompt }, ...messages] }
  }
  return out
}
