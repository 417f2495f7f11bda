/**
 * The options of a cache and of its wrapped functions: their types with TSDoc (the one place
 * they are documented), their defaults in one object ({@link CACHE_DEFAULTS}), and the
 * functions that validate and parse them once, at construction and at `wrap` time.
 *
 * @module
 */

import type { CodecOptions } from './codec.js';
import { OptionError } from './errors.js';

/**
 * A length of time as people write it: a number of seconds (fractions allowed), or a string of
 * a decimal number and a unit — `'500ms'`, `'90s'`, `'5m'`, `'1h'`, `'1d'` (no space, no sign).
 * Accepted by `ttl`, `grace` and `staleWhileRevalidate`; a string in any other form is an
 * {@link OptionError} naming the option and the string.
 */
export type Duration = number | `${number}ms` | `${number}s` | `${number}m` | `${number}h` | `${number}d`;

/** Options of a {@link Hermes} cache. Any other key is passed to the backend class. */
export interface HermesOptions extends CodecOptions {
  /**
   * How long entries stay fresh: seconds (fractions allowed) or a {@link Duration} string such
   * as `'10m'`. `wrap` can override it.
   * @default 3600
   */
  ttl?: Duration | undefined;
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
   * `invalidate` or a tag are never served, stale or not. `wrap` can override it. Seconds or a
   * {@link Duration} string (`'1h'`).
   * @default 0
   */
  grace?: Duration | undefined;
  /**
   * Stale-while-revalidate, in seconds: within this window past `ttl` every caller gets the
   * stale value at once, and one caller — across all processes, through the lock — refreshes
   * the entry in the background. `wrap` can override it. Seconds or a {@link Duration} string
   * (`'30s'`).
   * @default 0
   */
  staleWhileRevalidate?: Duration | undefined;
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
   * past it the call falls open to the function with an `error` event. When this process was
   * itself busy past the deadline (a burst of thousands of calls, a long synchronous task), the
   * answers that arrived meanwhile are read first: only calls the backend has not answered by
   * then fall open. Not applied to the in-process backend, which cannot hang.
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
  /**
   * Early refresh (probabilistic early recomputation, XFetch): a read of a fresh entry may
   * decide to refresh it before it expires, with a probability that rises as the expiry nears
   * and with how long the function took (stored in the entry). The caller that decides it and
   * takes the entry's lock gets the cached value at once and refreshes it in the background;
   * every other caller, in every process, keeps getting hits — so a hot entry is replaced
   * shortly before it expires instead of all its callers missing at once. On Redis the store
   * decides, inside its read script, with its own clock: no extra request. `true` is
   * `{ beta: 1 }`; a larger `beta` refreshes earlier. `wrap` can override it (`false` turns it off).
   * @default false
   */
  earlyRefresh?: EarlyRefreshOptions | boolean | undefined;
}

