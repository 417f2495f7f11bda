/**
 * Running the function: under its timeouts ({@link Computer.withTimeouts}), storing the result
 * with the tag hash captured before it ran and releasing the lock ({@link Computer.run}), and
 * serving or writing back a stale value when the function fails or is slow (grace).
 *
 * @module
 */

import type { StoredEntry } from '../backend/backend.js';
import { type EntryRecord, isPlainJson, isStructuredEntry } from '../codec.js';
import { channels, type StaleReason, traced } from '../events.js';
import { BackendError, LossyValueError, SerializationError, TimeoutError } from '../errors.js';
import { resultTtlMs } from '../options.js';
import type { Call, CoreContext } from './context.js';
import type { FunctionPolicy } from './function.js';

/** How many results of each function are checked for lossy parts (see `Computer.#checkLossy`). */
const LOSSY_CHECKS = 64;

/** How long a stale value is written back fresh after its refresh failed (grace), ms. */
const STALE_RETRY_MS = 5000;

/** What a computation may do with its result. */
export interface ComputePlan {
  /** The tag hash read before the function runs: the entry is written with it. */
  readonly tagHash: string;
  /** The token of the lock this caller holds; `undefined` when it holds none. */
  readonly lockToken: string | undefined;
  /** The stale value at hand (grace, stale-while-revalidate), if any. */
  readonly stale: EntryRecord | undefined;
  /**
   * Whether to store the result. Only a caller that holds the lock stores: an unlocked write
   * could overwrite an invalidation made meanwhile (the lock holder stores its own result).
   */
  readonly store: boolean;
}

/**
 * How long a result stays fresh, ms, as the function's `cacheIf` (when `askCacheIf`) and `ttl`
 * function decide, TTL jitter applied (it spreads the expiries of entries written together):
 * `0` when it is not to be stored.
 * @throws what either function throws; an `OptionError` for a TTL that is not a duration
 */
export function freshMsOf(policy: FunctionPolicy, value: unknown, args: readonly unknown[], askCacheIf: boolean): number {
  if (askCacheIf && policy.cacheIf !== undefined && !policy.cacheIf(value, ...args)) return 0;
  const ttlMs = policy.ttlOf === undefined ? policy.ttlMs : resultTtlMs(policy.ttlOf(value, ...args), policy.name);
  if (ttlMs === 0) return 0;
  return policy.jitter > 0 ? Math.max(1, Math.round(ttlMs * (1 - policy.jitter * Math.random()))) : ttlMs;
}

/**
 * Calls the wrapped function: the promise it returns as it is (no wrapper promise of its own),
 * anything else — a value, a thenable — through `Promise.resolve`, a synchronous throw as a
 * rejection.
 */
