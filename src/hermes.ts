/**
 * `Hermes`: the cache. It wraps functions, builds keys, applies tags, prevents stampedes in two
 * layers (shared in-flight promises in the process, a lock taken with the read across
 * processes) and falls open to the function when the cache layer fails. Backends only store.
 *
 * @module
 */

import { EventEmitter } from 'node:events';
import type { Backend, BackendClass, ReadReply, ReadRequest, StoredEntry } from './backend/backend.js';
import { MemoryBackend, type MemoryBackendOptions } from './backend/memory.js';
import { type CodecOptions, EntryCodec, type EntryRecord } from './codec.js';
import {
  BackendError,
  type BackendOperation,
  CorruptEntryError,
  HermesError,
  NameConflictError,
  OptionError,
  SerializationError,
} from './errors.js';
import { canonicalArgs, hashString, Keyspace, uniqueToken } from './keys.js';

/** Options of a {@link Hermes} cache. Any other key is passed to the backend class. */
export interface HermesOptions extends CodecOptions {
  /**
   * How long entries stay cached, in seconds (fractions allowed). `wrap` can override it.
   * @default 3600
   */
  ttl?: number | undefined;
  /**
   * Prefix of every key this cache writes: `{prefix}:entry:…`, `{prefix}:tag:…`,
   * `{prefix}:lock:…`. `clean()` removes exactly the keys under it.
   * @default 'cache'
   */
  prefix?: string | undefined;
  /**
   * How long a computation's lock lives, in milliseconds: a process that took the lock and
   * crashed blocks the others no longer than this. Set it above your slowest function's
   * running time, or a second caller may start computing while the first still runs.
   * @default 10000
   */
  lockTimeout?: number | undefined;
  /**
   * The longest a caller waits for another caller's computation of the same entry, in
   * milliseconds, before it computes the value itself. `0` never waits.
   * @default 10000
   */
  lockWait?: number | undefined;
  /**
   * `true`: a cache-layer failure (backend down, timeout, corrupt bytes, a result that cannot
   * be serialised) never reaches the caller of a wrapped function: the function runs uncached
   * and the failure is emitted as an `error` event. `false`: backend failures reject the call
   * with a {@link BackendError}. Invalidation (`invalidate`, `clean`) always rejects on failure,
   * since a lost invalidation would serve stale data silently.
   * @default true
   */
  failOpen?: boolean | undefined;
}

/** Options of {@link Hermes.wrap} and {@link Hermes.cached}. */
export interface WrapOptions<Args extends unknown[] = unknown[]> {
  /**
   * Tags of the function's entries: `cache.clean(['tag'])` invalidates every entry carrying
   * `'tag'`. Non-empty strings.
   * @default []
   */
  tags?: readonly string[] | undefined;
  /**
   * TTL of this function's entries in seconds; overrides the cache's `ttl`.
   * @default the cache's ttl
   */
  ttl?: number | undefined;
  /**
   * Builds the part of the entry key that stands for the arguments, replacing the argument
   * hash: `{prefix}:entry:{name}:{key(...args)}`. Must return a non-empty string.
   * @default a 64-bit hash of the arguments' canonical form
   */
  key?: ((...args: Args) => string) | undefined;
  /**
   * The name in entry keys. Required for anonymous functions; two different functions may not
   * share a name in one cache.
   * @default the function's name (`ClassName.method` for decorated methods)
   */
  name?: string | undefined;
}

/** A wrapped function: `fn`'s parameters, a Promise of its result, and cache controls. */
export interface CachedFunction<Args extends unknown[], Result> {
  /** Calls through the cache. */
  (...args: Args): Promise<Awaited<Result>>;
  /** Drops the entry of these arguments (one request). Rejects if the backend fails. */
  invalidate(...args: Args): Promise<void>;
  /** The entry key of these arguments, for operators and debugging. */
  key(...args: Args): string;
  /** The name used in this function's keys. */
  readonly cacheName: string;
  /** The tags of this function's entries. */
  readonly tags: readonly string[];
}