/** See {@link HermesOptions.earlyRefresh}. */
export interface EarlyRefreshOptions {
  /**
   * How early: the read refreshes when `now + computeMs × beta × -ln(random) >= freshUntil`,
   * `random` uniform in (0, 1]. `1` is the usual choice; `2` refreshes about twice as early; a
   * positive finite number.
   * @default 1
   */
  beta?: number | undefined;
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

/**
 * Options of {@link Hermes.wrap} and {@link Hermes.cached}. `Args` are the wrapped function's
 * parameters and `Result` its awaited result, so that the `key`, `tags`, `ttl` and `cacheIf`
 * functions see their real types (`wrap` infers both from the function; a decorator's options
 * have `Result` `unknown` unless given: `cache.cached<[id: number], User>({ … })`).
 */
export interface WrapOptions<Args extends unknown[] = unknown[], Result = unknown> {
  /**
   * Tags of the function's entries: `cache.clean(['tag'])` invalidates every entry carrying
   * `'tag'`. Non-empty strings, or a function of the call's arguments returning them — e.g.
   * `(id) => ['user:' + id]`, so that `clean(['user:42'])` drops exactly that user's entries.
   *
   * A tag function is called once per call, before the read (a hit still costs one request),
   * with the arguments only (not `this`); it must be deterministic, since its tags are part of
   * what a hit is checked against. A call whose tag function throws rejects with that error, and
   * one whose function returns anything but an array of non-empty strings rejects with an
   * {@link OptionError} (option `tags`); nothing is read or computed for it.
   * @default []
   */
  tags?: readonly string[] | ((...args: Args) => readonly string[]) | undefined;
  /**
   * How long this function's entries stay fresh: a {@link Duration} (seconds or a string such
   * as `'5m'`), or a function of the result and the arguments returning one — e.g. short for
   * an empty result: `(users) => (users.length === 0 ? '30s' : '1h')`. Overrides the cache's
   * `ttl`; `jitter` shortens what it returns as it does a fixed TTL.
   *
   * A TTL function is called when a result is about to be stored (not for a result served
   * without being stored). Returning `0` stores nothing, as a `cacheIf` that rejects the result
   * does. A call whose TTL function throws, or returns a negative number or a string that is
   * not a duration (an {@link OptionError}, option `ttl`), rejects as if the wrapped function
   * had thrown: nothing is stored and the lock is released.
   * @default the cache's ttl
   */
  // The arguments' type is deferred through a conditional so that `Args` is not inferred from a
  // ttl function's parameters (one that takes the result only would make them `[]`).
  ttl?: Duration | ((result: Result, ...args: Args extends infer A extends unknown[] ? A : never) => Duration) | undefined;
  /**
   * Decides from the result (and the arguments) whether it is stored: `false` and the result is
   * returned to its caller but not cached, the lock is released, and callers waiting for it
   * compute (or read) again, as after a throw. Called, like a `ttl` function, when a result is
   * about to be stored; a `cacheIf` that throws rejects the call as if the wrapped function had.
   * Errors are never cached whatever it says: a function that throws stores nothing.
   * @default every result is stored
   */
  // Deferred as ttl's are.
  cacheIf?: ((result: Result, ...args: Args extends infer A extends unknown[] ? A : never) => boolean) | undefined;
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
  /** Grace for this function, seconds or a {@link Duration}: see {@link HermesOptions.grace}. @default the cache's */
  grace?: Duration | undefined;
  /** Stale-while-revalidate for this function, seconds or a {@link Duration}: see {@link HermesOptions.staleWhileRevalidate}. @default the cache's */
  staleWhileRevalidate?: Duration | undefined;
  /** Function timeouts: see {@link HermesOptions.timeout}. @default the cache's */
  timeout?: TimeoutOptions | undefined;
  /** TTL jitter fraction: see {@link HermesOptions.jitter}. @default the cache's */
  jitter?: number | undefined;
  /** Early refresh: see {@link HermesOptions.earlyRefresh}. @default the cache's */
  earlyRefresh?: EarlyRefreshOptions | boolean | undefined;
}

/**
 * The defaults of the cache's own options, in their documented units (seconds for `ttl`,
 * `grace`, `staleWhileRevalidate`; milliseconds for the rest).
 */
export const CACHE_DEFAULTS = Object.freeze({
  ttl: 3600,
  prefix: 'cache',
  lockTimeout: 10_000,
  lockWait: 10_000,
  failOpen: true,
  grace: 0,
  staleWhileRevalidate: 0,
  jitter: 0.1,
  backendTimeout: 250,
  circuitBreaker: Object.freeze({ failures: 5, cooldown: 1000 }),
});

/**
 * Every option `Hermes` reads itself, its codec's included: the rest of the options object goes
 * to the backend class. Typed as a record of every key of {@link HermesOptions}, so that an
 * option added there and forgotten here fails to compile instead of reaching the backend.
 */
const OWN_OPTION_NAMES: Record<keyof HermesOptions, true> = {
  ttl: true,
  prefix: true,
  lockTimeout: true,
  lockWait: true,
  failOpen: true,
  grace: true,
  staleWhileRevalidate: true,
  timeout: true,
  jitter: true,
  backendTimeout: true,
  circuitBreaker: true,
  earlyRefresh: true,
  serializer: true,
  classes: true,
  compressor: true,
  compressThreshold: true,
};

/** The names of the options `Hermes` reads itself (see {@link backendOptionsOf}). */
export const OWN_OPTIONS: ReadonlySet<string> = new Set(Object.keys(OWN_OPTION_NAMES));

/** The names of the options of `wrap()` and `cached()` ({@link WrapOptions}). */
const WRAP_OPTIONS: ReadonlySet<string> = new Set(
  Object.keys({
    tags: true,
    ttl: true,
    cacheIf: true,
    key: true,
    name: true,
    grace: true,
    staleWhileRevalidate: true,
    timeout: true,
    jitter: true,
    earlyRefresh: true,
  } satisfies Record<keyof WrapOptions, true>),
);
const TIMEOUT_OPTIONS: ReadonlySet<string> = new Set(Object.keys({ soft: true, hard: true } satisfies Record<keyof TimeoutOptions, true>));
const CIRCUIT_BREAKER_OPTIONS: ReadonlySet<string> = new Set(
  Object.keys({ failures: true, cooldown: true } satisfies Record<keyof CircuitBreakerOptions, true>),
);

/**
 * How a bad option value is shown in a message: strings quoted and named as strings (so that
 * `ttl: '60'` reads "got the string '60'"), other values as `String()` shows them.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return `an array`;
  if (typeof value === 'function') return 'a function';
  if (value !== null && typeof value === 'object') return 'an object';
  return String(value);
}

/**
 * The name among `known` closest to `name` by edit distance (Levenshtein), if it is close enough
 * to be a plausible misspelling (at most a third of the name's length, at least 1 edit); else
 * `undefined`.
 */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, with a transposition of two adjacent letters counted as one edit. */
function editDistance(a: string, b: string): number {
  const width = b.length + 1;
  const d = new Array<number>((a.length + 1) * width).fill(0);
  const at = (i: number, j: number): number => d[i * width + j] ?? 0;
  for (let i = 0; i <= a.length; i++) d[i * width] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, at(i - 2, j - 2) + 1);
      d[i * width + j] = distance;
    }
  }
  return at(a.length, b.length);
}

