import type { ConversationStore } from '../../store.js'
import type { RedisContext } from './context.js'

/** The conversation map: one key per conversation (in the conversation's partition) naming its active generation. */
export class Conversations implements ConversationStore {
  readonly #ctx: RedisContext
  readonly #ttlMs: number

  /** @param ttlMs safety-net expiry of a conversation's entry. */
  constructor (ctx: RedisContext, ttlMs: number) {
    this.#ctx = ctx
    this.#ttlMs = ttlMs
  }

  async swapActive (conversationId: string, streamId: string): Promise<string | undefined> {
    const { cmd, keys } = this.#ctx
    return await cmd.set(keys.active(conversationId), streamId, 'PX', this.#ttlMs, 'GET') ?? undefined
  }

  async clearActive (conversationId: string, streamId: string): Promise<void> {
    const { cmd, keys } = this.#ctx
    await cmd.relayClearActive(keys.active(conversationId), streamId)
  }

  async getActive (conversationId: string): Promise<string | undefined> {
    const { cmd, keys } = this.#ctx
    return await cmd.get(keys.active(conversationId)) ?? undefined
  }
}