/** The events of a {@link Hermes}. */
export interface HermesEvents {
  /**
   * A cache-layer failure that was absorbed (see `failOpen`): a {@link BackendError}, a
   * {@link CorruptEntryError} or a {@link SerializationError}. The caller got its result.
   */
  error: [error: HermesError];
}

/**
 * The decorator returned by {@link Hermes.cached}: works as a TC39 standard method decorator
 * (TypeScript 5's default) and as a legacy `experimentalDecorators` one.
 */
export interface CachedMethodDecorator {
  /** TC39 standard decorator form. The method must return a Promise (be `async`). */
  <This, Args extends unknown[], Result>(
    method: (this: This, ...args: Args) => Promise<Result>,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: Args) => Promise<Result>>,
  ): (this: This, ...args: Args) => Promise<Result>;
  /** Legacy (`experimentalDecorators`) form. */
  (target: object, propertyKey: string | symbol, descriptor: PropertyDescriptor): PropertyDescriptor;
}

/** Options known to `Hermes` itself; everything else in the options goes to the backend. */
const OWN_OPTIONS = new Set([
  'ttl',
  'prefix',
  'lockTimeout',
  'lockWait',
  'failOpen',
  'serializer',
  'compressor',
  'compressThreshold',
]);

const ARGS_MEMO_SIZE = 2048;

type AnyFunction = (...args: never[]) => unknown;

/** The compiled form of one wrapped function, shared by every call. */
interface Wrapped {
  readonly fn: (...args: unknown[]) => unknown;
  readonly name: string;
  readonly tags: readonly string[];
  readonly tagKeys: readonly string[];
  readonly ttlMs: number;
  readonly key: ((...args: unknown[]) => string) | undefined;
  readonly memo: Map<string, string>;
}

/**
 * A function-result cache with tag-based invalidation and stampede prevention.
 *
 * ```ts
 * const cache = new Hermes();                       // in-process store
 * const cache = new Hermes(RedisBackend, { ttl: 600, host: 'localhost', db: 1 });
 * const square = cache.wrap(async (n: number) => n * n, { name: 'square', tags: ['math'] });
 * await square(4);
 * await cache.clean(['math']);
 * ```
 *
 * Construction has no side effects: the backend is built and connected on first use.
 */
export class Hermes<BackendOptions = MemoryBackendOptions> extends EventEmitter<HermesEvents> {
  /** The key names of this cache. */
  readonly keyspace: Keyspace;
  /** The codec entries are stored with. */
  readonly codec: EntryCodec;
  /** Default TTL of entries, in milliseconds. */
  readonly ttlMs: number;
  readonly #lockTimeout: number;
  readonly #lockWait: number;
  readonly #failOpen: boolean;
  #backend: Backend | undefined;
  readonly #backendClass: BackendClass<BackendOptions> | undefined;
  readonly #backendOptions: BackendOptions;
  readonly #names = new Map<string, unknown>();
  readonly #inflight = new Map<string, Promise<unknown>>();
  #warned = false;

