import type { FastifyInstance } from 'fastify'
import { RelayError } from '../lib/relay/errors.js'
import type { UpstreamModel } from '../lib/upstream/models.js'

/** An upstream that can list its models (the `UpstreamClient` can). */
export interface ModelLister {
  listModels?: (options?: { signal?: AbortSignal }) => Promise<UpstreamModel[]>
}

/** Options of {@link modelsRoute}. */
export interface ModelsRouteOptions {
  /** The operator's allowed models (`UPSTREAM_MODELS`): the list served when set. */
  models: readonly string[] | undefined
  /** The model served when there is no list and the upstream cannot list its own. */
  defaultModel: string
  upstream: ModelLister | undefined
}

/** `created` of the models the relay names itself (OpenAI's field is required; the relay knows no date). */
const CREATED = 0

/**
 * `GET /v1/models` in OpenAI's list shape, which model pickers and the SDKs' `models.list()`
 * read: the allowed models when the operator set them (nothing else can be asked for), else the
 * upstream's own list, else the default model.
 */
export function modelsRoute (app: FastifyInstance, options: ModelsRouteOptions): void {
  const own = (ids: readonly string[]): UpstreamModel[] => ids.map((id) => ({ id, created: CREATED, owned_by: 'fastify-llm-relay' }))
  app.get('/models', async (request) => {
    let models: UpstreamModel[]
    if (options.models !== undefined) {
      models = own(options.models)
    } else if (options.upstream?.listModels !== undefined) {
      try {
        models = await options.upstream.listModels()
      } catch (err) {
        request.log.warn({ err }, 'listing the upstream\'s models failed')
        throw RelayError.from(err)
      }
    } else {
      models = own([options.defaultModel])
    }
    return { object: 'list', data: models.map((m) => ({ id: m.id, object: 'model', created: m.created ?? CREATED, owned_by: m.owned_by ?? 'upstream' })) }
  })
}
