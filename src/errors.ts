/**
 * Every error hermes throws or emits is a {@link HermesError} with a stable `code`.
 * Thrown errors mark a mistake at the point where it was made (a bad option, an argument that
 * cannot be hashed); emitted errors (`cache.on('error', …)`) report cache-layer failures that
 * were absorbed so the caller still got its result.
 *
 * @module
 */

/** The stable codes of hermes errors, one per class. */
export type HermesErrorCode =
  | 'ERR_HERMES_OPTION'
  | 'ERR_HERMES_NAME_CONFLICT'
  | 'ERR_HERMES_ARGUMENT'
  | 'ERR_HERMES_BACKEND'
  | 'ERR_HERMES_CORRUPT_ENTRY'
  | 'ERR_HERMES_SERIALIZE'
  | 'ERR_HERMES_TIMEOUT';

/** Base class of every hermes error. */
export class HermesError extends Error {
  /** A stable, machine-readable code; one per subclass. */
  readonly code: HermesErrorCode;

  /**
   * @param code - the error's stable code
   * @param message - what happened and what to change
   * @param options - standard `ErrorOptions`; `cause` keeps the underlying error
   */
  constructor(code: HermesErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * An option has a value hermes cannot use: a negative `ttl`, a tag that is not a non-empty
 * string, an anonymous function wrapped without a `name`. Thrown where the option was given.
 */
export class OptionError extends HermesError {
  /** The option at fault, as it is spelled in the options object (`ttl`, `tags`, `name`...). */
  readonly option: string;

  /**
   * @param option - the option at fault
   * @param message - what is wrong and what to change
   */
  constructor(option: string, message: string) {
    super('ERR_HERMES_OPTION', message);
    this.option = option;
  }
}

/**
 * Two different functions were wrapped under one name in one `Hermes`: their entries would
 * share keys and serve each other's results. Give one of them another `name`.
 */
export class NameConflictError extends HermesError {
  /** The name both functions claim. */
  readonly functionName: string;

  /** @param functionName - the name both functions claim */
  constructor(functionName: string) {
    super(
      'ERR_HERMES_NAME_CONFLICT',
      `Another function is already cached under the name '${functionName}' in this Hermes; ` +
        `pass a distinct { name } option to wrap() or cached().`,
    );
    this.functionName = functionName;
  }
}

/**
 * An argument of a cached call cannot be part of a cache key: a function, a symbol, a cyclic
 * structure, a WeakMap... Thrown (as a rejected promise) before the function is called; pass
 * a `key` option to build the key yourself.
 */
export class ArgumentError extends HermesError {
  /** Where in the arguments the offending value sits, as a path such as `args[1].user.tags[0]`. */
  readonly path: string;

  /**
   * @param path - where the value sits
   * @param message - what is wrong
   */
  constructor(path: string, message: string) {
    super('ERR_HERMES_ARGUMENT', `${message} at ${path}; pass a { key } option to build the key yourself.`);
    this.path = path;
  }
}

/** The operations of the Backend contract, named in {@link BackendError}s. */
export type BackendOperation =
  | 'read'
  | 'write'
  | 'release'
  | 'wait'
  | 'invalidate'
  | 'cleanTags'
  | 'clear'
  | 'dump'
  | 'close';

/**
 * A backend call failed (server down, timeout, refused command). Emitted as an `error` event
 * while the caller falls back to the function; thrown only when `failOpen` is `false`.
 */
export class BackendError extends HermesError {
  /** The Backend contract operation that failed. */
  readonly operation: BackendOperation;
  /** The entry, tag or lock key involved, when there is one. */
  readonly key: string | undefined;

  /**
   * @param operation - the failed operation
   * @param key - the key involved, if any
   * @param cause - the backend's own error
   */
  constructor(operation: BackendOperation, key: string | undefined, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('ERR_HERMES_BACKEND', `Cache backend ${operation}${key ? ` of '${key}'` : ''} failed: ${detail}`, { cause });
    this.operation = operation;
    this.key = key;
  }
}

/**
 * Stored bytes under an entry key could not be decoded (truncated, foreign, written by an
 * incompatible format version or serialiser). The read counts as a miss; the entry is
 * overwritten by the next write.
 */
export class CorruptEntryError extends HermesError {
  /** The entry key whose bytes failed to decode. */
  readonly key: string;

  /**
   * @param key - the entry key
   * @param reason - why decoding failed
   * @param cause - the decoder's error, if any
   */
  constructor(key: string, reason: string, cause?: unknown) {
    super('ERR_HERMES_CORRUPT_ENTRY', `Cache entry '${key}' could not be decoded (${reason}); treated as a miss.`, {
      cause,
    });
    this.key = key;
  }
}

/**
 * A function's result could not be serialised (it holds a function, a symbol, a class the
 * serialiser does not know). The caller still gets its result; nothing is cached.
 */
export class SerializationError extends HermesError {
  /** The entry key that was not written. */
  readonly key: string;

  /**
   * @param key - the entry key that was not written
   * @param cause - the serialiser's error
   */
  constructor(key: string, cause: unknown) {
    // The serialiser's message may end its own sentence: one period, not two.
    const detail = (cause instanceof Error ? cause.message : String(cause)).replace(/[.\s]+$/, '');
    super(
      'ERR_HERMES_SERIALIZE',
      `The result for '${key}' could not be serialised and was not cached: ${detail}. ` +
        `Return plain data or pass a { serializer } that knows the type.`,
      { cause },
    );
    this.key = key;
  }
}

/**
 * A computation passed its `timeout.hard` and the caller had no stale value to fall back on.
 * The computation goes on: its result is still cached when it completes.
 */
export class TimeoutError extends HermesError {
  /** The entry key whose computation timed out. */
  readonly key: string;
  /** The timeout that passed, in milliseconds. */
  readonly timeoutMs: number;

  /**
   * @param key - the entry key
   * @param timeoutMs - the timeout that passed
   */
  constructor(key: string, timeoutMs: number) {
    super(
      'ERR_HERMES_TIMEOUT',
      `Computing '${key}' took longer than ${timeoutMs} ms (timeout.hard); the result will still be cached when it completes.`,
    );
    this.key = key;
    this.timeoutMs = timeoutMs;
  }
}
