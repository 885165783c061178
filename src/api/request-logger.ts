import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

interface LevelAware {
  isLevelEnabled(level: string): boolean;
}

const levelAware = (logger: FastifyBaseLogger): logger is FastifyBaseLogger & LevelAware =>
  typeof (logger as Partial<LevelAware>).isLevelEnabled === 'function';

/**
 * Fastify gives every request a child of the app's logger, bound to the request's id.
 * Making a pino child runs the redaction over its bindings, and ours censors secrets at
 * any depth, so its wildcard paths visit every binding: 4.4% of a --cpu-prof of the API
 * process under publish load, a third of it idle, so about 7% of its work. At the levels
 * a busy service runs with, most requests never write a line. So this factory hands out
 * a stand-in that makes the real child only when a line is written at an enabled level;
 * the line, its request id and its redaction are the same as the eager child's.
 *
 * A route with its own level or serializers, or a logger that cannot say which levels
 * are enabled, gets the child at once, as Fastify's default factory gives it.
 */
export function lazyChildLogger(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  if (!levelAware(logger) || options.level !== undefined || options.serializers !== undefined)
    return logger.child(bindings, options);
  return new LazyChild(logger, bindings, options);
}

/** The stand-in: its methods live on the prototype, so one costs a single small object. */
class LazyChild implements FastifyBaseLogger {
  // private fields: a request logged whole shows no logger internals
  #made: FastifyBaseLogger | undefined;
  readonly #parent: FastifyBaseLogger & LevelAware;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions;

  constructor(
    parent: FastifyBaseLogger & LevelAware,
    bindings: Bindings,
    options: ChildLoggerOptions,
  ) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  #real(): FastifyBaseLogger {
    return (this.#made ??= this.#parent.child(this.#bindings, this.#options));
  }

  #write(level: Level, args: unknown[]): void {
    if (this.#made || this.#parent.isLevelEnabled(level))
      (this.#real()[level] as (...a: unknown[]) => void)(...args);
  }

  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.#write('error', args);
  }
  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }
  info(...args: unknown[]): void {
    this.#write('info', args);
  }
  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }

  get level(): string {
    return this.#made ? this.#made.level : this.#parent.level;
  }
  set level(level: string) {
    this.#real().level = level;
  }
}
