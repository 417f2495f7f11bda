/**
 * `Hermes`: the cache. It wraps functions, builds keys, applies tags, prevents stampedes in two
 * layers (shared in-flight promises in the process, a lock taken with the read across
 * processes) and falls open to the function when the cache layer fails. Backends only store.
 *
 * This class is the facade: construction, the backend, `wrap`, `cached`, `clean`, `close` and
 * `stats`. The read path is one hop away, all in one place:
 *
 *   `wrap` → {@link ReadPath.call} (`core/read.ts`) → `codec.decode` → `Backend.read` →
 *   `RedisBackend.read` → `lua/read.lua`
 *
 * Beside it in `core/`: computing under timeouts and storing (`compute.ts`), the stale policy
 * (`stale.ts`), lock releases and their retries (`locks.ts`), circuit breakers (`breaker.ts`),
 * deadlines and fail-open (`guard.ts`). Options are parsed in `options.ts`, counters and
 * events kept in `events.ts`, wrapped functions and decorators built in `decorate.ts`.
 *
 * @module
 */

import { EventEmitter } from 'node:events';
import type { Backend, BackendClass } from './backend/backend.js';
import { MemoryBackend, type MemoryBackendOptions } from './backend/memory.js';
import { EntryCodec } from './codec.js';
import { CircuitBreakers } from './core/breaker.js';
import type { CoreContext } from './core/context.js';
import { entryRefOf, type FunctionPolicy } from './core/function.js';
import { BackendGuard } from './core/guard.js';
import { LockReleaser } from './core/locks.js';
import { ReadPath } from './core/read.js';
import {
  type AnyFunction,
  type CachedFunction,
  type CachedMethodDecorator,
  cachedDecorator,
  type FunctionHost,
  makeCachedFunction,
} from './decorate.js';
import { NameConflictError, OptionError } from './errors.js';
import { type HermesEvents, type HermesStats, Recorder } from './events.js';
import { Keyspace } from './keys.js';
import {
  backendOptionsOf,
  type HermesOptions,
  OWN_OPTIONS,
  rejectUnknownOptions,
  resolveCacheOptions,
  resolveWrapOptions,
  type ResolvedCacheOptions,
  validateTags,
  type WrapOptions,
} from './options.js';

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
  readonly #options: ResolvedCacheOptions;
  readonly #ctx: CoreContext;
  readonly #readPath: ReadPath;
  readonly #host: FunctionHost;
  #backend: Backend | undefined;
  readonly #backendClass: BackendClass<BackendOptions> | undefined;
  readonly #backendOptions: BackendOptions;
  /** The function cached under each name: two functions may not share one. */
  readonly #names = new Map<string, unknown>();

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
    const resolved = resolveCacheOptions(options);
    this.#options = resolved;
    this.ttlMs = resolved.ttlMs;
    this.keyspace = new Keyspace(resolved.prefix);
    this.codec = new EntryCodec(options);
    const recorder = new Recorder(this);
    const guard = new BackendGuard(resolved.backendTimeoutMs, resolved.failOpen, recorder);
    this.#ctx = {
      keyspace: this.keyspace,
      codec: this.codec,
      options: resolved,
      recorder,
      guard,
      breakers: new CircuitBreakers(resolved.circuitBreaker),
      locks: new LockReleaser(resolved.lockTimeoutMs, (error) => {
        guard.report(error);
      }),
    };
    this.#readPath = new ReadPath(this.#ctx, () => this.backend);
    this.#host = {
      compile: (fn, wrapOptions, defaultName) => this.#compile(fn, wrapOptions, defaultName),
      call: this.#readPath.call.bind(this.#readPath),
      invalidate: (policy, args) => this.#readPath.invalidate(policy, args),
      many: (policy, thisArg, argsList) => this.#readPath.many(policy, thisArg, argsList),
      entryKey: (policy, args) => entryRefOf(this.keyspace, policy, args).entryKey,
      peek: (policy, args) => this.#readPath.peek(policy, args),
      set: (policy, args, value) => this.#readPath.set(policy, args, value),
      refresh: (policy, thisArg, args) => this.#readPath.refresh(policy, thisArg, args),
      withInfo: (policy, thisArg, args) => this.#readPath.withInfo(policy, thisArg, args),
    };

    this.#backendOptions = backendOptionsOf(options) as BackendOptions;
    if (backend === undefined) {
      this.#backendClass = MemoryBackend as unknown as BackendClass<BackendOptions>;
    } else if (typeof backend === 'function') {
      this.#backendClass = backend; // always called with options
    } else if (isBackend(backend)) {
      this.#backendClass = undefined;
      // With an instance, every option is the cache's: any other is a mistake.
      rejectUnknownOptions(options, OWN_OPTIONS);
      this.backend = backend;
    } else {
      throw new OptionError('backend', 'backend must be a Backend instance or a backend class');
    }
    if (this.#backendClass !== undefined) validateBackendOptions(this.#backendClass, this.#backendOptions);
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
      this.#readPath.backend = backend;
    }
    return this.#backend;
  }

  set backend(backend: Backend) {
    if (!isBackend(backend)) throw new OptionError('backend', 'backend must implement the Backend contract');
    backend.attach({ prefix: this.keyspace.prefix, codec: this.codec });
    this.#backend = backend;
    this.#readPath.backend = backend;
    this.#readPath.inflight.clear();
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
    options: WrapOptions<Args, Awaited<Result>> = {},
  ): CachedFunction<Args, Result> {
    if (typeof fn !== 'function') throw new OptionError('fn', 'wrap() takes a function');
    const policy = this.#compile(fn, options as WrapOptions, fn.name);
    return makeCachedFunction<Args, Result>(this.#host, policy);
  }

  /**
   * A method decorator: `@cache.cached({ tags: ['math'], ttl: 1200 })`. Works with TC39
   * standard decorators and with `experimentalDecorators`. `this` is not part of the key; the
   * default name is `ClassName.method` (the class that defines the method). The decorated
   * method gains `invalidate(...args)`, `key(...args)`, `peek`, `set`, `refresh` and
   * `withInfo`, like a wrapped function (reach them typed with {@link asCached}; give
   * `refresh` and `withInfo` the instance with `.call(obj, …)`).
   *
   * `KeyArgs`, the parameters of the `key` option, are inferred from its annotated parameters
   * (`key: (id: number) => …`) or given (`cache.cached<[id: number]>({ key: (id) => … })`); the
   * decorated method's parameters must fit them. A decorator's options cannot be typed from the
   * method it is applied to, so an unannotated `key` parameter is `unknown`.
   *
   * `KeyResult`, the result the `ttl` and `cacheIf` functions see, is likewise inferred from
   * their annotated first parameter or given (`cache.cached<[id: number], User>(…)`), and the
   * decorated method must resolve to it; otherwise it is `unknown`.
   *
   * @throws {@link OptionError} on a bad option
   */
  cached<KeyArgs extends unknown[] = unknown[], KeyResult = unknown>(
    options: WrapOptions<KeyArgs, KeyResult> = {},
  ): CachedMethodDecorator<KeyArgs, KeyResult> {
    resolveWrapOptions(options as WrapOptions, this.#options.policy); // the options' mistakes, reported here
    return cachedDecorator<KeyArgs, KeyResult>(this.#host, options as WrapOptions);
  }

  /**
   * With tags: invalidates every entry carrying any of them, one key per tag (O(1) in the
   * number of entries). Without: removes every key under this cache's prefix, and nothing
   * else on the server. Rejects with a {@link BackendError} if the backend fails.
   */
  async clean(tags?: readonly string[]): Promise<void> {
    const backend = this.backend;
    if (tags !== undefined) validateTags(tags);
    const { guard } = this.#ctx;
    const inflight = this.#readPath.inflight;
    // Calls in flight now, or started while the store is being cleaned (they may read it
    // before the deletion), must not be joined by calls made after clean() resolves.
    inflight.clear();
    try {
      if (tags === undefined) {
        await guard.invalidation('clear', undefined, () => backend.clear(this.keyspace.prefix));
        return;
      }
      if (tags.length === 0) return;
      const tagKeys = tags.map((tag) => this.keyspace.tagKey(tag));
      await guard.invalidation('cleanTags', tagKeys[0], () => backend.cleanTags(this.keyspace.prefix, tagKeys));
    } finally {
      inflight.clear();
    }
  }

  /** Releases the backend's connections and timers so the process can exit. */
  async close(): Promise<void> {
    this.#readPath.inflight.clear();
    this.#ctx.locks.close();
    if (this.#backend) await this.#backend.close();
    this.#ctx.guard.close();
  }

  /**
   * A snapshot of the cache's counters since it was created: hits, misses, stale values
   * served, lock waits and their total time, computations, timeouts, fallbacks, and absorbed
   * errors by code.
   */
  stats(): HermesStats {
    const stats = this.#ctx.recorder.snapshot();
    const near = this.#backend?.nearCacheStats?.();
    if (near !== undefined) stats.near = near;
    return stats;
  }

  /** A function's compiled policy; its name claimed in this cache. */
  #compile(fn: AnyFunction, options: WrapOptions, defaultName: string): FunctionPolicy {
    const resolved = resolveWrapOptions(options, this.#options.policy);
    const name = resolved.name ?? defaultName;
    if (typeof name !== 'string' || name.length === 0) {
      throw new OptionError('name', 'An anonymous function needs a { name } option to be cached');
    }
    const known = this.#names.get(name);
    if (known !== undefined && known !== fn) throw new NameConflictError(name);
    this.#names.set(name, fn);
    return {
      ...resolved.policy,
      fn: fn as (...args: unknown[]) => unknown,
      name,
      tags: resolved.tags,
      tagKeys: resolved.tags.map((tag) => this.keyspace.tagKey(tag)),
      ttlMs: resolved.ttlMs ?? this.ttlMs,
      key: resolved.key,
      keyMemo: new Map(),
      tagsOf: resolved.tagsOf,
      tagKeysMemo: resolved.tagsOf === undefined ? undefined : new Map(),
      ttlOf: resolved.ttlOf,
      cacheIf: resolved.cacheIf,
    };
  }
}

/**
 * The backend class' own checks of its options, run when the cache is constructed (nothing is
 * opened): unknown names against its `optionNames` (the closest suggested among the cache's and
 * the backend's names), then its `validateOptions`.
 */
function validateBackendOptions<Options>(backendClass: BackendClass<Options>, options: Options): void {
  const names = backendClass.optionNames;
  if (names !== undefined) rejectUnknownOptions(options as object, new Set([...OWN_OPTIONS, ...names]));
  if (typeof backendClass.validateOptions === 'function') backendClass.validateOptions(options);
}

const BACKEND_METHODS = ['attach', 'read', 'write', 'release', 'waitForRelease', 'invalidate', 'cleanTags', 'clear', 'dump', 'close'] as const;

function isBackend(value: unknown): value is Backend {
  if (value === null || typeof value !== 'object') return false;
  const b = value as Record<string, unknown>;
  return BACKEND_METHODS.every((m) => typeof b[m] === 'function');
}