/**
 * Rejects the first key of `options` that is not in `known`, with an {@link OptionError} naming
 * it and the closest known name (a likely misspelling: `tll` for `ttl`). Keys whose value is
 * `undefined` are ignored like absent ones. `path` prefixes the option's name (`'timeout.'`).
 * @throws {@link OptionError} on an unknown option
 */
export function rejectUnknownOptions(options: object, known: ReadonlySet<string>, path = ''): void {
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || known.has(name)) continue;
    const closest = closestName(name, known);
    const hint = closest === undefined ? '' : `; did you mean '${path}${closest}'?`;
    throw new OptionError(`${path}${name}`, `Unknown option '${path}${name}'${hint}`);
  }
}

/** The part of an options object that is the backend's: every key that is not the cache's. */
export function backendOptionsOf(options: object): Record<string, unknown> {
  const backendOptions: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) if (!OWN_OPTIONS.has(k)) backendOptions[k] = v;
  return backendOptions;
}

/** The stale, timeout and jitter settings of a function, parsed: milliseconds, 0 when off. */
export interface StalePolicy {
  /** Grace window past the fresh time, ms. */
  readonly graceMs: number;
  /** Stale-while-revalidate window past the fresh time, ms. */
  readonly swrMs: number;
  /** How long past its fresh time an entry is kept: the larger of the two windows, ms. */
  readonly staleWindowMs: number;
  /** `timeout.soft`, ms; 0 when unset. */
  readonly softMs: number;
  /** `timeout.hard`, ms; 0 when unset. */
  readonly hardMs: number;
  /** TTL jitter, a fraction in [0, 1). */
  readonly jitter: number;
  /** Early refresh's beta; `undefined` when off. */
  readonly earlyBeta?: number | undefined;
}

