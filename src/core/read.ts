/**
 * The read path: everything a call of a wrapped function does, from joining a call in flight to
 * the decision — a fresh hit, a stale value, a wait for another caller's computation, or a
 * computation of its own. It starts at {@link ReadPath.call}; the store is asked through
 * `Backend.read` (on Redis: `RedisBackend.read` → `lua/read.lua`), entries are decoded by the
 * codec, and values are computed by {@link Computer}.
 *
 * @module
 */

import type { Backend, ReadReply, StoredEntry } from '../backend/backend.js';
import { computeMsOf, type EntryRecord, freshUntilOf } from '../codec.js';
import { earlyRandom, refreshEarly } from '../backend/early.js';
import { CorruptEntryError, BackendError } from '../errors.js';
import { channels, type HitSource, traced } from '../events.js';
import { type EntryRef, uniqueToken } from '../keys.js';
import { Computer } from './compute.js';
import type { Call, CoreContext } from './context.js';
import { entryRefOf, type FunctionPolicy } from './function.js';
import { staleAction } from './stale.js';

/** What {@link ReadPath.#hitValue} returns for bytes that do not decode. */
const CORRUPT: unique symbol = Symbol('corrupt entry');

/**
 * Whether an entry held in this process (a near-cache's) is due for early refresh by the local
 * clock: such an entry is not served from memory, so that the store's read can decide.
 */
function dueEarly(entry: StoredEntry, beta: number): boolean {
  const freshUntil = entry instanceof Uint8Array ? freshUntilOf(entry) : entry.freshUntil;
  const computeMs = entry instanceof Uint8Array ? computeMsOf(entry) : entry.computeMs;
  return freshUntil !== undefined && refreshEarly(Date.now(), freshUntil, computeMs, beta, earlyRandom());
}

/** The read path of one cache. */
export class ReadPath {
  /**
   * Calls in flight, by entry key: a call of an entry that is already being read or computed
   * in this process shares that call's promise (the in-process layer of stampede prevention).
   */
  readonly inflight = new Map<string, Promise<unknown>>();
  readonly #ctx: CoreContext;
  /** The backend in use, once built (the cache sets it); see {@link ReadPath.#resolveBackend}. */
  backend: Backend | undefined;
  readonly #resolveBackend: () => Backend;
  readonly #computer: Computer;
  /** With a near-cache: the backend's change mark when each call in flight started (see {@link Backend.changedSince}). */
  readonly #marks = new WeakMap<Promise<unknown>, number>();

  /**
   * @param ctx - the cache's collaborators
   * @param backend - builds the backend on first use (the cache's lazy construction)
   */
  constructor(ctx: CoreContext, backend: () => Backend) {
    this.#ctx = ctx;
    this.#resolveBackend = backend;
    this.#computer = new Computer(ctx);
  }

