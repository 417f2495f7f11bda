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
  | 'ERR_HERMES_LOSSY_VALUE'
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
 * A function's result holds a class instance (other than the types the built-in serialiser
 * restores: Date, Map, Set, RegExp, Buffer, typed arrays, built-in errors...) or a
 * symbol-keyed property, which a store of bytes (Redis, Memcached,
 * `MemoryBackend({ serialize: true })`) gives back as a plain object, or without the property.
 * Emitted once per cached function, at the first such write; the value is still cached and
 * returned. On the live in-process `MemoryBackend` the cached object is returned as it is, so
 * the event warns that the remote backends would differ.
 */
export class LossyValueError extends HermesError {
  /** The cached function whose result is concerned. */
  readonly functionName: string;
  /** `'class'`: a class instance comes back as a plain object; `'symbol'`: a symbol-keyed property is dropped. */
  readonly kind: 'class' | 'symbol';
  /** The class name, or the symbol's description (`Symbol(tag)`). */
  readonly what: string;
  /** Where it sits in the result, such as `result.items[2].price`. */
  readonly path: string;
  /** Whether the value was cached live (in-process, not serialised). */
  readonly live: boolean;

  /**
   * @param functionName - the cached function
   * @param part - what is lost and where: `kind`, `what`, `path`
   * @param live - whether the backend keeps live values (nothing is lost yet)
   */
  constructor(functionName: string, part: { kind: 'class' | 'symbol'; what: string; path: string }, live: boolean) {
    const subject =
      part.kind === 'class'
        ? `an instance of class ${part.what} at ${part.path}`
        : `a symbol-keyed property ${part.what} at ${part.path}`;
    const outcome =
      part.kind === 'class' ? 'a plain object without its prototype and methods' : 'the object without that property';
    const where = live
      ? `This in-process cache returns the live object, but Redis, Memcached and MemoryBackend({ serialize: true }) would return ${outcome}`
      : `It is cached, but every read of it returns ${outcome}`;
    const remedy =
      part.kind === 'class'
        ? `Register the class with the { classes: [${part.what}] } option to get instances back, or return plain data`
        : 'Use a string key instead, or return plain data';
    super(
      'ERR_HERMES_LOSSY_VALUE',
      `The result of '${functionName}' holds ${subject}. ${where}. ${remedy}. Reported once per function.`,
    );
    this.functionName = functionName;
    this.kind = part.kind;
    this.what = part.what;
    this.path = part.path;
    this.live = live;
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