/** The cache's options, validated and parsed once by {@link resolveCacheOptions}. */
export interface ResolvedCacheOptions {
  readonly ttlMs: number;
  readonly prefix: string;
  readonly lockTimeoutMs: number;
  readonly lockWaitMs: number;
  readonly failOpen: boolean;
  readonly backendTimeoutMs: number;
  /** The circuit breaker's settings; `undefined` when disabled. */
  readonly circuitBreaker: { readonly failures: number; readonly cooldownMs: number } | undefined;
  /** The stale, timeout and jitter defaults of wrapped functions. */
  readonly policy: StalePolicy;
}

/**
 * Validates the cache's own options and parses them into milliseconds.
 * @throws {@link OptionError} naming the first bad option
 */
export function resolveCacheOptions(options: HermesOptions): ResolvedCacheOptions {
  if (options === null || typeof options !== 'object') throw new OptionError('options', 'options must be an object');
  const d = CACHE_DEFAULTS;
  const prefix = options.prefix ?? d.prefix;
  if (typeof prefix !== 'string' || prefix.length === 0) {
    throw new OptionError('prefix', `prefix must be a non-empty string, got ${describeValue(prefix)}`);
  }
  const failOpen = options.failOpen ?? d.failOpen;
  if (typeof failOpen !== 'boolean') throw new OptionError('failOpen', `failOpen must be a boolean, got ${describeValue(failOpen)}`);
  validateCodecOptions(options);
  return {
    ttlMs: validateTtl(options.ttl ?? d.ttl, 'ttl'),
    prefix,
    lockTimeoutMs: validateMs(options.lockTimeout ?? d.lockTimeout, 'lockTimeout', 1),
    lockWaitMs: validateMs(options.lockWait ?? d.lockWait, 'lockWait', 0),
    failOpen,
    backendTimeoutMs: validateMs(options.backendTimeout ?? d.backendTimeout, 'backendTimeout', 1),
    circuitBreaker: resolveCircuitBreaker(options.circuitBreaker),
    policy: resolveStalePolicy(options, {
      graceMs: d.grace * 1000,
      swrMs: d.staleWhileRevalidate * 1000,
      staleWindowMs: 0,
      softMs: 0,
      hardMs: 0,
      jitter: d.jitter,
    }),
  };
}

function resolveCircuitBreaker(circuit: CircuitBreakerOptions | false | undefined): ResolvedCacheOptions['circuitBreaker'] {
  if (circuit === false) return undefined;
  if (circuit !== undefined && circuit !== null && typeof circuit !== 'object') {
    throw new OptionError('circuitBreaker', 'circuitBreaker must be false or { failures, cooldown }');
  }
  const defaults = CACHE_DEFAULTS.circuitBreaker;
  if (circuit != null) rejectUnknownOptions(circuit, CIRCUIT_BREAKER_OPTIONS, 'circuitBreaker.');
  const failures = circuit?.failures ?? defaults.failures;
  if (!Number.isSafeInteger(failures) || failures < 1) {
    throw new OptionError('circuitBreaker', `circuitBreaker.failures must be a positive integer, got ${describeValue(failures)}`);
  }
  return { failures, cooldownMs: validateMs(circuit?.cooldown ?? defaults.cooldown, 'circuitBreaker', 1) };
}

/**
 * The stale, timeout and jitter settings given in `options` (a cache's or a function's), over
 * `defaults`; validated once.
 */