export function invoke(call: Call): Promise<unknown> {
  try {
    const result: unknown = call.policy.fn.apply(call.thisArg, call.args);
    return result instanceof Promise ? result : Promise.resolve(result);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Computes values for one cache. */
export class Computer {
  readonly #ctx: CoreContext;
  /**
   * How many more results of each function (by name) to check for lossy parts
   * ({@link LossyValueError}): {@link LOSSY_CHECKS} at first, none once one was reported.
   */
  readonly #lossyChecksLeft = new Map<string, number>();

  /** @param ctx - the cache's collaborators */
  constructor(ctx: CoreContext) {
    this.#ctx = ctx;
  }

  /**
   * Computes (and stores, see {@link Computer.run}) a value, and waits for it under the
   * function's timeouts: past `soft`, a caller with a stale value gets it (the computation goes
   * on and refreshes the entry); past `hard`, the caller gets a {@link TimeoutError} (the result
   * is still cached). A function that throws with a stale value at hand serves the stale value.
   */
  withTimeouts(call: Call, plan: ComputePlan): Promise<unknown> {
    const computation = this.run(call, plan);
    const { softMs, hardMs } = call.policy;
    const stale = plan.stale;
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
                resolve(this.servedStale(call, stale, 'timeout', undefined));
              } else {
                this.#ctx.recorder.timedOut();
                reject(new TimeoutError(call.request.ref.entryKey, limitMs));
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
          if (stale !== undefined) resolve(this.servedStale(call, stale, 'error', error));
          else reject(error);
        },
      );
    });
  }

  /**
   * Runs the function and, when the plan says so, stores its result with the captured tag hash
   * (an invalidation meanwhile makes the entry invalid at birth), releasing the lock in the same
   * request. Rejects with the function's error, having released the lock and stored nothing
   * (a stale value at hand is written back for a short while instead, see
   * {@link Computer.#writeBackStale}).
   */
  async run(call: Call, plan: ComputePlan): Promise<unknown> {
    const { policy, request, backend } = call;
    const { ref } = request;
    const { entryKey } = ref;
    const { recorder, locks } = this.#ctx;
    const { lockToken } = plan;
    recorder.computing();
    const started = Date.now();
    let value: unknown;
    try {
      value = await traced(channels.compute, () => invoke(call), entryKey, policy.name);
    } catch (error) {
      recorder.computed(entryKey, Date.now() - started, false);
      if (lockToken !== undefined) {
        const rewritten = plan.stale !== undefined && (await this.#writeBackStale(call, plan.stale, plan.tagHash, lockToken));
        if (!rewritten) await locks.release(backend, ref, lockToken);
      }
      throw error;
    }
    const computeMs = Date.now() - started;
    recorder.computed(entryKey, computeMs, true);
    call.info?.computed();
    if (plan.store) await this.#store(call, plan, value, computeMs);
    return value;
  }

  /** Stores a computed value (encoded when the backend stores bytes), releasing the lock. */
  async #store(call: Call, plan: ComputePlan, value: unknown, computeMs: number): Promise<void> {
    const { policy, request, backend } = call;
    const { ref } = request;
    const { entryKey } = ref;
    const { codec, guard, locks, breakers } = this.#ctx;
    const { lockToken } = plan;
    // The result decides: rejected (or a TTL of 0), it is returned but not stored, and the lock
    // is released so that waiters compute or read again, as after a throw.
    let freshMs: number;
    try {
      freshMs = freshMsOf(policy, value, call.args, true);
    } catch (error) {
      if (lockToken !== undefined) await locks.release(backend, ref, lockToken);
      throw error;
    }
    if (freshMs === 0) {
      this.#ctx.recorder.notStored();
      if (lockToken !== undefined) await locks.release(backend, ref, lockToken);
      return;
    }
    const storedAt = Date.now();
    const record: EntryRecord = { tagHash: plan.tagHash, freshUntil: storedAt + freshMs, value, storedAt, computeMs };
    let entry: StoredEntry = record;
    if (backend.storesBytes) {
      try {
        entry = codec.encode(record);
      } catch (error) {
        guard.report(new SerializationError(entryKey, error));
        if (lockToken !== undefined) await locks.release(backend, ref, lockToken);
        return;
      }
      // Only values the JSON check turned down can hold class instances or symbol keys.
      if (isStructuredEntry(entry)) this.#checkLossy(policy.name, value, false);
    } else {
      // A live store keeps the object itself; the check says what a store of bytes would do.
      this.#checkLossy(policy.name, value, true);
    }
    const ttlMs = freshMs + policy.staleWindowMs;
    try {
      const write = (): Promise<boolean> =>
        guard.deadline(backend, 'write', () => backend.write({ ref, entry, ttlMs, lockToken }));
      const stored = await traced(channels.write, write, entryKey, policy.name);
      breakers.success(call.breaker);
      if (stored) call.info?.stored(record);
    } catch (error) {
      breakers.failure(call.breaker);
      // Free the waiters now rather than at the lock's expiry, if the store still answers.
      if (lockToken !== undefined) await locks.release(backend, ref, lockToken, true);
      guard.absorb(new BackendError('write', entryKey, error));
    }
  }

  /**
   * Reports (once per function) a result that a store of bytes would not give back as it was:
   * a class instance or a symbol-keyed property. Only the first {@link LOSSY_CHECKS} results of
   * each function are checked (on a store of bytes, of those the encoder's JSON check turned
   * down), so that a function returning big values pays for the walk a bounded number of
   * times. `live`: the backend keeps the object itself.
   */
  #checkLossy(name: string, value: unknown, live: boolean): void {
    const left = this.#lossyChecksLeft.get(name) ?? LOSSY_CHECKS;
    if (left === 0) return;
    // On a live store, the JSON check the encoder makes is still to be made.
    const part = live && isPlainJson(value) ? undefined : this.#ctx.codec.lossyPart(value);
    this.#lossyChecksLeft.set(name, part === undefined ? left - 1 : 0);
    if (part !== undefined) this.#ctx.guard.report(new LossyValueError(name, part, live));
  }

  /**
   * The refresh of a stale value threw: the stale value is written back fresh for a short while
   * (`STALE_RETRY_MS`, within what is left of its stale window) so that the next callers are
   * served it instead of calling a failing function again. Written with the lock token, in the
   * same request that releases the lock, so that it can never overwrite a newer value. Resolves
   * `true` once the write reached the store (the lock is then released, or was not ours any
   * more), `false` if nothing was written and the lock is still to be released.
   */
  async #writeBackStale(call: Call, record: EntryRecord, tagHash: string, lockToken: string): Promise<boolean> {
    const { policy, request, backend } = call;
    const now = Date.now();
    const keepUntil = record.freshUntil + policy.staleWindowMs;
    if (keepUntil <= now) return false;
    const retryMs = Math.min(STALE_RETRY_MS, policy.ttlMs);
    const rewritten: EntryRecord = { tagHash, freshUntil: now + retryMs, value: record.value, storedAt: record.storedAt, computeMs: record.computeMs };
    try {
      const entry = backend.storesBytes ? this.#ctx.codec.encode(rewritten) : rewritten;
      const ttlMs = Math.max(retryMs, keepUntil - now);
      await backend.write({ ref: request.ref, entry, ttlMs, lockToken });
      return true;
    } catch (error) {
      this.#ctx.guard.report(new BackendError('write', request.ref.entryKey, error));
      return false;
    }
  }

  /** Counts and reports a stale value served; returns the value. */
  servedStale(call: Call, record: EntryRecord, reason: StaleReason, error: unknown): unknown {
    call.info?.stale(record);
    this.#ctx.recorder.stale(call.request.ref.entryKey, reason, error);
    return record.value;
  }
}
