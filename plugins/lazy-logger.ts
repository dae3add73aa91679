import type { FastifyBaseLogger } from 'fastify'

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
type LogFn = (...args: unknown[]) => void
type Bindings = Record<string, unknown>

/**
 * A child logger made only when a line is logged at an enabled level: the same lines as
 * `parent.child(bindings)` (it is that child, once made), but a request that logs nothing at the
 * active level (every request at `LOG_LEVEL=warn`) pays no pino child (bindings serialized, an
 * object with its own methods per level).
 */
export class LazyChildLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  #child: FastifyBaseLogger | undefined

  constructor (parent: FastifyBaseLogger, bindings: Bindings) {
    this.#parent = parent
    this.#bindings = bindings
  }

  #made (): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings)
    return this.#child
  }

  /** Whether a line at `level` would be written (pino's `isLevelEnabled`; any other logger: yes). */
  isLevelEnabled (level: string): boolean {
    const log = (this.#child ?? this.#parent) as FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }
    return typeof log.isLevelEnabled === 'function' ? log.isLevelEnabled(level) : true
  }

  #log (level: Level, args: unknown[]): void {
    if (this.#child === undefined && !this.isLevelEnabled(level)) return
    ;(this.#made()[level] as LogFn)(...args)
  }

  get level (): string {
    return (this.#child ?? this.#parent).level
  }

  set level (level: string) {
    this.#made().level = level
  }

  fatal (...args: unknown[]): void { this.#log('fatal', args) }
  error (...args: unknown[]): void { this.#log('error', args) }
  warn (...args: unknown[]): void { this.#log('warn', args) }
  info (...args: unknown[]): void { this.#log('info', args) }
  debug (...args: unknown[]): void { this.#log('debug', args) }
  trace (...args: unknown[]): void { this.#log('trace', args) }
  silent (): void {}

  child (bindings: Bindings, options?: Parameters<FastifyBaseLogger['child']>[1]): FastifyBaseLogger {
    return this.#made().child(bindings, options)
  }
}
