/**
 * `Hermes`: the cache. It wraps functions, builds keys, applies tags, prevents stampedes in two
 * layers (shared in-flight promises in the process, a lock taken with the read across
 * processes) and falls open to the function when the cache layer fails. Backends only store.
 *
 * @module
 */

import { tracingChannel, type TracingChannel } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import type { Backend, BackendClass, ReadReply, ReadRequest, StoredEntry } from './backend/backend.js';
import { MemoryBackend, type MemoryBackendOptions } from './backend/memory.js';
import { type CodecOptions, EntryCodec, type EntryRecord } from './codec.js';
import {
  BackendError,
  type BackendOperation,
  CorruptEntryError,
  HermesError,
  type HermesErrorCode,
  NameConflictError,
  OptionError,
  SerializationError,
  TimeoutError,
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
  /**
   * Fail-safe, in seconds: an entry is kept `ttl + grace`; past `ttl` it is stale. The caller
   * that gets the lock recomputes; if the function throws or passes `timeout.soft`, the stale
   * value is returned (and written back fresh for a few seconds, so that the next callers do
   * not hammer a failing function) and a `stale` event says why. Callers that do not get the
   * lock are served the stale value at once instead of waiting. Entries invalidated by
   * `invalidate` or a tag are never served, stale or not. `wrap` can override it.
   * @default 0
   */
  grace?: number | undefined;
  /**
   * Stale-while-revalidate, in seconds: within this window past `ttl` every caller gets the
   * stale value at once, and one caller — across all processes, through the lock — refreshes
   * the entry in the background. `wrap` can override it.
   * @default 0
   */
  staleWhileRevalidate?: number | undefined;
  /**
   * Function timeouts in milliseconds. Past `soft`, a caller with a stale value (see `grace`)
   * gets it while the computation goes on in the background to refresh the entry. Past
   * `hard`, the caller gets a {@link TimeoutError}; the computation's eventual result is still
   * cached. `wrap` can override it.
   * @default no timeouts
   */
  timeout?: TimeoutOptions | undefined;
  /**
   * TTL jitter, as a fraction of the TTL: each entry's TTL is shortened by a random amount up
   * to `jitter × ttl`, so that entries written together do not all expire at once. `0`
   * disables it. `wrap` can override it.
   * @default 0.1
   */
  jitter?: number | undefined;
  /**
   * Deadline of every backend call of a wrapped function (read, write), in milliseconds:
   * past it the call falls open to the function with an `error` event. Not applied to the
   * in-process backend, which cannot hang.
   * @default 250
   */
  backendTimeout?: number | undefined;
  /**
   * After `failures` consecutive backend failures, wrapped calls skip the backend for
   * `cooldown` milliseconds (they run the function, counted as `fallbacks`), then one call
   * probes it; a success closes the breaker. `false` disables it.
   * @default { failures: 5, cooldown: 1000 }
   */
  circuitBreaker?: CircuitBreakerOptions | false | undefined;
}

/** Function timeouts, in milliseconds: see {@link HermesOptions.timeout}. */
export interface TimeoutOptions {
  /** Past this, a caller with a stale value gets it; the computation goes on. */
  soft?: number | undefined;
  /** Past this, the caller gets a {@link TimeoutError}; the result is still cached. */
  hard?: number | undefined;
}

/** See {@link HermesOptions.circuitBreaker}. */
export interface CircuitBreakerOptions {
  /**
   * Consecutive backend failures that open the breaker.
   * @default 5
   */
  failures?: number | undefined;
  /**
   * Milliseconds the breaker stays open before one call probes the backend.
   * @default 1000
   */
  cooldown?: number | undefined;
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
  /** Grace in seconds for this function: see {@link HermesOptions.grace}. @default the cache's */
  grace?: number | undefined;
  /** Stale-while-revalidate in seconds: see {@link HermesOptions.staleWhileRevalidate}. @default the cache's */
  staleWhileRevalidate?: number | undefined;
  /** Function timeouts: see {@link HermesOptions.timeout}. @default the cache's */
  timeout?: TimeoutOptions | undefined;
  /** TTL jitter fraction: see {@link HermesOptions.jitter}. @default the cache's */
  jitter?: number | undefined;
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
  /** A call served from the cache. */
  hit: [event: { key: string; stale: false }];
  /** A call that found no usable entry (before it computes or waits). */
  miss: [event: { key: string }];
  /**
   * A stale value served: `locked` (another caller refreshes it), `revalidating` (this caller
   * refreshes it in the background), `timeout` (the refresh passed `timeout.soft`), `error`
   * (the refresh threw; `error` holds why).
   */
  stale: [event: { key: string; reason: StaleReason; error: unknown }];
  /** A computation of the function finished, or threw (`ok: false`). */
  compute: [event: { key: string; durationMs: number; ok: boolean }];
  /** A caller waited for another caller's computation (`woken`: by its release, else timed out). */
  wait: [event: { key: string; waitedMs: number; woken: boolean }];
  /** A call ran the function without the cache: the read failed, or the circuit breaker is open. */
  fallback: [event: { key: string; reason: 'read-failed' | 'circuit-open' }];
}

