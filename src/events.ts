/**
 * What a cache tells about itself: its events ({@link HermesEvents}), its counters
 * ({@link HermesStats}), and the tracing channels around reads, writes and computations. The
 * {@link Recorder} keeps the counters and emits the per-call events only while somebody
 * listens, so that an unobserved hit costs one counter increment.
 *
 * @module
 */

import { tracingChannel, type TracingChannel } from 'node:diagnostics_channel';
import type { EventEmitter } from 'node:events';
import type { NearCacheStats } from './backend/backend.js';
import type { HermesError, HermesErrorCode } from './errors.js';

/** The events of a {@link Hermes}. */
export interface HermesEvents {
  /**
   * A cache-layer failure that was absorbed (see `failOpen`): a {@link BackendError}, a
   * {@link CorruptEntryError} or a {@link SerializationError}. The caller got its result.
   * Also a {@link LossyValueError}: a result that a store of bytes gives back as a plain
   * object (once per function).
   */
  error: [error: HermesError];
  /**
   * A call served from the cache: `source` says from where — `'near'`, the Redis backend's
   * near-cache (this process' memory, no request); `'backend'`, the backend's store.
   */
  hit: [event: { key: string; stale: false; source: HitSource }];
  /** A call that found no usable entry (before it computes or waits). */
  miss: [event: { key: string }];
  /**
   * A stale value served: `locked` (another caller refreshes it), `revalidating` (this caller
   * refreshes it in the background), `timeout` (the refresh passed `timeout.soft`), `error`
   * (the refresh threw; `error` holds why).
   */
  stale: [event: { key: string; reason: StaleReason; error: unknown }];
  /**
   * A fresh hit that its read chose to refresh early (`earlyRefresh`) and whose lock it took:
   * the caller got the cached value, and the function runs in the background to replace it.
   * `freshForMs`: how long the value had left to be fresh (by this process' clock). The
   * refresh's end is the `compute` event (`ok: false` if it threw: the entry is left as it was).
   */
  earlyRefresh: [event: { key: string; freshForMs: number }];
  /** A computation of the function finished, or threw (`ok: false`). */
  compute: [event: { key: string; durationMs: number; ok: boolean }];
  /** A caller waited for another caller's computation (`woken`: by its release, else timed out). */
  wait: [event: { key: string; waitedMs: number; woken: boolean }];
  /** A call ran the function without the cache: the read failed, or the circuit breaker is open. */
  fallback: [event: { key: string; reason: 'read-failed' | 'circuit-open' }];
}

/** Where a hit came from; see the `hit` event. */
export type HitSource = 'near' | 'backend';

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
  /** Fresh hits that started an early refresh (`earlyRefresh`); each is among {@link HermesStats.hits} too. */
  earlyRefreshes: number;
  /** Waits for another caller's computation, and their total duration in milliseconds. */
  lockWaits: number;
  /** Total milliseconds spent waiting for other callers' computations. */
  lockWaitMs: number;
  /** Calls of the wrapped functions made to compute a value. */
  computations: number;
  /**
   * Computed results returned but not stored because `cacheIf` refused them or the `ttl`
   * function gave `0`.
   */
  notStored: number;
  /** Calls answered with a {@link TimeoutError}. */
  timeouts: number;
  /** Calls that ran the function without the cache (backend failed, breaker open). */
  fallbacks: number;
  /** Absorbed cache-layer errors (the `error` events), by code. */
  errors: Partial<Record<HermesErrorCode, number>>;
  /**
   * The near-cache's counters (its hits are among {@link HermesStats.hits} too), when the
   * backend has one turned on (the Redis backend's `nearCache` option); else absent.
   */
  near?: NearCacheStats;
}

/** The context a tracing channel's subscribers receive: the entry key and the function's name. */
export interface TraceContext {
  /** The entry key. */
  key: string;
  /** The cached function's name. */
  name: string;
}

/**
 * Tracing channels (`node:diagnostics_channel`) around reads, writes and computations, so
 * that OpenTelemetry or any tracer can hook in: subscribe to `hermes:read`, `hermes:write`,
 * `hermes:compute`. The context carries `key` and `name`.
 */
export const channels = Object.freeze({
  read: tracingChannel<object, TraceContext>('hermes:read'),
  write: tracingChannel<object, TraceContext>('hermes:write'),
  compute: tracingChannel<object, TraceContext>('hermes:compute'),
});

/**
 * Runs `fn` inside a tracing channel when anybody listens, directly otherwise (then no context
 * object is built: this runs on every read).
 */
export function traced<T>(channel: TracingChannel<object, TraceContext>, fn: () => Promise<T>, key: string, name: string): Promise<T> {
  if (!channel.start.hasSubscribers && !channel.asyncEnd.hasSubscribers && !channel.error.hasSubscribers) return fn();
  return channel.tracePromise(fn, { key, name });
}