export function resolveStalePolicy(
  options: Pick<WrapOptions, 'grace' | 'staleWhileRevalidate' | 'timeout' | 'jitter' | 'earlyRefresh'>,
  defaults: StalePolicy,
): StalePolicy {
  const graceMs = options.grace === undefined ? defaults.graceMs : validateSeconds(options.grace, 'grace');
  const swrMs =
    options.staleWhileRevalidate === undefined
      ? defaults.swrMs
      : validateSeconds(options.staleWhileRevalidate, 'staleWhileRevalidate');
  const [softMs, hardMs] =
    options.timeout === undefined ? [defaults.softMs, defaults.hardMs] : validateTimeout(options.timeout);
  const jitter = options.jitter === undefined ? defaults.jitter : validateJitter(options.jitter);
  const earlyBeta = options.earlyRefresh === undefined ? defaults.earlyBeta : validateEarlyRefresh(options.earlyRefresh);
  return { graceMs, swrMs, staleWindowMs: Math.max(graceMs, swrMs), softMs, hardMs, jitter, earlyBeta };
}

const EARLY_REFRESH_OPTIONS: ReadonlySet<string> = new Set(Object.keys({ beta: true } satisfies Record<keyof EarlyRefreshOptions, true>));

/** `earlyRefresh` as its beta; `undefined` when off. */
function validateEarlyRefresh(value: unknown): number | undefined {
  if (value === false) return undefined;
  if (value === true) return 1;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new OptionError('earlyRefresh', `earlyRefresh must be a boolean or { beta }, got ${describeValue(value)}`);
  }
  rejectUnknownOptions(value, EARLY_REFRESH_OPTIONS, 'earlyRefresh.');
  const beta = (value as EarlyRefreshOptions).beta ?? 1;
  if (typeof beta !== 'number' || !Number.isFinite(beta) || beta <= 0) {
    throw new OptionError('earlyRefresh', `earlyRefresh.beta must be a positive number, got ${describeValue(beta)}`);
  }
  return beta;
}

/** A function's options, validated and parsed once (see {@link resolveWrapOptions}). */
export interface ResolvedWrapOptions<Args extends unknown[] = unknown[]> {
  /** The static tags, copied; empty with a tag function. */
  readonly tags: readonly string[];
  /** The tag function, when `tags` is one. */
  readonly tagsOf: ((...args: Args) => readonly string[]) | undefined;
  /** The TTL in ms; `undefined` for the cache's (or with a TTL function). */
  readonly ttlMs: number | undefined;
  /** The TTL function, when `ttl` is one. */
  readonly ttlOf: Exclude<WrapOptions<Args>['ttl'], Duration | undefined> | undefined;
  /** `cacheIf`. */
  readonly cacheIf: WrapOptions<Args>['cacheIf'];
  readonly key: ((...args: Args) => string) | undefined;
  readonly name: string | undefined;
  readonly policy: StalePolicy;
}

/**
 * Validates a function's options and parses them over the cache's defaults.
 * @throws {@link OptionError} naming the first bad option
 */
export function resolveWrapOptions<Args extends unknown[]>(
  options: WrapOptions<Args>,
  defaults: StalePolicy,
): ResolvedWrapOptions<Args> {
  if (options === null || typeof options !== 'object') throw new OptionError('options', 'options must be an object');
  rejectUnknownOptions(options, WRAP_OPTIONS);
  const { tags, ttl, cacheIf } = options;
  if (tags !== undefined && typeof tags !== 'function') validateTags(tags);
  if (cacheIf !== undefined && typeof cacheIf !== 'function') {
    throw new OptionError('cacheIf', `cacheIf must be a function of the result and the arguments returning a boolean, got ${describeValue(cacheIf)}`);
  }
  if (options.key !== undefined && typeof options.key !== 'function') {
    throw new OptionError('key', 'key must be a function of the arguments returning a string');
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.length === 0)) {
    throw new OptionError('name', 'name must be a non-empty string');
  }
  return {
    tags: typeof tags === 'function' ? [] : [...(tags ?? [])],
    tagsOf: typeof tags === 'function' ? tags : undefined,
    ttlMs: ttl === undefined || typeof ttl === 'function' ? undefined : validateTtl(ttl, 'ttl'),
    ttlOf: typeof ttl === 'function' ? ttl : undefined,
    cacheIf,
    key: options.key,
    name: options.name,
    policy: resolveStalePolicy(options, defaults),
  };
}