/** Why a stale value was served; see the `stale` event. */
export type StaleReason = 'locked' | 'revalidating' | 'timeout' | 'error';

/** Counters of a {@link Hermes}, from {@link Hermes.stats}. */
export interface HermesStats {
  /** Calls served from the cache (fresh). */
  hits: number;
  /** Calls that found no usable entry. */
  misses: number;
  /** Stale values served (grace, stale-while-revalidate). */
  staleServed: number;
  /** Waits for another caller's computation, and their total duration in milliseconds. */
  lockWaits: number;
  /** Total milliseconds spent waiting for other callers' computations. */
  lockWaitMs: number;
  /** Calls of the wrapped functions made to compute a value. */
  computations: number;
  /** Calls answered with a {@link TimeoutError}. */
  timeouts: number;
  /** Calls that ran the function without the cache (backend failed, breaker open). */
  fallbacks: number;
  /** Absorbed cache-layer errors (the `error` events), by code. */
  errors: Partial<Record<HermesErrorCode, number>>;
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
  'grace',
  'staleWhileRevalidate',
  'timeout',
  'jitter',
  'backendTimeout',
  'circuitBreaker',
  'serializer',
  'compressor',
  'compressThreshold',
]);

const ARGS_MEMO_SIZE = 2048;
const ARGS_MEMO_MAX_LENGTH = 1024;

type AnyFunction = (...args: never[]) => unknown;

/** The compiled form of one wrapped function, shared by every call. */
interface Wrapped {
  readonly fn: (...args: unknown[]) => unknown;
  readonly name: string;
  readonly tags: readonly string[];
  readonly tagKeys: readonly string[];
  readonly ttlMs: number;
  /** Grace and stale-while-revalidate windows, and how long past `ttl` entries are kept. */
  readonly graceMs: number;
  readonly swrMs: number;
  readonly keepMs: number;
  /** Function timeouts; 0 when unset. */
  readonly softMs: number;
  readonly hardMs: number;
  readonly jitter: number;
  readonly key: ((...args: unknown[]) => string) | undefined;
  readonly memo: Map<string, string>;
}

/** One call in flight: what every step after the read needs. */
interface Call {
  readonly wrapped: Wrapped;
  readonly thisArg: unknown;
  readonly args: unknown[];
  readonly backend: Backend;
  readonly request: ReadRequest;
  /** The circuit breaker of the part of the store that serves the entry. */
  readonly breaker: BreakerState;
}

/** One circuit breaker: of the whole backend, or of one of its failure domains. */
interface BreakerState {
  failures: number;
  openUntil: number;
  probing: boolean;
}

/** Failure domains remembered at most (a cluster's masters, over its failovers). */
const MAX_BREAKERS = 1024;

/** How long a stale value is written back fresh after its refresh failed (grace). */
const STALE_RETRY_MS = 5000;

/**
 * Tracing channels (`node:diagnostics_channel`) around reads, writes and computations, so
 * that OpenTelemetry or any tracer can hook in: subscribe to `hermes:read`, `hermes:write`,
 * `hermes:compute`. The context carries `key` and `name`.
 */
const readChannel = tracingChannel<object, { key: string; name: string }>('hermes:read');
const writeChannel = tracingChannel<object, { key: string; name: string }>('hermes:write');
const computeChannel = tracingChannel<object, { key: string; name: string }>('hermes:compute');

/**
 * Runs `fn` inside a tracing channel when anybody listens, directly otherwise (then no context
 * object is built: this runs on every read).
 */
function traced<T>(channel: TracingChannel<object, { key: string; name: string }>, fn: () => Promise<T>, key: string, name: string): Promise<T> {
  if (!channel.start.hasSubscribers && !channel.asyncEnd.hasSubscribers && !channel.error.hasSubscribers) return fn();
  return channel.tracePromise(fn, { key, name });
}

