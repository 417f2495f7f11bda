/**
 * The Backend contract: the few high-level operations every store implements, each with its
 * meaning and its round-trip budget. The core ({@link Hermes}) holds all policy — key names,
 * tags, stampede prevention, fail-open — and backends stay thin: they store, compare a tag hash
 * and take or release a lock, atomically where the store allows.
 *
 * A backend is bound to one cache's key space by {@link Backend.attach} before its first use.
 * Requests name an entry by an {@link EntryRef} — its prefix, its id and the keys built from
 * them — so that a backend never parses a key to learn which prefix or entry it belongs to.
 *
 * @module
 */

import type { EntryCodec, EntryRecord } from '../codec.js';
import type { EntryRef } from '../keys.js';

export type { EntryRef } from '../keys.js';

/**
 * What a backend stores under an entry key: the encoded bytes (header + payload, see
 * `codec.ts`) for backends whose {@link Backend.storesBytes} is `true`, or the record itself for
 * an in-process store that keeps live values.
 */
export type StoredEntry = Uint8Array | EntryRecord;

/** Counters of the near-cache, from {@link Backend.nearCacheStats} (and `stats().near` of a cache). */
export interface NearCacheStats {
  /** Calls served from the near-cache, without a request. */
  hits: number;
  /** Fresh entries read from Redis and kept. */
  fills: number;
  /** Keys named by invalidation messages from Redis (entry keys and tag keys). */
  invalidations: number;
  /** Times the near-cache was emptied: a flush-everything message, a lost or new connection, a missed heartbeat, `clean()`. */
  flushes: number;
  /** Reads that could not be served from memory because tracking was not (yet) established. */
  bypassed: number;
  /** Entries held now. */
  entries: number;
  /** Bytes held now (see {@link NearCacheOptions.maxBytes}). */
  bytes: number;
}

/** What a backend is told when it is bound to a cache. */
export interface BackendContext {
  /** The cache's key prefix; every key the backend is given starts with `${prefix}:`. */
  readonly prefix: string;
  /** Encodes and decodes entries; backends use it for {@link Backend.dump}. */
  readonly codec: EntryCodec;
}

/** One read of one entry: see {@link Backend.read}. */
export interface ReadRequest {
  /** The entry, with its key (`{prefix}:entry:{id}`) and its lock's key (`{prefix}:lock:{id}`). */
  readonly ref: EntryRef;
  /**
   * The keys of the entry's tags (`{prefix}:tag:{tag}`, under the entry's prefix), in the order
   * the tag hash uses. They may differ between calls of one function (a `tags` function of the
   * arguments); the core passes the same array for the same list, so per-list state kept by
   * identity stays useful, but a backend must not assume one list per function.
   */
  readonly tagKeys: readonly string[];
  /** On a miss, take the lock with this token; `undefined` reads without locking. */
  readonly lockToken: string | undefined;
  /** How long a taken lock lives before it expires by itself, in milliseconds. */
  readonly lockTtlMs: number;
  /**
   * `true` for `wrapped.refresh()`: the read ignores the stored entry (it answers as on a miss,
   * `entry` undefined) and tries the lock with {@link ReadRequest.lockToken}, so that one caller
   * across processes recomputes whatever is cached. Absent or `false`: an ordinary read.
   */
  readonly refresh?: boolean | undefined;
  /**
   * Optional: early refresh's `beta` (> 0). A read that finds the entry fresh decides, by the
   * store's clock, whether to refresh it before it expires (XFetch, see `refreshEarly` in
   * `backend/early.ts`, weighed by the header's compute time); if so and the request has a
   * `lockToken`, it tries to take the lock, and a read that takes it replies with
   * {@link ReadReply.early}. Every other reader keeps getting plain hits. `undefined`: never.
   */
  readonly earlyRefresh?: number | undefined;
}

/** The answer to a {@link ReadRequest}. */
export interface ReadReply {
  /**
   * On a hit, the stored entry, whose tag hash equals {@link ReadReply.tagHash}; `undefined`
   * on a miss (absent, expired, or written under other tag versions).
   */
  readonly entry: StoredEntry | undefined;
  /**
   * The hash of the tags' current versions (missing versions were created by this read). A
   * value computed after this read is written with this hash, so that an invalidation that
   * happens meanwhile makes the written entry invalid at birth. The core treats it as opaque
   * (16 characters, the header's field): a backend may fold further versions into it, as the
   * Memcached backend does with its per-prefix namespace version.
   */
  readonly tagHash: string;
  /**
   * Whether this read took the entry's lock with the request's token: on a miss, or on a
   * stale hit (the caller that holds the lock refreshes the entry).
   */
  readonly locked: boolean;
  /**
   * `true` when {@link ReadReply.entry} matched its tags but is past its fresh-until time
   * (the header's field, compared with the store's clock where it has one): a value that may
   * still be served under `grace` or `staleWhileRevalidate`. A stale read tries to take the
   * lock like a miss. `false` on a fresh hit and on a miss.
   */
  readonly stale: boolean;
  /**
   * `true` on a fresh hit whose read decided to refresh the entry early
   * ({@link ReadRequest.earlyRefresh}) and took its lock with the request's token (`locked` is
   * then `true` too): the caller serves the entry and refreshes it. Absent or `false` otherwise.
   */
  readonly early?: boolean | undefined;
}