  /**
   * @param backend - a backend instance, or a backend class constructed lazily with the
   *   options that are not `Hermes`' own; omitted, the in-process {@link MemoryBackend}
   * @param options - the cache's options ({@link HermesOptions}) and the backend's
   */
  constructor(backend?: Backend, options?: HermesOptions);
  // Two overloads for backend classes, not one union: TypeScript infers the backend's options
  // type from a constructor whose parameter is optional only through the first, and from one
  // whose parameter is required only through the second.
  constructor(backend: BackendClass<BackendOptions | undefined>, options?: HermesOptions & Partial<BackendOptions>);
  // eslint-disable-next-line @typescript-eslint/unified-signatures
  constructor(backend: BackendClass<BackendOptions>, options?: HermesOptions & Partial<BackendOptions>);
  constructor(
    backend?: Backend | BackendClass<BackendOptions | undefined> | BackendClass<BackendOptions>,
    options: HermesOptions & Partial<BackendOptions> = {},
  ) {
    super();
    if (options === null || typeof options !== 'object') throw new OptionError('options', 'options must be an object');
    const ttl = options.ttl ?? 3600;
    this.ttlMs = validateTtl(ttl, 'ttl');
    const prefix = options.prefix ?? 'cache';
    if (typeof prefix !== 'string' || prefix.length === 0) {
      throw new OptionError('prefix', `prefix must be a non-empty string, got ${JSON.stringify(prefix)}`);
    }
    this.#lockTimeout = validateMs(options.lockTimeout ?? 10_000, 'lockTimeout', 1);
    this.#lockWait = validateMs(options.lockWait ?? 10_000, 'lockWait', 0);
    this.#failOpen = options.failOpen ?? true;
    if (typeof this.#failOpen !== 'boolean') throw new OptionError('failOpen', 'failOpen must be a boolean');
    validateCodecOptions(options);
    this.keyspace = new Keyspace(prefix);
    this.codec = new EntryCodec(options);

    const backendOptions: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(options)) if (!OWN_OPTIONS.has(k)) backendOptions[k] = v;
    this.#backendOptions = backendOptions as BackendOptions;
    if (backend === undefined) {
      this.#backendClass = MemoryBackend as unknown as BackendClass<BackendOptions>;
    } else if (typeof backend === 'function') {
      this.#backendClass = backend; // always called with options
    } else if (isBackend(backend)) {
      this.#backendClass = undefined;
      this.backend = backend;
    } else {
      throw new OptionError('backend', 'backend must be a Backend instance or a backend class');
    }
  }