  /**
   * One call of a wrapped function. An in-process store answers a fresh hit synchronously
   * (no promise hop); otherwise one read — under the backend deadline and the circuit breaker —
   * decides: a hit, or {@link ReadPath.#afterMiss}.
   */
  call(policy: FunctionPolicy, thisArg: unknown, args: unknown[]): Promise<unknown> {
    const ctx = this.#ctx;
    let ref: EntryRef;
    try {
      ref = entryRefOf(ctx.keyspace, policy, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const entryKey = ref.entryKey;
    const backend = this.backend ?? this.#resolveBackend();
    const joined = this.inflight.get(entryKey);
    // A call joins the call in flight for its entry, unless (with a near-cache) this process has
    // heard since that call started that its entry or a tag changed: that call may have read
    // before the change.
    if (joined !== undefined && (backend.changedSince === undefined || !backend.changedSince(ref, policy.tagKeys, this.#marks.get(joined) ?? 0))) {
      return joined;
    }

    let corrupt = false;
    // With early refresh, an in-process store is read with a lock token (below): its read decides.
    if (backend.readSync && policy.earlyBeta === undefined) {
      // In-process store: a fresh hit is served without a promise hop, a lock token or a lock key.
      let peek: ReadReply | undefined;
      try {
        peek = backend.readSync({ ref, tagKeys: policy.tagKeys, lockToken: undefined, lockTtlMs: 0 });
      } catch {
        peek = undefined; // retried (and reported) by the asynchronous path
      }
      if (peek?.entry !== undefined && !peek.stale) {
        const value = this.#hitValue(entryKey, peek.entry, 'backend');
        if (value !== CORRUPT) return Promise.resolve(value);
        corrupt = true;
      }
    } else if (backend.peek !== undefined) {
      // A near-cache: a fresh entry held in this process, served without a request.
      const entry = backend.peek(ref, policy.tagKeys);
      // An entry due for early refresh by this process' clock is left to the store to decide.
      if (entry !== undefined && (policy.earlyBeta === undefined || !dueEarly(entry, policy.earlyBeta))) {
        const value = this.#hitValue(entryKey, entry, 'near');
        if (value !== CORRUPT) return Promise.resolve(value);
        corrupt = true;
      }
    }
    const call: Call = {
      policy,
      thisArg,
      args,
      backend,
      request: { ref, tagKeys: policy.tagKeys, lockToken: uniqueToken(), lockTtlMs: ctx.options.lockTimeoutMs, earlyRefresh: policy.earlyBeta },
      breaker: ctx.breakers.of(backend, ref),
    };
    let promise: Promise<unknown>;
    if (corrupt) {
      promise = this.#recoverCorrupt(call);
    } else if (!ctx.breakers.allows(call.breaker)) {
      // The backend failed repeatedly: skip it until the breaker's cooldown ends.
      promise = this.#fallBack(call, 'circuit-open');
    } else {
      // A fresh hit is the read's promise and one reaction, no async frames.
      promise = this.#read(call).then(
        (reply) => this.#afterRead(call, reply),
        (error: unknown) => this.#readFailed(call, error),
      );
    }
    this.inflight.set(entryKey, promise);
    if (backend.changeMark !== undefined) this.#marks.set(promise, backend.changeMark());
    const forget = (): void => {
      if (this.inflight.get(entryKey) === promise) this.inflight.delete(entryKey);
    };
    promise.then(forget, forget);
    return promise;
  }

  /**
   * Drops the entry of these arguments (one request). Calls in flight now, or started before
   * the deletion resolves (they may read the entry before it), are not joined by later calls.
   */
  async invalidate(policy: FunctionPolicy, args: readonly unknown[]): Promise<void> {
    const { keyspace, guard } = this.#ctx;
    const ref = entryRefOf(keyspace, policy, args);
    this.inflight.delete(ref.entryKey);
    const backend = this.backend ?? this.#resolveBackend();
    try {
      await guard.invalidation('invalidate', ref.entryKey, () => backend.invalidate(ref));
    } finally {
      this.inflight.delete(ref.entryKey);
    }
  }

  /** The first read's answer: a fresh hit is served here; anything else goes on. */
  #afterRead(call: Call, reply: ReadReply): unknown {
    this.#ctx.breakers.success(call.breaker);
    if (reply.entry !== undefined && !reply.stale) {
      const value = reply.early === true ? this.#earlyHit(call, reply) : this.#hitValue(call.request.ref.entryKey, reply.entry, 'backend');
      if (value !== CORRUPT) return value;
      return this.#recoverCorrupt(call);
    }
    return this.#afterMiss(call, reply, Date.now() + this.#ctx.options.lockWaitMs);
  }

  /** A fresh entry's value, counted as a hit; {@link CORRUPT} (reported) if it does not decode. */
  #hitValue(entryKey: string, entry: StoredEntry, source: HitSource): unknown {
    const record = this.#decode(entryKey, entry);
    if (record === undefined) return CORRUPT;
    this.#ctx.recorder.hit(entryKey, source);
    return record.value;
  }

  /**
   * A fresh hit whose read decided to refresh it early and took the lock: the value is served
   * at once (counted as a hit and an early refresh) and recomputed in the background, written
   * with the lock token like a miss' computation. A refresh that throws releases the lock and
   * leaves the entry as it is (the `compute` event says `ok: false`). {@link CORRUPT} if the
   * entry does not decode.
   */
  #earlyHit(call: Call, reply: ReadReply): unknown {
    const { entryKey } = call.request.ref;
    const record = this.#decode(entryKey, reply.entry as StoredEntry);
    if (record === undefined) return CORRUPT;
    const { recorder } = this.#ctx;
    recorder.hit(entryKey, 'backend');
    recorder.earlyRefresh(entryKey, record.freshUntil - Date.now());
    const plan = { tagHash: reply.tagHash, lockToken: call.request.lockToken, stale: undefined, store: true };
    this.#computer.run(call, plan).catch(() => undefined);
    return record.value;
  }