/** One write of one entry: see {@link Backend.write}. */
export interface WriteRequest {
  /** The entry (and its lock). */
  readonly ref: EntryRef;
  /** What to store: bytes when {@link Backend.storesBytes}, else the record. */
  readonly entry: StoredEntry;
  /** How long the store keeps the entry, in milliseconds (> 0). */
  readonly ttlMs: number;
  /** Release the lock if it is still held with this token; `undefined` leaves the lock alone. */
  readonly lockToken: string | undefined;
}

/** One direct write of one entry, `wrapped.set(args, value)`: see {@link Backend.set}. */
export interface SetRequest {
  /** The entry (and its lock). */
  readonly ref: EntryRef;
  /** The keys of the entry's tags, in the order the tag hash uses (as in {@link ReadRequest.tagKeys}). */
  readonly tagKeys: readonly string[];
  /**
   * What to store: bytes when {@link Backend.storesBytes}, else the record. Its tag hash is a
   * placeholder: the backend replaces it with the hash of the tags' current versions (bytes:
   * the header's 16 tag-hash characters, at `TAG_HASH_OFFSET`).
   */
  readonly entry: StoredEntry;
  /** How long the store keeps the entry, in milliseconds (> 0). */
  readonly ttlMs: number;
}

/**
 * The Backend contract. Every method returns a promise that rejects on a store failure; the
 * core turns such rejections into `error` events and falls back to the function.
 *
 * Round-trip budget, counted as requests sent to a remote store: read = 1, write = 1,
 * release = 1, invalidate = 1, cleanTags = 1. `waitForRelease` sends nothing per waiter on a
 * store with push notifications beyond a subscription per waited lock and process (Redis:
 * subscribe, a check that the lock still exists, unsubscribe). `clear` and `dump` scan and may
 * cost more.
 */
export interface Backend {
  /**
   * `true` when the backend stores bytes: the core then encodes entries with the codec before
   * {@link Backend.write} and decodes what {@link Backend.read} returns. `false` for a store
   * that keeps {@link EntryRecord}s as live values.
   */
  readonly storesBytes: boolean;

  /**
   * Binds the backend to a cache's key space. Called by the cache before the first operation;
   * it must not open connections (construction and attachment are side-effect free).
   */
  attach(context: BackendContext): void;

  /**
   * Reads an entry, atomically and in one round trip: fetches the entry and the current
   * versions of its tags, creates the versions that are missing (a fresh random value each),
   * hashes them ({@link tagHash}), and compares with the entry's stored tag hash. Equal and
   * before its fresh-until time: a hit. Equal but past it: a stale hit, returned with
   * `stale: true`, and when `lockToken` is given the read tries to take the lock. Otherwise a
   * miss, and when `lockToken` is given it tries to take the lock
   * (`SET ref.lockKey token NX PX lockTtlMs`). A fresh hit of a request with
   * {@link ReadRequest.earlyRefresh} may decide to refresh early: it then tries the lock too,
   * and replies {@link ReadReply.early} if it took it (a plain hit if not).
   */
  read(request: ReadRequest): Promise<ReadReply>;

  /**
   * Optional: many reads at once, each with exactly the meaning of {@link Backend.read} — the
   * batch read of `wrapped.many(argsList)`. Returns one promise per request, in order, each
   * settling on its own (a failing server fails only the entries it serves). Budget: one
   * request per server for the whole batch (Redis: one script call per slot, the calls of one
   * server in one socket write; Memcached: one multi-get per server, then the lock attempts of
   * the misses). Without it the core calls {@link Backend.read} once per request.
   */
  readMany?(requests: readonly ReadRequest[]): Promise<ReadReply>[];

  /**
   * Optional: the same as {@link Backend.read}, answered synchronously. Only an in-process
   * store can offer it; the core uses it to serve hits without a promise hop.
   */
  readSync?(request: ReadRequest): ReadReply;

  /**
   * Optional: `true` for a store inside this process, which cannot hang: the core puts no
   * deadline (`backendTimeout`) on its calls. The in-process backend sets it.
   */
  readonly inProcess?: boolean;

  /**
   * Optional: a fresh entry this process holds in memory in front of a remote store (a
   * near-cache), answered without a request; `undefined` when it has none it can vouch for, and
   * the core then calls {@link Backend.read}. Never a stale entry: stale values, locks and misses
   * stay the store's decision.
   */
  peek?(ref: EntryRef, tagKeys: readonly string[]): StoredEntry | undefined;

  /**
   * Optional, with {@link Backend.changedSince}: a number that grows with every change of a key
   * this process hears of (its own invalidations and the store's notifications).
   */
  changeMark?(): number;