  /**
   * The backend in use. Built from the backend class on first access; replaceable at run time
   * (for example once configuration is known). Replacing it does not close the old one.
   */
  get backend(): Backend {
    if (this.#backend === undefined) {
      const BackendCtor = this.#backendClass as BackendClass<BackendOptions>;
      const backend = new BackendCtor(this.#backendOptions);
      backend.attach({ prefix: this.keyspace.prefix, codec: this.codec });
      this.#backend = backend;
    }
    return this.#backend;
  }

  set backend(backend: Backend) {
    if (!isBackend(backend)) throw new OptionError('backend', 'backend must implement the Backend contract');
    backend.attach({ prefix: this.keyspace.prefix, codec: this.codec });
    this.#backend = backend;
    this.#inflight.clear();
  }

  /**
   * Wraps a function so that its results are cached. The wrapped function takes the same
   * arguments and returns a Promise of the (awaited) result; sync and async functions both
   * work. Concurrent calls with equal arguments share one computation.
   *
   * @throws {@link OptionError} on a bad option or an anonymous function without `name`
   * @throws {@link NameConflictError} if another function is already cached under the name
   */
  wrap<Args extends unknown[], Result>(
    fn: (...args: Args) => Result,
    options: WrapOptions<Args> = {},
  ): CachedFunction<Args, Result> {
    if (typeof fn !== 'function') throw new OptionError('fn', 'wrap() takes a function');
    const wrapped = this.#compile(fn, options as WrapOptions, fn.name);
    return this.#makeCachedFunction<Args, Result>(wrapped);
  }

  /**
   * A method decorator: `@cache.cached({ tags: ['math'], ttl: 1200 })`. Works with TC39
   * standard decorators and with `experimentalDecorators`. `this` is not part of the key; the
   * default name is `ClassName.method` (the class that defines the method). The decorated
   * method gains `invalidate(...args)` and `key(...args)`, like a wrapped function.
   */
  cached(options: WrapOptions = {}): CachedMethodDecorator {
    validateWrapOptions(options);
    const decorator = (
      target: unknown,
      context: ClassMethodDecoratorContext | string | symbol,
      descriptor?: PropertyDescriptor,
    ): unknown => {
      if (typeof context === 'object' && context !== null && 'kind' in context) {
        // TC39 standard decorator.
        if (context.kind !== 'method') throw new OptionError('cached', '@cached() decorates methods only');
        return this.#decorate(target as AnyFunction, String(context.name), undefined, options);
      }
      // Legacy decorator: (prototype or constructor, key, descriptor).
      if (!descriptor || typeof descriptor.value !== 'function') {
        throw new OptionError('cached', '@cached() decorates methods only');
      }
      const owner = target as { name?: string; constructor?: { name?: string } };
      const className = typeof target === 'function' ? owner.name : owner.constructor?.name;
      descriptor.value = this.#decorate(descriptor.value as AnyFunction, String(context), className, options);
      return descriptor;
    };
    return decorator as CachedMethodDecorator;
  }

  /**
   * With tags: invalidates every entry carrying any of them, one key per tag (O(1) in the
   * number of entries). Without: removes every key under this cache's prefix, and nothing
   * else on the server. Rejects with a {@link BackendError} if the backend fails.
   */
  async clean(tags?: readonly string[]): Promise<void> {
    const backend = this.backend;
    this.#inflight.clear();
    if (tags === undefined) {
      await this.#callBackend('clear', undefined, () => backend.clear(this.keyspace.prefix));
      return;
    }
    validateTags(tags);
    if (tags.length === 0) return;
    const tagKeys = tags.map((tag) => this.keyspace.tagKey(tag));
    await this.#callBackend('cleanTags', tagKeys[0], () => backend.cleanTags(tagKeys));
  }

  /** Releases the backend's connections and timers so the process can exit. */
  async close(): Promise<void> {
    this.#inflight.clear();
    if (this.#backend) await this.#backend.close();
  }

  #compile(fn: AnyFunction, options: WrapOptions, defaultName: string): Wrapped {
    validateWrapOptions(options);
    const name = options.name ?? defaultName;
    if (typeof name !== 'string' || name.length === 0) {
      throw new OptionError('name', 'An anonymous function needs a { name } option to be cached');
    }
    const known = this.#names.get(name);
    if (known !== undefined && known !== fn) throw new NameConflictError(name);
    this.#names.set(name, fn);
    const tags = [...(options.tags ?? [])];
    return {
      fn: fn as (...args: unknown[]) => unknown,
      name,
      tags,
      tagKeys: tags.map((tag) => this.keyspace.tagKey(tag)),
      ttlMs: options.ttl === undefined ? this.ttlMs : validateTtl(options.ttl, 'ttl'),
      key: options.key,
      memo: new Map(),
    };
  }

  #makeCachedFunction<Args extends unknown[], Result>(wrapped: Wrapped): CachedFunction<Args, Result> {
     
    const hermes = this;
    const cachedFunction = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      return hermes.#call(wrapped, this, args);
    } as unknown as CachedFunction<Args, Result>;
    Object.defineProperties(cachedFunction, {
      name: { value: wrapped.fn.name || wrapped.name },
      cacheName: { value: wrapped.name, enumerable: true },
      tags: { value: Object.freeze([...wrapped.tags]), enumerable: true },
      invalidate: { value: (...args: Args) => this.#invalidate(wrapped, args) },
      key: { value: (...args: Args) => this.#entryKey(wrapped, args) },
    });
    return cachedFunction;
  }

  #decorate(method: AnyFunction, methodName: string, className: string | undefined, options: WrapOptions): AnyFunction {
    // The class name of a TC39-decorated method is found on first use, from the object that
    // owns the replacement method in `this`'s prototype chain (the defining class).
    let wrapped: Wrapped | undefined =
      className !== undefined || options.name !== undefined
        ? this.#compile(method, options, `${className ?? ''}.${methodName}`)
        : undefined;
    const hermes = this;
    const resolve = (self: unknown): Wrapped => {
      if (wrapped) return wrapped;
      const owner = findOwner(self, methodName, replacement);
      wrapped = hermes.#compile(method, options, `${owner}.${methodName}`);
      return wrapped;
    };
    const replacement = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      let compiled: Wrapped;
      try {
        compiled = resolve(this);
      } catch (error) {
        return Promise.reject(error);
      }
      return hermes.#call(compiled, this, args);
    };
    Object.defineProperties(replacement, {
      name: { value: method.name },
      invalidate: {
        value(this: unknown, ...args: unknown[]) {
          return hermes.#invalidate(resolve(wrapped ? undefined : this), args);
        },
      },
      key: {
        value(this: unknown, ...args: unknown[]) {
          return hermes.#entryKey(resolve(wrapped ? undefined : this), args);
        },
      },
    });
    return replacement;
  }

  /**
   * The entry key of a call. Keys of recent argument lists are memoised per function, so a hit
   * costs one canonical encoding and one map lookup instead of a hash.
   */
  #entryKey(wrapped: Wrapped, args: readonly unknown[]): string {
    if (wrapped.key) {
      const key = wrapped.key(...args);
      if (typeof key !== 'string' || key.length === 0) {
        throw new OptionError('key', `The key function of '${wrapped.name}' must return a non-empty string`);
      }
      return this.keyspace.entryKey(wrapped.name, key);
    }
    const canonical = canonicalArgs(args);
    const memo = wrapped.memo;
    let entryKey = memo.get(canonical);
    if (entryKey === undefined) {
      entryKey = this.keyspace.entryKey(wrapped.name, hashString(canonical));
      if (memo.size >= ARGS_MEMO_SIZE) memo.clear();
      memo.set(canonical, entryKey);
    }
    return entryKey;
  }

  #call(wrapped: Wrapped, thisArg: unknown, args: unknown[]): Promise<unknown> {
    let entryKey: string;
    try {
      entryKey = this.#entryKey(wrapped, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const inflight = this.#inflight.get(entryKey);
    if (inflight !== undefined) return inflight;

    const backend = this.backend;
    if (backend.readSync) {
      // In-process store: a hit is served without a promise hop, a lock token or a lock key.
      let peek: ReadReply | undefined;
      try {
        peek = backend.readSync({ entryKey, tagKeys: wrapped.tagKeys, lockKey: '', lockToken: undefined, lockTtlMs: 0 });
      } catch {
        peek = undefined; // retried (and reported) by the asynchronous path
      }
      if (peek?.entry !== undefined) {
        const record = this.#decode(entryKey, peek.entry);
        if (record !== undefined) return Promise.resolve(record.value);
      }
    }
    const request: ReadRequest = {
      entryKey,
      tagKeys: wrapped.tagKeys,
      lockKey: this.keyspace.lockKeyOf(entryKey),
      lockToken: uniqueToken(),
      lockTtlMs: this.#lockTimeout,
    };
    let promise: Promise<unknown>;
    if (backend.readSync) {
      promise = this.#load(backend, wrapped, thisArg, args, request, undefined);
    } else {
      // Remote store: a hit is the read's promise and one reaction, no async frames.
      let read: Promise<ReadReply>;
      try {
        read = backend.read(request);
      } catch (error) {
        read = Promise.reject(error);
      }
      promise = read.then(
        (reply) => {
          if (reply.entry === undefined) return this.#load(backend, wrapped, thisArg, args, request, reply);
          const record = this.#decode(entryKey, reply.entry);
          if (record !== undefined) return record.value;
          // Corrupt bytes: compute and overwrite them.
          return this.#compute(backend, wrapped, thisArg, args, request, reply.tagHash, undefined);
        },
        (error: unknown) => {
          this.#absorb(new BackendError('read', entryKey, error));
          return wrapped.fn.apply(thisArg, args); // fall open: uncached
        },
      );
    }
    this.#inflight.set(entryKey, promise);
    const forget = (): void => {
      if (this.#inflight.get(entryKey) === promise) this.#inflight.delete(entryKey);
    };
    promise.then(forget, forget);
    return promise;
  }

  async #load(
    backend: Backend,
    wrapped: Wrapped,
    thisArg: unknown,
    args: unknown[],
    request: ReadRequest,
    firstReply: ReadReply | undefined,
  ): Promise<unknown> {
    const { entryKey, lockKey } = request;
    const deadline = Date.now() + this.#lockWait;
    let reply = firstReply;
    for (;;) {
      if (reply === undefined) {
        try {
          reply = await backend.read(request);
        } catch (error) {
          this.#absorb(new BackendError('read', entryKey, error));
          return wrapped.fn.apply(thisArg, args); // fall open: uncached
        }
      }
      if (reply.entry !== undefined) {
        const record = this.#decode(entryKey, reply.entry);
        if (record !== undefined) return record.value;
        // Corrupt bytes: compute and overwrite them.
        return this.#compute(backend, wrapped, thisArg, args, request, reply.tagHash, undefined);
      }
      if (reply.locked) {
        return this.#compute(backend, wrapped, thisArg, args, request, reply.tagHash, request.lockToken);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        // Waited long enough for another caller: compute without the lock.
        return this.#compute(backend, wrapped, thisArg, args, request, reply.tagHash, undefined);
      }
      try {
        await backend.waitForRelease(lockKey, remaining);
      } catch (error) {
        this.#absorb(new BackendError('wait', lockKey, error));
        return this.#compute(backend, wrapped, thisArg, args, request, reply.tagHash, undefined);
      }
      reply = undefined;
    }
  }

  async #compute(
    backend: Backend,
    wrapped: Wrapped,
    thisArg: unknown,
    args: unknown[],
    request: ReadRequest,
    tagHash: string,
    lockToken: string | undefined,
  ): Promise<unknown> {
    const { entryKey, lockKey } = request;
    let value: unknown;
    try {
      value = await wrapped.fn.apply(thisArg, args);
    } catch (error) {
      if (lockToken !== undefined) {
        try {
          await backend.release(lockKey, lockToken);
        } catch (releaseError) {
          this.#absorbQuietly(new BackendError('release', lockKey, releaseError));
        }
      }
      throw error;
    }
    // The tag hash was captured before the function ran: if a tag was invalidated meanwhile,
    // this entry is written invalid and never served.
    const record: EntryRecord = { tagHash, freshUntil: Date.now() + wrapped.ttlMs, value };
    let entry: StoredEntry = record;
    if (backend.storesBytes) {
      try {
        entry = this.codec.encode(record);
      } catch (error) {
        this.#absorbQuietly(new SerializationError(entryKey, error));
        if (lockToken !== undefined) {
          await backend.release(lockKey, lockToken).catch((e: unknown) => {
            this.#absorbQuietly(new BackendError('release', lockKey, e));
          });
        }
        return value;
      }
    }
    try {
      await backend.write({ entryKey, entry, ttlMs: wrapped.ttlMs, lockKey, lockToken });
    } catch (error) {
      // Free the waiters now rather than at the lock's expiry, if the store still answers.
      if (lockToken !== undefined) await backend.release(lockKey, lockToken).catch(() => undefined);
      this.#absorb(new BackendError('write', entryKey, error));
    }
    return value;
  }

  #decode(entryKey: string, entry: StoredEntry): EntryRecord | undefined {
    if (!(entry instanceof Uint8Array)) return entry;
    try {
      return this.codec.decode(entry);
    } catch (error) {
      this.#absorbQuietly(
        new CorruptEntryError(entryKey, error instanceof Error ? error.message : String(error), error),
      );
      return undefined;
    }
  }

  async #invalidate(wrapped: Wrapped, args: readonly unknown[]): Promise<void> {
    const entryKey = this.#entryKey(wrapped, args);
    this.#inflight.delete(entryKey);
    const backend = this.backend;
    const lockKey = this.keyspace.lockKeyOf(entryKey);
    await this.#callBackend('invalidate', entryKey, () => backend.invalidate(entryKey, lockKey));
  }

  async #callBackend(operation: BackendOperation, key: string | undefined, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      throw error instanceof HermesError ? error : new BackendError(operation, key, error);
    }
  }

  /** A backend failure on a wrapped call: thrown unless failing open, then emitted. */
  #absorb(error: HermesError): void {
    if (!this.#failOpen) throw error;
    this.#absorbQuietly(error);
  }

  /** Emits an absorbed error; without listeners, warns once per cache instead of crashing. */
  #absorbQuietly(error: HermesError): void {
    if (this.listenerCount('error') > 0) {
      this.emit('error', error);
    } else if (!this.#warned) {
      this.#warned = true;
      process.emitWarning(
        `${error.message} (further cache errors are silent; listen with cache.on('error', …))`,
        { type: 'HermesWarning', code: error.code },
      );
    }
  }
}