  /** One read, under the backend deadline, traced on `hermes:read`. */
  #read(call: Call): Promise<ReadReply> {
    const { backend, request } = call;
    const { guard, locks } = this.#ctx;
    const run = (): Promise<ReadReply> => {
      let read: Promise<ReadReply> | undefined;
      return guard.deadline(
        backend,
        'read',
        () => (read = backend.read(request)),
        () => {
          if (read !== undefined) locks.releaseAfterLateRead(backend, request, read);
        },
      );
    };
    return traced(channels.read, run, request.ref.entryKey, call.policy.name);
  }

  /** A read failed: fall open to the function, uncached. */
  #readFailed(call: Call, error: unknown): Promise<unknown> {
    this.#ctx.breakers.failure(call.breaker);
    this.#ctx.guard.absorb(new BackendError('read', call.request.ref.entryKey, error));
    return this.#fallBack(call, 'read-failed');
  }

  /** Runs the function without the cache: the backend failed or its breaker is open. */
  #fallBack(call: Call, reason: 'read-failed' | 'circuit-open'): Promise<unknown> {
    this.#ctx.recorder.fallback(call.request.ref.entryKey, reason);
    try {
      return Promise.resolve(call.policy.fn.apply(call.thisArg, call.args));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A fresh hit whose bytes do not decode (reported): the entry is deleted, then read again
   * like a miss, so that the recompute holds the lock and its write is dropped if an
   * invalidation happens meanwhile. Costs two more requests, on corrupt bytes only.
   */
  async #recoverCorrupt(call: Call): Promise<unknown> {
    const { backend, request } = call;
    let reply: ReadReply;
    try {
      await this.#ctx.guard.deadline(backend, 'invalidate', () => backend.invalidate(request.ref));
      reply = await this.#read(call);
    } catch (error) {
      return this.#readFailed(call, error);
    }
    return this.#afterMiss(call, reply, Date.now() + this.#ctx.options.lockWaitMs);
  }

  /**
   * Everything after a read that was not a fresh hit: a stale value, a computation under the
   * lock, or a wait for the lock holder's release followed by another read — until a hit, the
   * lock, or the deadline (`lockWait`), past which the caller computes without storing.
   */
  async #afterMiss(call: Call, first: ReadReply, deadline: number): Promise<unknown> {
    const { policy, request, backend } = call;
    const { entryKey } = request.ref;
    const { recorder, guard } = this.#ctx;
    const computer = this.#computer;
    let reply = first;
    let counted = false;
    for (;;) {
      if (reply.entry !== undefined) {
        if (!reply.stale) {
          const value = reply.early === true ? this.#earlyHit(call, reply) : this.#hitValue(entryKey, reply.entry, 'backend');
          if (value !== CORRUPT) return value;
          // Corrupt again right after they were deleted: served, not stored.
          return computer.withTimeouts(call, { tagHash: reply.tagHash, lockToken: undefined, stale: undefined, store: false });
        }
        const record = this.#decode(entryKey, reply.entry);
        // A stale value that does not decode is a miss (its read tried the lock, as a miss does).
        if (record !== undefined && policy.staleWindowMs > 0) return this.#serveStale(call, record, reply);
        // Past its fresh time without grace or stale-while-revalidate: a miss.
      }
      if (!counted) {
        counted = true;
        recorder.miss(entryKey);
      }
      if (reply.locked) {
        return computer.withTimeouts(call, { tagHash: reply.tagHash, lockToken: request.lockToken, stale: undefined, store: true });
      }
      const remaining = deadline - Date.now();
      // Waited long enough for another caller: compute without the lock, and serve the result
      // without storing it.
      const unlocked = { tagHash: reply.tagHash, lockToken: undefined, stale: undefined, store: false };
      if (remaining <= 0) return computer.withTimeouts(call, unlocked);
      const started = Date.now();
      let woken: boolean;
      try {
        woken = await backend.waitForRelease(request.ref, remaining);
      } catch (error) {
        guard.absorb(new BackendError('wait', request.ref.lockKey, error));
        return computer.withTimeouts(call, unlocked);
      }
      recorder.waited(entryKey, Date.now() - started, woken);
      try {
        reply = await this.#read(call);
      } catch (error) {
        return this.#readFailed(call, error);
      }
    }
  }

  /** A stale value (past its fresh time, within grace or stale-while-revalidate): see {@link staleAction}. */
  #serveStale(call: Call, record: EntryRecord, reply: ReadReply): unknown {
    const computer = this.#computer;
    const plan = { tagHash: reply.tagHash, lockToken: call.request.lockToken, stale: record, store: true };
    switch (staleAction(reply.locked, record.freshUntil, Date.now(), call.policy.swrMs)) {
      case 'serve':
        return computer.servedStale(call, record, 'locked', undefined);
      case 'revalidate': {
        const refresh = computer.run(call, plan);
        refresh.catch((error: unknown) => computer.servedStale(call, record, 'error', error));
        return computer.servedStale(call, record, 'revalidating', undefined);
      }
      case 'recompute':
        return computer.withTimeouts(call, plan);
    }
  }

  /** The record of a stored entry; `undefined`, reported as a {@link CorruptEntryError}, if its bytes do not decode. */
  #decode(entryKey: string, entry: StoredEntry): EntryRecord | undefined {
    if (!(entry instanceof Uint8Array)) return entry;
    try {
      return this.#ctx.codec.decode(entry);
    } catch (error) {
      this.#ctx.guard.report(new CorruptEntryError(entryKey, error instanceof Error ? error.message : String(error), error));
      return undefined;
    }
  }
}