  /**
   * Optional: whether the entry or one of its tags changed, as far as this process has heard,
   * after {@link Backend.changeMark} returned `mark` (`true` when it cannot tell). The core does
   * not let a call join a call in flight that started before such a change.
   */
  changedSince?(ref: EntryRef, tagKeys: readonly string[], mark: number): boolean;

  /** Optional: the counters of a near-cache, when the backend has one turned on. */
  nearCacheStats?(): NearCacheStats | undefined;

  /**
   * Optional: the part of the store that serves an entry — on a sharded store, the node its
   * key lives on (a Redis Cluster master, as `host:port`) — or `undefined` when unknown. The
   * core keeps one circuit breaker per domain, so that the failures of one node do not send
   * the calls served by the others around the cache. Called once per wrapped call that reaches
   * the backend: it must be cheap and must not throw. Backends without it have one breaker.
   */
  failureDomain?(ref: EntryRef): string | undefined;

  /**
   * Stores an entry with its TTL and, in the same round trip, releases the lock held with
   * `lockToken` (compare-and-delete), waking the waiters on it.
   *
   * With a `lockToken`, the entry is stored only if the lock is still held with that token:
   * if the lock expired or an {@link Backend.invalidate} removed it while the function ran, the
   * result is not stored (it may predate the invalidation). Without a token the entry is
   * stored unconditionally. Resolves `true` if the entry was stored.
   */
  write(request: WriteRequest): Promise<boolean>;

  /**
   * Optional: stores an entry under the tags' current versions, atomically and in one round
   * trip where the store allows: reads the versions (creating the missing ones, as
   * {@link Backend.read} does), stamps their hash into the entry, stores it with its TTL,
   * deletes the entry's lock whoever holds it — so that a computation in flight drops its write
   * (see {@link Backend.write}) — and wakes the lock's waiters. An invalidation after it makes
   * the entry invalid; one before it is seen by it. Without it the core invalidates, reads the
   * tag hash and writes: three requests.
   */
  set?(request: SetRequest): Promise<void>;

  /**
   * Releases a lock held with `token` without writing (the function threw), waking the
   * waiters. A lock held with another token is left alone. One round trip.
   */
  release(ref: EntryRef, token: string): Promise<void>;

  /**
   * Resolves when the lock is released or its entry written (by any process sharing the
   * store), or after `timeoutMs`, whichever comes first; `true` if woken, `false` on timeout.
   * Never a tight poll: a store with push notifications waits for the push. A wake-up that
   * may have been missed is reported as woken (the caller just reads again).
   */
  waitForRelease(ref: EntryRef, timeoutMs: number): Promise<boolean>;

  /**
   * Deletes an entry and its lock, in one round trip, waking the lock's waiters. Removing the
   * lock makes a computation that is running meanwhile drop its write (see
   * {@link Backend.write}), so nothing computed before the invalidation is stored after it.
   */
  invalidate(ref: EntryRef): Promise<void>;

  /**
   * Invalidates every entry carrying any of these tags by deleting the tag keys (each
   * `{prefix}:tag:{tag}`, under `prefix`): one key per tag whatever the number of entries, in
   * one round trip.
   */
  cleanTags(prefix: string, tagKeys: readonly string[]): Promise<void>;

  /**
   * Removes every key under `${prefix}:` (entries, tags, locks), and nothing else. The cache
   * passes its own prefix, so one backend instance may serve caches of several prefixes.
   */
  clear(prefix: string): Promise<void>;

  /**
   * Every key under `${prefix}:` (default: the attached cache's prefix) with its decoded
   * value, for inspection: entries as their cached values, tags as their versions, locks as
   * their tokens. An entry that fails to decode appears as the {@link CorruptEntryError} that
   * describes it.
   */
  dump(prefix?: string): Promise<Record<string, unknown>>;

  /** Releases connections and timers; pending waits resolve as timed out. Idempotent. */
  close(): Promise<void>;
}

/**
 * A backend class, as given to `new Hermes(BackendClass, options)`: constructed lazily, on
 * first use, with the options that are not the cache's own. Its two optional static members
 * let a misconfigured cache fail when it is constructed rather than at its first call.
 */
export interface BackendClass<Options = object> {
  /** @param options - the backend's own options */
  new (options: Options): Backend;
  /**
   * Every option name the backend takes. When present, `new Hermes(BackendClass, options)`
   * rejects any option that is neither the cache's nor one of these, with an
   * {@link OptionError} suggesting the closest known name (a misspelling such as `tll`).
   * Absent: options the cache does not know all go to the backend unchecked.
   */
  readonly optionNames?: ReadonlySet<string> | undefined;
  /**
   * Checks the backend's options the way its constructor would, throwing the same
   * {@link OptionError}, but without opening a connection or starting a timer: `new Hermes`
   * calls it at once, so that a bad option fails there and not at the first call.
   */
  validateOptions?(options: Options): void;
}