function findOwner(self: unknown, methodName: string, replacement: unknown): string {
  let obj = self as Record<string, unknown> | null;
  while (obj !== null && obj !== undefined && (typeof obj === 'object' || typeof obj === 'function')) {
    if (Object.prototype.hasOwnProperty.call(obj, methodName) && obj[methodName] === replacement) {
      return typeof obj === 'function' ? (obj as { name: string }).name : (obj.constructor as { name: string }).name;
    }
    obj = Object.getPrototypeOf(obj) as Record<string, unknown> | null;
  }
  throw new OptionError(
    'name',
    `Cannot tell which class defines the cached method '${methodName}'; pass a { name } option to cached()`,
  );
}

function isBackend(value: unknown): value is Backend {
  if (value === null || typeof value !== 'object') return false;
  const b = value as Record<string, unknown>;
  return ['attach', 'read', 'write', 'release', 'waitForRelease', 'invalidate', 'cleanTags', 'clear', 'dump', 'close'].every(
    (m) => typeof b[m] === 'function',
  );
}

function validateTtl(ttl: unknown, option: string): number {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw new OptionError(option, `${option} must be a positive number of seconds, got ${String(ttl)}`);
  }
  return Math.max(1, Math.round(ttl * 1000));
}

function validateMs(value: unknown, option: string, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new OptionError(option, `${option} must be a number of milliseconds >= ${min}, got ${String(value)}`);
  }
  return value;
}

