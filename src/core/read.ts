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
import { withTagHash } from '../backend/kit.js';
import { computeMsOf, type EntryRecord, freshUntilOf, UNTAGGED_HASH } from '../codec.js';
import { earlyRandom, refreshEarly } from '../backend/early.js';
import { CorruptEntryError, BackendError, SerializationError } from '../errors.js';
import { channels, type HitSource, traced } from '../events.js';
import { type EntryRef, uniqueToken } from '../keys.js';
import { Computer, freshMsOf, invoke } from './compute.js';
import type { Call, CoreContext } from './context.js';
import { entryRefOf, type FunctionPolicy, tagKeysOf } from './function.js';
import { type CallInfo, InfoSink } from './info.js';
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
  /** The {@link InfoSink} of each call in flight made through `withInfo`, for the calls that join it. */
  readonly #sinks = new WeakMap<Promise<unknown>, InfoSink>();

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
   * decides: a hit, or {@link ReadPath.#afterMiss}. `info`: a `withInfo` call's sink, filled
   * on the way (plain calls pass none).
   */
  call(policy: FunctionPolicy, thisArg: unknown, args: unknown[], info?: InfoSink): Promise<unknown> {
    const begun = this.#begin(policy, thisArg, args, info);
    if (begun instanceof Promise) return begun;
    const { call, corrupt } = begun;
    let promise: Promise<unknown>;
    if (corrupt) {
      promise = this.#recoverCorrupt(call);
    } else if (!this.#ctx.breakers.allows(call.breaker)) {
      // The backend failed repeatedly: skip it until the breaker's cooldown ends.
      promise = this.#fallBack(call, 'circuit-open');
    } else {
      // A fresh hit is the read's promise and one reaction, no async frames.
      promise = this.#read(call).then(
        (reply) => this.#afterRead(call, reply),
        (error: unknown) => this.#readFailed(call, error),
      );
    }
    return this.#track(call, promise);
  }

  /**
   * The start of a call, up to its read: its entry and tag keys, then the answers that need no
   * request — the call in flight it joins, or a fresh hit from an in-process store or a
   * near-cache — as a promise; otherwise the {@link Call} to read (`corrupt`: the fresh entry in
   * memory did not decode, and is to be recovered).
   */
  #begin(policy: FunctionPolicy, thisArg: unknown, args: unknown[], info: InfoSink | undefined): Promise<unknown> | { call: Call; corrupt: boolean } {
    const ctx = this.#ctx;
    let ref: EntryRef;
    // The call's tag keys: the function's, or its tag function's for these arguments.
    let tagKeys: readonly string[];
    try {
      ref = entryRefOf(ctx.keyspace, policy, args);
      tagKeys = policy.tagsOf === undefined ? policy.tagKeys : tagKeysOf(ctx.keyspace, policy, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const entryKey = ref.entryKey;
    const backend = this.backend ?? this.#resolveBackend();
    const joined = this.inflight.get(entryKey);
    // A call joins the call in flight for its entry, unless (with a near-cache) this process has
    // heard since that call started that its entry or a tag changed: that call may have read
    // before the change.
    if (joined !== undefined && (backend.changedSince === undefined || !backend.changedSince(ref, tagKeys, this.#marks.get(joined) ?? 0))) {
      if (info !== undefined) info.joined(this.#sinks.get(joined));
      return joined;
    }

    let corrupt = false;
    // With early refresh, an in-process store is read with a lock token (below): its read decides.
    if (backend.readSync && policy.earlyBeta === undefined) {
      // In-process store: a fresh hit is served without a promise hop, a lock token or a lock key.
      let peek: ReadReply | undefined;
      try {
        peek = backend.readSync({ ref, tagKeys, lockToken: undefined, lockTtlMs: 0 });
      } catch {
        peek = undefined; // retried (and reported) by the asynchronous path
      }
      if (peek?.entry !== undefined && !peek.stale) {
        const value = this.#hitValue(entryKey, peek.entry, 'backend', info);
        if (value !== CORRUPT) return Promise.resolve(value);
        corrupt = true;
      }
    } else if (backend.peek !== undefined) {
      // A near-cache: a fresh entry held in this process, served without a request.
      const entry = backend.peek(ref, tagKeys);
      // An entry due for early refresh by this process' clock is left to the store to decide.
      if (entry !== undefined && (policy.earlyBeta === undefined || !dueEarly(entry, policy.earlyBeta))) {
        const value = this.#hitValue(entryKey, entry, 'near', info);
        if (value !== CORRUPT) return Promise.resolve(value);
        corrupt = true;
      }
    }
    const call: Call = {
      policy,
      thisArg,
      args,
      backend,
      request: { ref, tagKeys, lockToken: uniqueToken(), lockTtlMs: ctx.options.lockTimeoutMs, earlyRefresh: policy.earlyBeta },
      breaker: ctx.breakers.of(backend, ref),
      info,
    };
    return { call, corrupt };
  }

  /**
   * A batch of calls of one wrapped function (`wrapped.many(argsList)`): every element gets the
   * decisions of {@link ReadPath.call} — it joins a call in flight, is served from memory (an
   * in-process store's synchronous read, a near-cache), or is read — but the reads of the whole
   * batch go to the store together, through {@link Backend.readMany} when the backend has it
   * (one request per server), else one {@link Backend.read} each, all sent in this tick. After
   * its read each element goes on alone: a hit, a stale value, a computation under the lock it
   * took, or a wait for another holder. Equal arguments in one batch are read and computed once.
   *
   * @returns one promise per element, in order (the caller combines them)
   */
  many(policy: FunctionPolicy, thisArg: unknown, argsList: readonly (readonly unknown[])[]): Promise<unknown>[] {
    const count = argsList.length;
    const results = new Array<Promise<unknown>>(count);
    if (count === 0) return results;
    const backend = this.backend ?? this.#resolveBackend();
    /** The first element of this batch to be read for each entry key: equal arguments share its promise. */
    const firstOf = new Map<string, number>();
    const repeats: [index: number, first: number][] = [];
    const toRead: { index: number; call: Call }[] = [];
    for (let i = 0; i < count; i++) {
      const begun = this.#begin(policy, thisArg, [...(argsList[i] as readonly unknown[])], undefined);
      if (begun instanceof Promise) {
        results[i] = begun;
        continue;
      }
      const { call, corrupt } = begun;
      const entryKey = call.request.ref.entryKey;
      const first = firstOf.get(entryKey);
      if (first !== undefined) {
        repeats.push([i, first]);
        continue;
      }
      firstOf.set(entryKey, i);
      if (corrupt) {
        results[i] = this.#track(call, this.#recoverCorrupt(call));
      } else if (!this.#ctx.breakers.allows(call.breaker)) {
        results[i] = this.#track(call, this.#fallBack(call, 'circuit-open'));
      } else {
        toRead.push({ index: i, call });
      }
    }
    if (toRead.length > 0) {
      const requests = toRead.map((item) => item.call.request);
      let sent: Promise<ReadReply>[];
      try {
        sent = backend.readMany !== undefined ? backend.readMany(requests) : requests.map((request) => backend.read(request));
      } catch (error) {
        sent = requests.map(() => Promise.reject(error));
      }
      toRead.forEach(({ index, call }, j) => {
        const promise = this.#read(call, sent[j]).then(
          (reply) => this.#afterRead(call, reply),
          (error: unknown) => this.#readFailed(call, error),
        );
        results[index] = this.#track(call, promise);
      });
    }
    for (const [index, first] of repeats) results[index] = results[first] as Promise<unknown>;
    return results;
  }

  /** Registers a call's promise as the call in flight of its entry, until it settles. */
  #track(call: Call, promise: Promise<unknown>): Promise<unknown> {
    const entryKey = call.request.ref.entryKey;
    const backend = call.backend;
    this.inflight.set(entryKey, promise);
    if (backend.changeMark !== undefined) this.#marks.set(promise, backend.changeMark());
    if (call.info !== undefined) this.#sinks.set(promise, call.info);
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

  /**
   * `wrapped.withInfo(...args)`: the call as {@link ReadPath.call} makes it, resolving to its
   * value with how it was answered, its age and its time left.
   */
  async withInfo(policy: FunctionPolicy, thisArg: unknown, args: unknown[]): Promise<CallInfo<unknown>> {
    const sink = new InfoSink();
    const value = await this.call(policy, thisArg, args, sink);
    return sink.result(value);
  }

  /**
   * `wrapped.peek(...args)`: the fresh cached value, or `undefined` — one read without a lock
   * token (the near-cache first, with one), nothing computed, locked or counted. A store that
   * fails or is skipped by its open circuit answers `undefined` (the failure reported, or
   * thrown without `failOpen`); so does a stale value or bytes that do not decode.
   */
  async peek(policy: FunctionPolicy, args: readonly unknown[]): Promise<unknown> {
    const ctx = this.#ctx;
    const ref = entryRefOf(ctx.keyspace, policy, args);
    const tagKeys = tagKeysOf(ctx.keyspace, policy, args);
    const backend = this.backend ?? this.#resolveBackend();
    const request = { ref, tagKeys, lockToken: undefined, lockTtlMs: 0 };
    let entry = backend.readSync === undefined ? backend.peek?.(ref, tagKeys) : undefined;
    if (entry === undefined) {
      const breaker = ctx.breakers.of(backend, ref);
      if (!ctx.breakers.allows(breaker)) return undefined;
      let reply: ReadReply;
      try {
        reply =
          backend.readSync !== undefined
            ? backend.readSync(request)
            : await traced(channels.read, () => ctx.guard.deadline(backend, 'read', () => backend.read(request)), ref.entryKey, policy.name);
      } catch (error) {
        ctx.breakers.failure(breaker);
        ctx.guard.absorb(new BackendError('read', ref.entryKey, error));
        return undefined;
      }
      ctx.breakers.success(breaker);
      if (reply.stale) return undefined;
      entry = reply.entry;
      if (entry === undefined) return undefined;
    }
    return this.#decode(ref.entryKey, entry)?.value;
  }

  /**
   * `wrapped.set(args, value)`: stores `value` as the entry of `args` under the tags' current
   * versions, with the function's TTL, and drops the lock so that a computation in flight
   * drops its write. One request with {@link Backend.set}; without it, an invalidation, a read
   * of the tag hash and a write. Calls in flight now are not joined by later calls. Rejects
   * with a {@link SerializationError} for a value the codec cannot encode, with a
   * {@link BackendError} if the store fails (whatever `failOpen` says, as invalidations do).
   */
  async set(policy: FunctionPolicy, args: readonly unknown[], value: unknown): Promise<void> {
    const { keyspace, guard, codec } = this.#ctx;
    const ref = entryRefOf(keyspace, policy, args);
    const { entryKey } = ref;
    const tagKeys = tagKeysOf(keyspace, policy, args);
    const backend = this.backend ?? this.#resolveBackend();
    // The TTL a computation's result gets (a ttl function's included, jitter too); `cacheIf` is
    // not asked: an explicit set is the caller's decision. A TTL of 0 keeps nothing: the entry
    // is dropped, so that no older value outlives the set.
    const freshMs = freshMsOf(policy, value, args, false);
    if (freshMs === 0) {
      await this.invalidate(policy, args);
      return;
    }
    const storedAt = Date.now();
    // The tag hash is the store's to stamp: a placeholder until then.
    const record: EntryRecord = { tagHash: UNTAGGED_HASH, freshUntil: storedAt + freshMs, value, storedAt };
    let entry: StoredEntry = record;
    if (backend.storesBytes) {
      try {
        entry = codec.encode(record);
      } catch (error) {
        throw new SerializationError(entryKey, error);
      }
    }
    const ttlMs = freshMs + policy.staleWindowMs;
    this.inflight.delete(entryKey);
    try {
      await guard.invalidation('write', entryKey, () =>
        guard.deadline(backend, 'write', async () => {
          if (backend.set !== undefined) {
            await backend.set({ ref, tagKeys, entry, ttlMs });
            return;
          }
          // The invalidation deletes the lock (a computation in flight drops its write); the
          // read that follows gives the hash of the versions as they are after it.
          await backend.invalidate(ref);
          const { tagHash } = await backend.read({ ref, tagKeys, lockToken: undefined, lockTtlMs: 0 });
          await backend.write({ ref, entry: withTagHash(entry, tagHash), ttlMs, lockToken: undefined });
        }),
      );
    } finally {
      this.inflight.delete(entryKey);
    }
  }

  /**
   * `wrapped.refresh(...args)`: computes and stores the value whatever is cached, one caller
   * across processes: a read that ignores the entry takes the lock as a miss does; if another
   * caller holds it, this one waits for its write and resolves to that value (as a waiting
   * miss does, counted as one). Later calls in this process join the refresh.
   */
  refresh(policy: FunctionPolicy, thisArg: unknown, args: unknown[]): Promise<unknown> {
    const ctx = this.#ctx;
    let ref: EntryRef;
    let tagKeys: readonly string[];
    try {
      ref = entryRefOf(ctx.keyspace, policy, args);
      tagKeys = tagKeysOf(ctx.keyspace, policy, args);
    } catch (error) {
      return Promise.reject(error);
    }
    const backend = this.backend ?? this.#resolveBackend();
    const call: Call = {
      policy,
      thisArg,
      args,
      backend,
      request: { ref, tagKeys, lockToken: uniqueToken(), lockTtlMs: ctx.options.lockTimeoutMs },
      breaker: ctx.breakers.of(backend, ref),
      info: undefined,
    };
    let promise: Promise<unknown>;
    if (!ctx.breakers.allows(call.breaker)) {
      promise = this.#fallBack(call, 'circuit-open');
    } else {
      // Only the first read ignores the entry: after a wait, the holder's write is a hit.
      promise = this.#read({ ...call, request: { ...call.request, refresh: true } }).then(
        (reply) => {
          ctx.breakers.success(call.breaker);
          if (!reply.locked) return this.#afterMiss(call, { ...reply, entry: undefined, stale: false }, Date.now() + ctx.options.lockWaitMs);
          return this.#computer.withTimeouts(call, { tagHash: reply.tagHash, lockToken: call.request.lockToken, stale: undefined, store: true });
        },
        (error: unknown) => this.#readFailed(call, error),
      );
    }
    return this.#track(call, promise);
  }

  /** The first read's answer: a fresh hit is served here; anything else goes on. */
  #afterRead(call: Call, reply: ReadReply): unknown {
    this.#ctx.breakers.success(call.breaker);
    if (reply.entry !== undefined && !reply.stale) {
      const value = reply.early === true ? this.#earlyHit(call, reply) : this.#hitValue(call.request.ref.entryKey, reply.entry, 'backend', call.info);
      if (value !== CORRUPT) return value;
      return this.#recoverCorrupt(call);
    }
    return this.#afterMiss(call, reply, Date.now() + this.#ctx.options.lockWaitMs);
  }

  /**
   * A fresh entry's value, counted as a hit; {@link CORRUPT} (reported) if it does not decode.
   * `status`: for a `withInfo` call's `info`, `'joined'` when read after waiting for another's write.
   */
  #hitValue(entryKey: string, entry: StoredEntry, source: HitSource, info: InfoSink | undefined, status: 'hit' | 'joined' = 'hit'): unknown {
    const record = this.#decode(entryKey, entry);
    if (record === undefined) return CORRUPT;
    if (info !== undefined) info.read(record, status);
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
    if (call.info !== undefined) call.info.read(record, 'hit');
    recorder.hit(entryKey, 'backend');
    recorder.earlyRefresh(entryKey, record.freshUntil - Date.now());
    const plan = { tagHash: reply.tagHash, lockToken: call.request.lockToken, stale: undefined, store: true };
    this.#computer.run(call, plan).catch(() => undefined);
    return record.value;
  }

  /**
   * One read, under the backend deadline, traced on `hermes:read`; `sent`: a read already sent
   * (one of a batch's, see {@link ReadPath.many}).
   */
  #read(call: Call, sent?: Promise<ReadReply>): Promise<ReadReply> {
    const { backend, request } = call;
    const { guard, locks } = this.#ctx;
    const run = (): Promise<ReadReply> => {
      let read: Promise<ReadReply> | undefined;
      return guard.deadline(
        backend,
        'read',
        () => (read = sent ?? backend.read(request)),
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
    call.info?.fallback();
    this.#ctx.recorder.fallback(call.request.ref.entryKey, reason);
    return invoke(call);
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
          const value = reply.early === true ? this.#earlyHit(call, reply) : this.#hitValue(entryKey, reply.entry, 'backend', call.info, 'joined');
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