/** Rejects if `promise` has not settled within `ms` (the backend deadline). */
function withDeadline<T>(promise: Promise<T>, ms: number, operation: string, onLate?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onLate?.();
      reject(new Error(`${operation} timed out after ${ms} ms (backendTimeout)`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
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
  /** Retries of lock releases the store refused (see {@link Hermes.#releaseLater}). */
  readonly #releaseTimers = new Set<NodeJS.Timeout>();
  #closing = false;
  #warned = false;
  readonly #backendTimeout: number;
  readonly #circuit: { failures: number; cooldown: number } | undefined;
  /** The breaker of backends without failure domains, and of entries outside any. */
  readonly #breaker: BreakerState = { failures: 0, openUntil: 0, probing: false };
  /** The breakers of a backend's failure domains (see {@link Backend.failureDomain}). */
  readonly #breakers = new Map<string, BreakerState>();
  readonly #defaults: Pick<Wrapped, 'graceMs' | 'swrMs' | 'softMs' | 'hardMs' | 'jitter'>;
  readonly #counters: HermesStats = {
    hits: 0,
    misses: 0,
    staleServed: 0,
    lockWaits: 0,
    lockWaitMs: 0,
    computations: 0,
    timeouts: 0,
    fallbacks: 0,
    errors: {},
  };
  /** Whether anybody listens to the per-call events (hit, miss, compute, wait, fallback). */
  #observed = false;

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
    const [softMs, hardMs] = options.timeout === undefined ? [0, 0] : validateTimeout(options.timeout);
    this.#defaults = {
      graceMs: options.grace === undefined ? 0 : validateSeconds(options.grace, 'grace'),
      swrMs: options.staleWhileRevalidate === undefined ? 0 : validateSeconds(options.staleWhileRevalidate, 'staleWhileRevalidate'),
      softMs,
      hardMs,
      jitter: options.jitter === undefined ? 0.1 : validateJitter(options.jitter),
    };
    this.#backendTimeout = validateMs(options.backendTimeout ?? 250, 'backendTimeout', 1);
    const circuit = options.circuitBreaker ?? {};
    if (circuit === false) {
      this.#circuit = undefined;
    } else {
      if (typeof circuit !== 'object') throw new OptionError('circuitBreaker', 'circuitBreaker must be false or { failures, cooldown }');
      const failures = circuit.failures ?? 5;
      if (!Number.isSafeInteger(failures) || failures < 1) {
        throw new OptionError('circuitBreaker', 'circuitBreaker.failures must be a positive integer');
      }
      this.#circuit = { failures, cooldown: validateMs(circuit.cooldown ?? 1000, 'circuitBreaker', 1) };
    }
    const perCall = new Set<string | symbol>(['hit', 'miss', 'compute', 'wait', 'fallback']);
    const recount = (): void => {
      this.#observed = [...perCall].some((event) => this.listenerCount(event as keyof HermesEvents) > 0);
    };
    const emitter = this as unknown as EventEmitter; // the typed map has no listener events
    emitter.on('newListener', (event: string | symbol) => {
      if (perCall.has(event)) this.#observed = true;
    });
    emitter.on('removeListener', (event: string | symbol) => {
      if (perCall.has(event)) queueMicrotask(recount);
    });
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
        return this.#decorate(target as AnyFunction, String(context.name), undefined, options, context);
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
    if (tags !== undefined) validateTags(tags);
    // Calls in flight now, or started while the store is being cleaned (they may read it
    // before the deletion), must not be joined by calls made after clean() resolves.
    this.#inflight.clear();
    try {
      if (tags === undefined) {
        await this.#callBackend('clear', undefined, () => backend.clear(this.keyspace.prefix));
        return;
      }
      if (tags.length === 0) return;
      const tagKeys = tags.map((tag) => this.keyspace.tagKey(tag));
      await this.#callBackend('cleanTags', tagKeys[0], () => backend.cleanTags(tagKeys));
    } finally {
      this.#inflight.clear();
    }
  }

  /** Releases the backend's connections and timers so the process can exit. */
  async close(): Promise<void> {
    this.#inflight.clear();
    this.#closing = true;
    for (const timer of this.#releaseTimers) clearTimeout(timer);
    this.#releaseTimers.clear();
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
      ...this.#policy(options),
      key: options.key,
      memo: new Map(),
    };
  }

  /** The stale, timeout and jitter settings of a function: its own options over the cache's. */
  #policy(options: WrapOptions): Pick<Wrapped, 'graceMs' | 'swrMs' | 'keepMs' | 'softMs' | 'hardMs' | 'jitter'> {
    const d = this.#defaults;
    const graceMs = options.grace === undefined ? d.graceMs : validateSeconds(options.grace, 'grace');
    const swrMs =
      options.staleWhileRevalidate === undefined ? d.swrMs : validateSeconds(options.staleWhileRevalidate, 'staleWhileRevalidate');
    const [softMs, hardMs] = options.timeout === undefined ? [d.softMs, d.hardMs] : validateTimeout(options.timeout);
    const jitter = options.jitter === undefined ? d.jitter : validateJitter(options.jitter);
    return { graceMs, swrMs, keepMs: Math.max(graceMs, swrMs), softMs, hardMs, jitter };
  }

  /**
   * A snapshot of the cache's counters since it was created: hits, misses, stale values
   * served, lock waits and their total time, computations, timeouts, fallbacks, and absorbed
   * errors by code.
   */
  stats(): HermesStats {
    return { ...this.#counters, errors: { ...this.#counters.errors } };
  }

  #makeCachedFunction<Args extends unknown[], Result>(wrapped: Wrapped): CachedFunction<Args, Result> {
    const hermes = this;
    const cachedFunction = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      return hermes.#call(wrapped, this, args);
    } as unknown as CachedFunction<Args, Result>;
    Object.defineProperties(cachedFunction, {
      name: { value: wrapped.fn.name || wrapped.name },
      [WRAPS]: { value: wrapped.fn },
      cacheName: { value: wrapped.name, enumerable: true },
      tags: { value: Object.freeze([...wrapped.tags]), enumerable: true },
      invalidate: { value: (...args: Args) => this.#invalidate(wrapped, args) },
      key: { value: (...args: Args) => this.#entryKey(wrapped, args) },
    });
    return cachedFunction;
  }

  #decorate(
    method: AnyFunction,
    methodName: string,
    className: string | undefined,
    options: WrapOptions,
    context?: ClassMethodDecoratorContext,
  ): AnyFunction {
    // The class name of a TC39-decorated method is not known at decoration time: it is found
    // from the object that owns the replacement method in the prototype chain of an instance
    // (or of the class, for a static method) — when one is constructed (an initializer), or at
    // the first call.
    let wrapped: Wrapped | undefined =
      className !== undefined || options.name !== undefined
        ? this.#compile(method, options, `${className ?? ''}.${methodName}`)
        : undefined;
    let owner: string | undefined;
    const hermes = this;
    const resolve = (self: unknown): Wrapped => {
      if (wrapped) return wrapped;
      owner ??= findOwner(self, methodName, replacement);
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
    context?.addInitializer(function (this: unknown) {
      if (owner === undefined && wrapped === undefined) owner = findOwner(this, methodName, replacement, false);
    });
    Object.defineProperties(replacement, {
      name: { value: method.name },
      [WRAPS]: { value: method },
      invalidate: {
        value(this: unknown, ...args: unknown[]): Promise<void> {
          try {
            return hermes.#invalidate(resolve(this), args);
          } catch (error) {
            return Promise.reject(error);
          }
        },
      },
      key: {
        value(this: unknown, ...args: unknown[]) {
          return hermes.#entryKey(resolve(this), args);
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
      // Only short argument lists are memoised: a memo of huge canonical strings would pin them.
      if (canonical.length <= ARGS_MEMO_MAX_LENGTH) {
        if (memo.size >= ARGS_MEMO_SIZE) memo.clear();
        memo.set(canonical, entryKey);
      }
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
    let corrupt: ReadReply | undefined;
    if (backend.readSync) {
      // In-process store: a fresh hit is served without a promise hop, a lock token or a lock key.
      let peek: ReadReply | undefined;
      try {
        peek = backend.readSync({ entryKey, tagKeys: wrapped.tagKeys, lockKey: '', lockToken: undefined, lockTtlMs: 0 });
      } catch {
        peek = undefined; // retried (and reported) by the asynchronous path
      }
      if (peek?.entry !== undefined && !peek.stale) {
        const record = this.#decode(entryKey, peek.entry);
        if (record !== undefined) {
          this.#counters.hits++;
          if (this.#observed) this.emit('hit', { key: entryKey, stale: false });
          return Promise.resolve(record.value);
        }
        corrupt = peek; // reported once by #decode; recomputed and overwritten below
      }
    }
    const call: Call = {
      wrapped,
      thisArg,
      args,
      backend,
      request: {
        entryKey,
        tagKeys: wrapped.tagKeys,
        lockKey: this.keyspace.lockKeyOf(entryKey),
        lockToken: uniqueToken(),
        lockTtlMs: this.#lockTimeout,
      },
      breaker: this.#breakerOf(backend, entryKey),
    };
    let promise: Promise<unknown>;
    if (corrupt !== undefined) {
      promise = this.#recoverCorrupt(call);
    } else if (!this.#breakerAllows(call.breaker)) {
      // The backend failed repeatedly: skip it until the breaker's cooldown ends.
      promise = this.#fallBack(call, 'circuit-open');
    } else {
      // A fresh hit is the read's promise and one reaction, no async frames.
      promise = this.#read(call).then(
        (reply) => {
          this.#breakerSuccess(call.breaker);
          if (reply.entry !== undefined && !reply.stale) {
            const record = this.#decode(entryKey, reply.entry);
            if (record !== undefined) {
              this.#counters.hits++;
              if (this.#observed) this.emit('hit', { key: entryKey, stale: false });
              return record.value;
            }
            // Corrupt bytes: delete them, then a miss like any other (under the lock).
            return this.#recoverCorrupt(call);
          }
          return this.#resolve(call, reply, Date.now() + this.#lockWait);
        },
        (error: unknown) => this.#readFailed(call, error),
      );
    }
    this.#inflight.set(entryKey, promise);
    const forget = (): void => {
      if (this.#inflight.get(entryKey) === promise) this.#inflight.delete(entryKey);
    };
    promise.then(forget, forget);
    return promise;
  }

  /** One read, under the backend deadline, traced on `hermes:read`. */
  #read(call: Call): Promise<ReadReply> {
    const { backend, request } = call;
    const run = (): Promise<ReadReply> => {
      let read: Promise<ReadReply>;
      try {
        read = backend.read(request);
      } catch (error) {
        return Promise.reject(error);
      }
      if (backend.readSync) return read;
      return withDeadline(read, this.#backendTimeout, 'read', () => {
        // The late read may still take the lock for this caller, who falls open and never
        // writes: a release sent now follows it on the same connection and frees the lock.
        const { lockKey, lockToken } = request;
        if (lockToken !== undefined) {
          const release = (): void => {
            backend.release(lockKey, lockToken).catch(() => {
              this.#releaseLater(backend, lockKey, lockToken);
            });
          };
          release();
          // A client that retries commands (Redis Cluster during a failover) may run the read
          // after that release: if it answers that it took the lock, release it again.
          read.then((reply) => {
            if (reply.locked) release();
          }, () => undefined);
        }
      });
    };
    return traced(readChannel, run, request.entryKey, call.wrapped.name);
  }

  /** A read failed: fall open to the function, uncached. */
  #readFailed(call: Call, error: unknown): Promise<unknown> {
    this.#breakerFailure(call.breaker);
    this.#absorb(new BackendError('read', call.request.entryKey, error));
    return this.#fallBack(call, 'read-failed');
  }

  /** Runs the function without the cache: the backend failed or its breaker is open. */
  #fallBack(call: Call, reason: 'read-failed' | 'circuit-open'): Promise<unknown> {
    this.#counters.fallbacks++;
    if (this.#observed) this.emit('fallback', { key: call.request.entryKey, reason });
    try {
      return Promise.resolve(call.wrapped.fn.apply(call.thisArg, call.args));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A fresh hit whose bytes do not decode (reported by #decode): the entry is deleted, then read
   * again like a miss, so that the recompute holds the lock and its write is dropped if an
   * invalidation happens meanwhile. Costs two more requests, on corrupt bytes only.
   */
  async #recoverCorrupt(call: Call): Promise<unknown> {
    const { backend, request } = call;
    try {
      const deleting = backend.invalidate(request.entryKey, request.lockKey);
      await (backend.readSync ? deleting : withDeadline(deleting, this.#backendTimeout, 'invalidate'));
    } catch (error) {
      return this.#readFailed(call, error);
    }
    let reply: ReadReply;
    try {
      reply = await this.#read(call);
    } catch (error) {
      return this.#readFailed(call, error);
    }
    return this.#resolve(call, reply, Date.now() + this.#lockWait);
  }

  /** Everything after a read that was not a fresh hit: stale values, locks, waits. */
  async #resolve(call: Call, first: ReadReply, deadline: number): Promise<unknown> {
    const { wrapped, request } = call;
    let reply = first;
    let counted = false;
    for (;;) {
      if (reply.entry !== undefined) {
        const record = this.#decode(request.entryKey, reply.entry);
        if (record === undefined) {
          // Corrupt again right after they were deleted (see #recoverCorrupt): served, not stored.
          if (!reply.stale) return this.#produce(call, reply.tagHash, undefined, undefined, false);
          // Corrupt and stale: the read tried the lock, as on a miss.
        } else if (!reply.stale) {
          this.#counters.hits++;
          if (this.#observed) this.emit('hit', { key: request.entryKey, stale: false });
          return record.value;
        } else if (wrapped.keepMs > 0) {
          return this.#serveStale(call, record, reply);
        }
        // Past its fresh time without grace or stale-while-revalidate: a miss.
      }
      if (!counted) {
        counted = true;
        this.#counters.misses++;
        if (this.#observed) this.emit('miss', { key: request.entryKey });
      }
      if (reply.locked) return this.#produce(call, reply.tagHash, request.lockToken, undefined);
      const remaining = deadline - Date.now();
      // Waited long enough for another caller: compute without the lock, and serve the result
      // without storing it (an unlocked write could overwrite an invalidation made meanwhile;
      // the lock holder stores its own result).
      if (remaining <= 0) return this.#produce(call, reply.tagHash, undefined, undefined, false);
      const started = Date.now();
      let woken: boolean;
      try {
        woken = await call.backend.waitForRelease(request.lockKey, remaining);
      } catch (error) {
        this.#absorb(new BackendError('wait', request.lockKey, error));
        return this.#produce(call, reply.tagHash, undefined, undefined, false);
      }
      const waited = Date.now() - started;
      this.#counters.lockWaits++;
      this.#counters.lockWaitMs += waited;
      if (this.#observed) this.emit('wait', { key: request.entryKey, waitedMs: waited, woken });
      try {
        reply = await this.#read(call);
      } catch (error) {
        return this.#readFailed(call, error);
      }
    }
  }

  /**
   * A stale value (past its fresh time, within grace or stale-while-revalidate). Without the
   * lock: served at once. With it, within stale-while-revalidate: served at once while this
   * caller refreshes in the background. Within grace: recomputed now, the stale value served
   * if the function fails or passes its soft timeout.
   */
  #serveStale(call: Call, record: EntryRecord, reply: ReadReply): unknown {
    const { wrapped, request } = call;
    if (!reply.locked) return this.#stale(call, record, 'locked', undefined);
    if (Date.now() - record.freshUntil <= wrapped.swrMs) {
      const refresh = this.#compute(call, reply.tagHash, request.lockToken, record);
      refresh.catch((error: unknown) => this.#stale(call, record, 'error', error));
      return this.#stale(call, record, 'revalidating', undefined);
    }
    return this.#produce(call, reply.tagHash, request.lockToken, record);
  }

  /** Counts and reports a stale value served; returns it. */
  #stale(call: Call, record: EntryRecord, reason: StaleReason, error: unknown): unknown {
    this.#counters.staleServed++;
    if (this.listenerCount('stale') > 0) this.emit('stale', { key: call.request.entryKey, reason, error });
    return record.value;
  }

  /**
   * Computes and stores a value, and waits for it under the function timeouts: past `soft`,
   * a caller with a stale value gets it (the computation goes on and refreshes the entry);
   * past `hard`, the caller gets a {@link TimeoutError} (the result is still cached). A
   * function that throws with a stale value at hand serves the stale value.
   */
  #produce(call: Call, tagHash: string, lockToken: string | undefined, stale: EntryRecord | undefined, store = true): Promise<unknown> {
    const computation = this.#compute(call, tagHash, lockToken, stale, store);
    const { softMs, hardMs } = call.wrapped;
    if (stale === undefined && hardMs === 0) return computation;
    const limitMs = stale !== undefined ? softMs || hardMs : hardMs;
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer =
        limitMs > 0
          ? setTimeout(() => {
              if (settled) return;
              settled = true;
              if (stale !== undefined) {
                resolve(this.#stale(call, stale, 'timeout', undefined));
              } else {
                this.#counters.timeouts++;
                reject(new TimeoutError(call.request.entryKey, limitMs));
              }
            }, limitMs)
          : undefined;
      computation.then(
        (value) => {
          if (timer) clearTimeout(timer);
          if (settled) return;
          settled = true;
          resolve(value);
        },
        (error: unknown) => {
          if (timer) clearTimeout(timer);
          if (settled) return;
          settled = true;
          if (stale !== undefined) resolve(this.#stale(call, stale, 'error', error));
          else reject(error);
        },
      );
    });
  }

  /**
   * The refresh of a stale value threw: the stale value is written back fresh for a short while
   * (`STALE_RETRY_MS`, within what is left of its grace window) so that the next callers are
   * served it instead of calling a failing function again. Written with the lock token, in the
   * same request that releases the lock, so that it can never overwrite a newer value.
   * Resolves `true` if the lock was released by the write.
   */
  async #keepStale(call: Call, record: EntryRecord, tagHash: string, lockToken: string): Promise<boolean> {
    const { wrapped, request, backend } = call;
    const now = Date.now();
    const keepUntil = record.freshUntil + wrapped.keepMs;
    if (keepUntil <= now) return false;
    const retryMs = Math.min(STALE_RETRY_MS, wrapped.ttlMs);
    const rewritten: EntryRecord = { tagHash, freshUntil: now + retryMs, value: record.value };
    try {
      const entry = backend.storesBytes ? this.codec.encode(rewritten) : rewritten;
      const ttlMs = Math.max(retryMs, keepUntil - now);
      await backend.write({ entryKey: request.entryKey, entry, ttlMs, lockKey: request.lockKey, lockToken });
      return true;
    } catch (error) {
      this.#absorbQuietly(new BackendError('write', request.entryKey, error));
      return false;
    }
  }

  /**
   * Runs the function and stores its result with the tag hash captured before it ran (an
   * invalidation meanwhile makes the entry invalid at birth), releasing the lock. Rejects
   * with the function's error, having released the lock and stored nothing.
   */
  async #compute(
    call: Call,
    tagHash: string,
    lockToken: string | undefined,
    stale: EntryRecord | undefined,
    store = true,
  ): Promise<unknown> {
    const { wrapped, request, backend } = call;
    const { entryKey, lockKey } = request;
    this.#counters.computations++;
    const started = Date.now();
    let value: unknown;
    try {
      value = await traced(computeChannel, async () => wrapped.fn.apply(call.thisArg, call.args), entryKey, wrapped.name);
    } catch (error) {
      if (this.#observed) this.emit('compute', { key: entryKey, durationMs: Date.now() - started, ok: false });
      if (stale !== undefined && lockToken !== undefined && (await this.#keepStale(call, stale, tagHash, lockToken))) throw error;
      if (lockToken !== undefined) {
        try {
          await backend.release(lockKey, lockToken);
        } catch (releaseError) {
          this.#absorbQuietly(new BackendError('release', lockKey, releaseError));
          this.#releaseLater(backend, lockKey, lockToken);
        }
      }
      throw error;
    }
    if (this.#observed) this.emit('compute', { key: entryKey, durationMs: Date.now() - started, ok: true });
    if (!store) return value;
    // TTL jitter spreads the expiries of entries written together.
    const freshMs = wrapped.jitter > 0 ? Math.max(1, Math.round(wrapped.ttlMs * (1 - wrapped.jitter * Math.random()))) : wrapped.ttlMs;
    const record: EntryRecord = { tagHash, freshUntil: Date.now() + freshMs, value };
    let entry: StoredEntry = record;
    if (backend.storesBytes) {
      try {
        entry = this.codec.encode(record);
      } catch (error) {
        this.#absorbQuietly(new SerializationError(entryKey, error));
        if (lockToken !== undefined) {
          await backend.release(lockKey, lockToken).catch((e: unknown) => {
            this.#absorbQuietly(new BackendError('release', lockKey, e));
            this.#releaseLater(backend, lockKey, lockToken);
          });
        }
        return value;
      }
    }
    const ttlMs = freshMs + wrapped.keepMs;
    try {
      const write = (): Promise<boolean> => {
        const writing = backend.write({ entryKey, entry, ttlMs, lockKey, lockToken });
        return backend.readSync ? writing : withDeadline(writing, this.#backendTimeout, 'write');
      };
      await traced(writeChannel, write, entryKey, wrapped.name);
      this.#breakerSuccess(call.breaker);
    } catch (error) {
      this.#breakerFailure(call.breaker);
      // Free the waiters now rather than at the lock's expiry, if the store still answers.
      if (lockToken !== undefined) {
        await backend.release(lockKey, lockToken).catch(() => {
          this.#releaseLater(backend, lockKey, lockToken);
        });
      }
      this.#absorb(new BackendError('write', entryKey, error));
    }
    return value;
  }

  /**
   * A lock this process holds could not be released (the store was failing over, or
   * unreachable): the lock would block every other caller of the entry, in every process, until
   * it expires (`lockTimeout`). Retried in the background — 100 ms, then doubling up to 1 s —
   * until it succeeds or the lock has expired anyway. Safe to repeat: a release deletes the lock
   * only while it still holds this token.
   */
  #releaseLater(backend: Backend, lockKey: string, lockToken: string): void {
    const giveUpAt = Date.now() + this.#lockTimeout;
    let delay = 100;
    const attempt = (): void => {
      const timer = setTimeout(() => {
        this.#releaseTimers.delete(timer);
        backend.release(lockKey, lockToken).catch(() => {
          delay = Math.min(delay * 2, 1000);
          if (Date.now() + delay < giveUpAt && !this.#closing) attempt();
        });
      }, delay);
      timer.unref();
      this.#releaseTimers.add(timer);
    };
    attempt();
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

  /**
   * The breaker of the part of the store that serves `entryKey`: its failure domain's, when
   * the backend has domains (a cluster's masters), so that one failing master does not send
   * the calls of the others around the cache; else the backend's one breaker.
   */
  #breakerOf(backend: Backend, entryKey: string): BreakerState {
    if (backend.failureDomain === undefined || this.#circuit === undefined) return this.#breaker;
    let domain: string | undefined;
    try {
      domain = backend.failureDomain(entryKey);
    } catch {
      domain = undefined;
    }
    if (domain === undefined || domain === '') return this.#breaker;
    let breaker = this.#breakers.get(domain);
    if (breaker === undefined) {
      if (this.#breakers.size >= MAX_BREAKERS) this.#breakers.clear();
      breaker = { failures: 0, openUntil: 0, probing: false };
      this.#breakers.set(domain, breaker);
    }
    return breaker;
  }

  /** Whether a wrapped call may use the backend: its circuit breaker is closed, or probing. */
  #breakerAllows(breaker: BreakerState): boolean {
    if (breaker.openUntil === 0) return true;
    if (Date.now() < breaker.openUntil || breaker.probing) return false;
    breaker.probing = true; // half-open: one call probes the backend
    return true;
  }

  #breakerSuccess(breaker: BreakerState): void {
    breaker.failures = 0;
    breaker.openUntil = 0;
    breaker.probing = false;
  }

  #breakerFailure(breaker: BreakerState): void {
    if (this.#circuit === undefined) return;
    breaker.failures++;
    breaker.probing = false;
    if (breaker.failures >= this.#circuit.failures) breaker.openUntil = Date.now() + this.#circuit.cooldown;
  }

  async #invalidate(wrapped: Wrapped, args: readonly unknown[]): Promise<void> {
    const entryKey = this.#entryKey(wrapped, args);
    this.#inflight.delete(entryKey);
    const backend = this.backend;
    const lockKey = this.keyspace.lockKeyOf(entryKey);
    try {
      await this.#callBackend('invalidate', entryKey, () => backend.invalidate(entryKey, lockKey));
    } finally {
      // A call of the entry started meanwhile may have read it before the deletion: calls made
      // after invalidate() resolves must not join it.
      this.#inflight.delete(entryKey);
    }
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
    const errors = this.#counters.errors;
    errors[error.code] = (errors[error.code] ?? 0) + 1;
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

/**
 * Marks a function that hermes built around another (a decorated method's replacement, a
 * wrapped function): the function it calls. Lets {@link findOwner} see through stacked caches.
 */
const WRAPS = Symbol('hermes.wraps');

/** Whether `candidate` is `replacement`, or a hermes wrapper around it (at any depth). */
function wrapsReplacement(candidate: unknown, replacement: unknown): boolean {
  for (let fn = candidate; typeof fn === 'function'; fn = (fn as { [WRAPS]?: unknown })[WRAPS]) {
    if (fn === replacement) return true;
  }
  return false;
}

/**
 * The name of the class that defines a decorated method: the owner of `replacement` (or of a
 * hermes wrapper around it) in `self`'s prototype chain. Without `strict`, `undefined` when
 * not found (an initializer must not break the construction of the instance).
 */
function findOwner(self: unknown, methodName: string, replacement: unknown): string;
function findOwner(self: unknown, methodName: string, replacement: unknown, strict: false): string | undefined;
function findOwner(self: unknown, methodName: string, replacement: unknown, strict = true): string | undefined {
  let hidden = false;
  let obj = self as Record<string, unknown> | null;
  while (obj !== null && obj !== undefined && (typeof obj === 'object' || typeof obj === 'function')) {
    if (Object.prototype.hasOwnProperty.call(obj, methodName)) {
      if (wrapsReplacement(obj[methodName], replacement)) {
        return typeof obj === 'function' ? (obj as { name: string }).name : (obj.constructor as { name: string }).name;
      }
      hidden = true;
    }
    obj = Object.getPrototypeOf(obj) as Record<string, unknown> | null;
  }
  if (!strict) return undefined;
  const cause = hidden
    ? `another decorator wraps it on top of @cached(), so the class that defines it cannot be found`
    : `no instance of its class has been constructed or called through yet`;
  throw new OptionError(
    'name',
    `Cannot tell which class defines the cached method '${methodName}': ${cause}. Pass a { name } option to cached(), e.g. @cache.cached({ name: 'MyClass.${methodName}' })`,
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

function validateSeconds(value: unknown, option: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new OptionError(option, `${option} must be a number of seconds >= 0, got ${String(value)}`);
  }
  return Math.round(value * 1000);
}

function validateJitter(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    throw new OptionError('jitter', `jitter must be a fraction of the TTL in [0, 1), got ${String(value)}`);
  }
  return value;
}

/** `[soft, hard]` in milliseconds, 0 when unset. */
function validateTimeout(timeout: unknown): [number, number] {
  if (timeout === null || typeof timeout !== 'object') throw new OptionError('timeout', 'timeout must be { soft?, hard? } in milliseconds');
  const { soft, hard } = timeout as TimeoutOptions;
  const softMs = soft === undefined ? 0 : validateMs(soft, 'timeout', 1);
  const hardMs = hard === undefined ? 0 : validateMs(hard, 'timeout', 1);
  if (softMs > 0 && hardMs > 0 && softMs > hardMs) {
    throw new OptionError('timeout', `timeout.soft (${softMs} ms) must not exceed timeout.hard (${hardMs} ms)`);
  }
  return [softMs, hardMs];
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
  if (options.grace !== undefined) validateSeconds(options.grace, 'grace');
  if (options.staleWhileRevalidate !== undefined) validateSeconds(options.staleWhileRevalidate, 'staleWhileRevalidate');
  if (options.timeout !== undefined) validateTimeout(options.timeout);
  if (options.jitter !== undefined) validateJitter(options.jitter);
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