function validateTags(tags: unknown): asserts tags is readonly string[] {
  if (!Array.isArray(tags)) throw new OptionError('tags', 'tags must be an array of non-empty strings');
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag.length === 0) {
      throw new OptionError('tags', `Every tag must be a non-empty string, got ${typeof tag === 'string' ? "''" : String(tag)}`);
    }
  }
}

function validateWrapOptions(options: WrapOptions): void {
  if (options === null || typeof options !== 'object') throw new OptionError('options', 'options must be an object');
  if (options.tags !== undefined) validateTags(options.tags);
  if (options.ttl !== undefined) validateTtl(options.ttl, 'ttl');
  if (options.key !== undefined && typeof options.key !== 'function') {
    throw new OptionError('key', 'key must be a function of the arguments returning a string');
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0)) {
    throw new OptionError('name', 'name must be a non-empty string');
  }
}

function validateCodecOptions(options: CodecOptions): void {
  const { serializer, compressor, compressThreshold } = options;
  if (
    serializer !== undefined &&
    (typeof serializer !== 'object' ||
      typeof serializer.serialize !== 'function' ||
      typeof serializer.deserialize !== 'function')
  ) {
    throw new OptionError('serializer', 'serializer must have serialize(value) and deserialize(bytes) methods');
  }
  if (
    compressor !== undefined &&
    compressor !== false &&
    (typeof compressor !== 'object' ||
      typeof compressor.compress !== 'function' ||
      typeof compressor.decompress !== 'function')
  ) {
    throw new OptionError('compressor', 'compressor must be false or have compress() and decompress() methods');
  }
  if (compressThreshold !== undefined && (!Number.isSafeInteger(compressThreshold) || compressThreshold < 0)) {
    throw new OptionError('compressThreshold', 'compressThreshold must be a non-negative integer of bytes');
  }
}