/** The units of a {@link Duration} string, in milliseconds. */
const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** A {@link Duration} string: a decimal number without sign or exponent, then its unit. */
const DURATION_PATTERN = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)$/;
/** How a duration is written, for messages. */
const DURATION_FORMS = "seconds, or a string such as '500ms', '90s', '5m', '1h' or '1d'";

/**
 * A {@link Duration} in milliseconds (not rounded); `undefined` for anything that is not one
 * (a string in another form, a non-finite or negative number, another type).
 */
export function durationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const match = DURATION_PATTERN.exec(value);
  if (match === null) return undefined;
  return Number(match[1]) * (DURATION_UNITS[match[2] as string] ?? Number.NaN);
}

/**
 * The TTL a `ttl` function returned for one result, in whole milliseconds: `0` for "store
 * nothing", else at least 1.
 * @throws {@link OptionError} (option `ttl`) for anything that is not a {@link Duration}
 */
export function resultTtlMs(ttl: unknown, functionName: string): number {
  const ms = durationMs(ttl);
  if (ms === undefined || !Number.isFinite(ms)) {
    throw new OptionError(
      'ttl',
      `The ttl function of '${functionName}' must return a duration (${DURATION_FORMS}; 0 stores nothing), got ${describeValue(ttl)}`,
    );
  }
  return ms === 0 ? 0 : Math.max(1, Math.round(ms));
}

/** A TTL ({@link Duration}), as whole milliseconds (at least 1). */
function validateTtl(ttl: unknown, option: string): number {
  const ms = durationMs(ttl);
  if (ms === undefined || ms <= 0 || !Number.isFinite(ms)) {
    throw new OptionError(option, `${option} must be a positive duration (${DURATION_FORMS}), got ${describeValue(ttl)}`);
  }
  return Math.max(1, Math.round(ms));
}

/** A {@link Duration} >= 0, as whole milliseconds. */
function validateSeconds(value: unknown, option: string): number {
  const ms = durationMs(value);
  if (ms === undefined || !Number.isFinite(ms)) {
    throw new OptionError(option, `${option} must be a duration >= 0 (${DURATION_FORMS}), got ${describeValue(value)}`);
  }
  return Math.round(ms);
}

function validateJitter(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    throw new OptionError('jitter', `jitter must be a fraction of the TTL in [0, 1), got ${describeValue(value)}`);
  }
  return value;
}

/** `[soft, hard]` in milliseconds, 0 when unset. */
function validateTimeout(timeout: unknown): [number, number] {
  if (timeout === null || typeof timeout !== 'object') throw new OptionError('timeout', 'timeout must be { soft?, hard? } in milliseconds');
  rejectUnknownOptions(timeout, TIMEOUT_OPTIONS, 'timeout.');
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
    throw new OptionError(option, `${option} must be a number of milliseconds >= ${min}, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Checks a list of tags: an array of non-empty strings.
 * @throws {@link OptionError} on anything else
 */
export function validateTags(tags: unknown): asserts tags is readonly string[] {
  if (!Array.isArray(tags)) throw new OptionError('tags', 'tags must be an array of non-empty strings');
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag.length === 0) {
      throw new OptionError('tags', `Every tag must be a non-empty string, got ${typeof tag === 'string' ? "''" : String(tag)}`);
    }
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
    throw new OptionError('compressThreshold', `compressThreshold must be a non-negative integer of bytes, got ${describeValue(compressThreshold)}`);
  }
}