/** The events emitted once per call, worth building only while somebody listens. */
const PER_CALL_EVENTS: ReadonlySet<string | symbol> = new Set(['hit', 'miss', 'compute', 'wait', 'fallback']);

/**
 * The counters of one cache and the emission of its events. Per-call events are built only
 * while a listener is attached (`observed`); counters are always kept.
 */
export class Recorder {
  readonly #emitter: EventEmitter<HermesEvents>;
  readonly #counters: HermesStats = {
    hits: 0,
    misses: 0,
    staleServed: 0,
    earlyRefreshes: 0,
    lockWaits: 0,
    lockWaitMs: 0,
    computations: 0,
    notStored: 0,
    timeouts: 0,
    fallbacks: 0,
    errors: {},
  };
  /** Whether anybody listens to the per-call events (hit, miss, compute, wait, fallback). */
  #observed = false;
  /** The error codes already turned into a process warning (one each, without listeners). */
  readonly #warned = new Set<HermesErrorCode>();

  /** @param emitter - the cache, whose listeners decide what is emitted */
  constructor(emitter: EventEmitter<HermesEvents>) {
    this.#emitter = emitter;
    const untyped = emitter as unknown as EventEmitter; // the typed map has no listener events
    untyped.on('newListener', (event: string | symbol) => {
      if (PER_CALL_EVENTS.has(event)) this.#observed = true;
    });
    untyped.on('removeListener', (event: string | symbol) => {
      if (PER_CALL_EVENTS.has(event)) queueMicrotask(this.#recount);
    });
  }

  readonly #recount = (): void => {
    const emitter = this.#emitter as unknown as EventEmitter;
    this.#observed = [...PER_CALL_EVENTS].some((event) => emitter.listenerCount(event) > 0);
  };

  /** A fresh value served from the cache. */
  hit(key: string, source: HitSource): void {
    this.#counters.hits++;
    if (this.#observed) this.#emitter.emit('hit', { key, stale: false, source });
  }

  /** A call found no usable entry. */
  miss(key: string): void {
    this.#counters.misses++;
    if (this.#observed) this.#emitter.emit('miss', { key });
  }

  /** A stale value served, and why. */
  stale(key: string, reason: StaleReason, error: unknown): void {
    this.#counters.staleServed++;
    if (this.#emitter.listenerCount('stale') > 0) this.#emitter.emit('stale', { key, reason, error });
  }

  /** A fresh hit started an early refresh. */
  earlyRefresh(key: string, freshForMs: number): void {
    this.#counters.earlyRefreshes++;
    if (this.#emitter.listenerCount('earlyRefresh') > 0) this.#emitter.emit('earlyRefresh', { key, freshForMs });
  }

  /** A computed result is returned without being stored (`cacheIf`, or a `ttl` function's 0). */
  notStored(): void {
    this.#counters.notStored++;
  }

  /** A computation of the function starts. */
  computing(): void {
    this.#counters.computations++;
  }

  /** A computation of the function finished (`ok`) or threw. */
  computed(key: string, durationMs: number, ok: boolean): void {
    if (this.#observed) this.#emitter.emit('compute', { key, durationMs, ok });
  }

  /** A wait for another caller's computation ended. */
  waited(key: string, waitedMs: number, woken: boolean): void {
    this.#counters.lockWaits++;
    this.#counters.lockWaitMs += waitedMs;
    if (this.#observed) this.#emitter.emit('wait', { key, waitedMs, woken });
  }

  /** A call ran the function without the cache. */
  fallback(key: string, reason: 'read-failed' | 'circuit-open'): void {
    this.#counters.fallbacks++;
    if (this.#observed) this.#emitter.emit('fallback', { key, reason });
  }

  /** A call answered with a `TimeoutError`. */
  timedOut(): void {
    this.#counters.timeouts++;
  }

  /**
   * An absorbed cache-layer error: counted and emitted as `error`; without listeners, one
   * process warning per error code per cache instead of a crash (an `error` event without
   * listeners throws), so that a {@link LossyValueError} warning does not hide a later outage.
   */
  report(error: HermesError): void {
    const errors = this.#counters.errors;
    errors[error.code] = (errors[error.code] ?? 0) + 1;
    if (this.#emitter.listenerCount('error') > 0) {
      this.#emitter.emit('error', error);
    } else if (!this.#warned.has(error.code)) {
      this.#warned.add(error.code);
      process.emitWarning(
        `${error.message} (further cache errors of this kind are silent; listen with cache.on('error', …))`,
        { type: 'HermesWarning', code: error.code },
      );
    }
  }

  /** A copy of the counters. */
  snapshot(): HermesStats {
    return { ...this.#counters, errors: { ...this.#counters.errors } };
  }
}
