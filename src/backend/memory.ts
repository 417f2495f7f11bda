/**
 * The in-process backend: the embedded default. A bounded LRU with per-entry TTL (lru-cache),
 * holding entries, tag versions and locks of every cache attached to it. Locks and waiters
 * make the stampede protection work between several `Hermes` instances sharing one backend.
 *
 * @module
 */

import { LRUCache } from 'lru-cache';
import { computeMsOf, type EntryRecord, FRESH_UNTIL_OFFSET, freshUntilOf, TAG_HASH_OFFSET, tagHash } from '../codec.js';
import { OptionError } from '../errors.js';
import { uniqueToken } from '../keys.js';
import { describeValue, rejectUnknownOptions } from '../options.js';
import type { Backend, BackendContext, EntryRef, ReadReply, ReadRequest, SetRequest, StoredEntry, WriteRequest } from './backend.js';
import { wantsEarlyRefresh } from './early.js';
import { decodeForDump, integerOption, LockWaiters, sortedByKey, withTagHash } from './kit.js';

/** Options of the {@link MemoryBackend}. */
export interface MemoryBackendOptions {
  /**
   * The most keys (entries and tag versions together) kept; the least recently used go first.
   * @default 10000
   */
  maxEntries?: number | undefined;
  /**
   * The most bytes kept, measured as encoded bytes when `serialize` is `true`, or by `sizeOf`
   * otherwise. `undefined`: no byte bound (`maxEntries` still applies).
   * @default undefined
   */
  maxBytes?: number | undefined;
  /**
   * `false` keeps live values: a hit returns the very object that was cached, so callers must
   * not mutate it — the fastest setting. `true` stores encoded bytes (as Redis and Memcached
   * do): each hit decodes a fresh copy, and `maxBytes` is exact.
   * @default false
   */
  serialize?: boolean | undefined;
  /**
   * Estimates the size in bytes of a live value, for `maxBytes` when `serialize` is `false`.
   * @default a rough estimate: 2 bytes per string character, 8 per number, and so on
   */
  sizeOf?: ((value: unknown) => number) | undefined;
}

type Stored = StoredEntry | string; // entries, or tag versions

interface Lock {
  token: string;
  expiresAt: number;
}

/**
 * In-process store, bounded by entry count and optionally bytes. Give a `MemoryBackend`
 * instance to several `Hermes` instances to share entries, tags and locks between them.
 */
export class MemoryBackend implements Backend {
  /** Whether entries are stored as encoded bytes (the `serialize` option). */
  readonly storesBytes: boolean;
  /** Always `true`: the store is in this process and cannot hang. */
  readonly inProcess: boolean = true;
  readonly #lru: LRUCache<string, Stored>;
  readonly #locks = new Map<string, Lock>();
  readonly #waiters = new LockWaiters();
  /** The last tag hash computed for a tag-key list (the same array for every call of a function). */
  readonly #lastHash = new WeakMap<readonly string[], { versions: string[]; hash: string }>();
  #context: BackendContext | undefined;
  readonly #maxBytes: number | undefined;
  /** Stored entries whose TTL in the LRU ends no later than their fresh time. */
  readonly #freshForLife = new WeakSet<object>();
  readonly #sizeOf: ((value: Stored, key: string) => number) | undefined;

  /** The names of the backend's options ({@link MemoryBackendOptions}); see {@link BackendClass.optionNames}. */
  static readonly optionNames: ReadonlySet<string> = new Set(
    Object.keys({ maxEntries: true, maxBytes: true, serialize: true, sizeOf: true } satisfies Record<keyof MemoryBackendOptions, true>),
  );

  /**
   * Checks the options' values as the constructor does, creating nothing; see
   * {@link BackendClass.validateOptions}. Unknown names are left to {@link MemoryBackend.optionNames}
   * (which a subclass with options of its own extends) and to the constructor.
   * @throws {@link OptionError} naming the first bad option
   */
  static validateOptions(options: MemoryBackendOptions = {}): void {
    if (options === null || typeof options !== 'object') throw new OptionError('options', 'options must be an object');
    integerOption(options.maxEntries ?? 10_000, 'maxEntries', 1);
    if (options.maxBytes !== undefined) integerOption(options.maxBytes, 'maxBytes', 1);
    if (options.serialize !== undefined && typeof options.serialize !== 'boolean') {
      throw new OptionError('serialize', `serialize must be a boolean, got ${describeValue(options.serialize)}`);
    }
    if (options.sizeOf !== undefined && typeof options.sizeOf !== 'function') {
      throw new OptionError('sizeOf', `sizeOf must be a function of the value returning bytes, got ${describeValue(options.sizeOf)}`);
    }
  }

  /** @param options - bounds and storage mode; see {@link MemoryBackendOptions} */
  constructor(options: MemoryBackendOptions = {}) {
    MemoryBackend.validateOptions(options);
    rejectUnknownOptions(options, MemoryBackend.optionNames);
    const maxEntries = integerOption(options.maxEntries ?? 10_000, 'maxEntries', 1);
    const maxBytes = options.maxBytes === undefined ? undefined : integerOption(options.maxBytes, 'maxBytes', 1);
    this.storesBytes = options.serialize ?? false;
    const sizeOf = options.sizeOf ?? estimateSize;
    const sizeCalculation = (value: Stored, key: string): number =>
      Math.max(
        1,
        key.length +
          (typeof value === 'string' ? value.length : value instanceof Uint8Array ? value.length : 40 + sizeOf(value.value)),
      );
    this.#maxBytes = maxBytes;
    this.#sizeOf = maxBytes === undefined ? undefined : sizeCalculation;
    this.#lru = new LRUCache<string, Stored>({
      max: maxEntries,
      ...(maxBytes === undefined ? {} : { maxSize: maxBytes, sizeCalculation }),
    });
  }

  /** Binds the backend to a cache's key space. */
  attach(context: BackendContext): void {
    this.#context = context;
  }

  /** The synchronous read the core uses on the hot path; same meaning as {@link read}. */
  readSync(request: ReadRequest): ReadReply {
    return this.#read(request);
  }

  /** Reads an entry, creating missing tag versions and taking the lock on a miss. */
  read(request: ReadRequest): Promise<ReadReply> {
    return Promise.resolve(this.#read(request));
  }

  /** Many reads, answered at once from memory (see {@link Backend.readMany}). */
  readMany(requests: readonly ReadRequest[]): Promise<ReadReply>[] {
    return requests.map((request) => {
      try {
        return Promise.resolve(this.#read(request));
      } catch (error) {
        return Promise.reject(error);
      }
    });
  }

  #read(request: ReadRequest): ReadReply {
    const lru = this.#lru;
    let hash: string;
    const { tagKeys } = request;
    if (tagKeys.length === 0) {
      hash = tagHash(tagKeys);
    } else {
      const versions: string[] = [];
      let same = true;
      const last = this.#lastHash.get(tagKeys);
      for (let i = 0; i < tagKeys.length; i++) {
        const tagKey = tagKeys[i] as string;
        let version = lru.get(tagKey);
        if (typeof version !== 'string') {
          version = uniqueToken();
          lru.set(tagKey, version);
        }
        if (last === undefined || last.versions[i] !== version) same = false;
        versions.push(version);
      }
      if (same && last !== undefined) {
        hash = last.hash;
      } else {
        hash = tagHash(versions);
        this.#lastHash.set(tagKeys, { versions, hash });
      }
    }
    const stored = request.refresh === true ? undefined : lru.get(request.ref.entryKey);
    if (stored !== undefined && typeof stored !== 'string' && storedTagHash(stored) === hash) {
      if (request.earlyRefresh !== undefined) {
        const early = this.#readEarly(request, stored, hash);
        if (early !== undefined) return early;
      }
      // Entries kept only for their fresh time (no grace, no stale-while-revalidate) are fresh
      // as long as the LRU holds them: no clock read on their hits.
      if (this.#freshForLife.has(stored)) return { entry: stored, tagHash: hash, locked: false, stale: false };
      const freshUntil = stored instanceof Uint8Array ? freshUntilOf(stored) : stored.freshUntil;
      if (freshUntil === undefined || freshUntil > Date.now()) return { entry: stored, tagHash: hash, locked: false, stale: false };
      // Past its fresh time but kept for grace / stale-while-revalidate: stale, and lockable.
      let locked = false;
      if (request.lockToken !== undefined) locked = this.#tryLock(request.ref.lockKey, request.lockToken, request.lockTtlMs);
      return { entry: stored, tagHash: hash, locked, stale: true };
    }
    let locked = false;
    if (request.lockToken !== undefined) locked = this.#tryLock(request.ref.lockKey, request.lockToken, request.lockTtlMs);
    return { entry: undefined, tagHash: hash, locked, stale: false };
  }

  /** Stores an entry unless its lock was lost, and releases the lock, waking waiters. */
  write(request: WriteRequest): Promise<boolean> {
    const { lockToken } = request;
    if (lockToken !== undefined) {
      const held = this.#locks.get(request.ref.lockKey);
      if (!held || held.token !== lockToken || held.expiresAt <= Date.now()) return Promise.resolve(false);
    }
    const size = this.#sizeOf?.(request.entry, request.ref.entryKey);
    if (size !== undefined && this.#maxBytes !== undefined && size > this.#maxBytes) {
      if (lockToken !== undefined) this.#unlock(request.ref.lockKey, lockToken);
      return Promise.reject(
        new Error(`the entry takes ${size} bytes, more than maxBytes (${this.#maxBytes}); it was not cached`),
      );
    }
    const { entry } = request;
    const ttl = Math.max(1, Math.ceil(request.ttlMs));
    const freshUntil = entry instanceof Uint8Array ? freshUntilOf(entry) : entry.freshUntil;
    // (Within 2 ms: the time between computing the fresh time and this write.)
    if (freshUntil !== undefined && Date.now() + ttl <= freshUntil + 2) this.#freshForLife.add(entry);
    this.#lru.set(request.ref.entryKey, entry, { ttl });
    if (lockToken !== undefined) this.#unlock(request.ref.lockKey, lockToken);
    return Promise.resolve(true);
  }

  /**
   * Stores an entry under the tags' current versions (created if missing), deletes its lock
   * whoever holds it (a computation in flight then drops its write) and wakes the waiters.
   */
  async set(request: SetRequest): Promise<void> {
    const { ref } = request;
    const { tagHash: hash } = this.#read({ ref, tagKeys: request.tagKeys, lockToken: undefined, lockTtlMs: 0 });
    await this.write({ ref, entry: withTagHash(request.entry, hash), ttlMs: request.ttlMs, lockToken: undefined });
    const held = this.#locks.get(ref.lockKey);
    if (held) this.#unlock(ref.lockKey, held.token);
  }

  /** Releases a lock held with `token`, waking waiters. */
  release(ref: EntryRef, token: string): Promise<void> {
    this.#unlock(ref.lockKey, token);
    return Promise.resolve();
  }

  /** Waits for the lock to be released, or `timeoutMs`; never longer than the lock lives. */
  waitForRelease(ref: EntryRef, timeoutMs: number): Promise<boolean> {
    const { lockKey } = ref;
    const lock = this.#locks.get(lockKey);
    if (!lock || lock.expiresAt <= Date.now()) return Promise.resolve(true);
    // The wait never outlives the lock: an expired lock frees its waiters too.
    const untilExpiry = lock.expiresAt - Date.now();
    return this.#waiters.wait(lockKey, Math.min(timeoutMs, untilExpiry), untilExpiry < timeoutMs);
  }

  /** Deletes an entry and its lock, waking the lock's waiters. */
  invalidate(ref: EntryRef): Promise<void> {
    this.#lru.delete(ref.entryKey);
    const held = this.#locks.get(ref.lockKey);
    if (held) this.#unlock(ref.lockKey, held.token);
    return Promise.resolve();
  }

  /** Deletes tag versions, invalidating every entry that carries them. */
  cleanTags(_prefix: string, tagKeys: readonly string[]): Promise<void> {
    for (const key of tagKeys) this.#lru.delete(key);
    return Promise.resolve();
  }

  /** Removes every key under `${prefix}:`; other caches' keys stay. */
  clear(prefix: string): Promise<void> {
    const start = `${prefix}:`;
    for (const key of [...this.#lru.keys()]) if (key.startsWith(start)) this.#lru.delete(key);
    for (const key of [...this.#locks.keys()]) if (key.startsWith(start)) this.#locks.delete(key);
    return Promise.resolve();
  }

  /** Every key under `${prefix}:` (default: the attached cache's) with its decoded value. */
  dump(prefix?: string): Promise<Record<string, unknown>> {
    const context = this.#requireContext();
    const { codec } = context;
    const start = `${prefix ?? context.prefix}:`;
    const out: Record<string, unknown> = {};
    for (const [key, value] of this.#lru.entries()) {
      if (!key.startsWith(start)) continue;
      out[key] = typeof value === 'string' ? value : decodeForDump(codec, key, value);
    }
    const now = Date.now();
    for (const [key, lock] of this.#locks) if (key.startsWith(start) && lock.expiresAt > now) out[key] = lock.token;
    return Promise.resolve(sortedByKey(out));
  }

  /** Drops nothing (the store lives as long as the object); resolves pending waits as timed out. */
  close(): Promise<void> {
    this.#waiters.closeAll();
    return Promise.resolve();
  }

  /** Writes raw bytes or a raw record under a key, as a test or a corrupt store would. */
  setRaw(key: string, value: Uint8Array | EntryRecord | string, ttlMs?: number): void {
    this.#lru.set(key, value, ttlMs === undefined ? {} : { ttl: ttlMs });
  }

  /**
   * A fresh entry that this read decides to refresh early (by this process' clock) and whose
   * lock it takes: the early reply; `undefined` for everything else (read on as usual).
   */
  #readEarly(request: ReadRequest, stored: StoredEntry, hash: string): ReadReply | undefined {
    const bytes = stored instanceof Uint8Array;
    const freshUntil = bytes ? freshUntilOf(stored) : stored.freshUntil;
    const now = Date.now();
    if (freshUntil === undefined || freshUntil <= now) return undefined;
    if (!wantsEarlyRefresh(request, freshUntil, bytes ? computeMsOf(stored) : stored.computeMs, now)) return undefined;
    if (!this.#tryLock(request.ref.lockKey, request.lockToken as string, request.lockTtlMs)) return undefined;
    return { entry: stored, tagHash: hash, locked: true, stale: false, early: true };
  }

  #tryLock(lockKey: string, token: string, ttlMs: number): boolean {
    const now = Date.now();
    const held = this.#locks.get(lockKey);
    if (held && held.expiresAt > now) return false;
    this.#locks.set(lockKey, { token, expiresAt: now + ttlMs });
    if (this.#locks.size > 1024 && this.#locks.size % 1024 === 0) this.#sweepLocks(now);
    return true;
  }

  #unlock(lockKey: string, token: string): void {
    const held = this.#locks.get(lockKey);
    if (!held || held.token !== token) return;
    this.#locks.delete(lockKey);
    this.#waiters.wake(lockKey);
  }

  #sweepLocks(now: number): void {
    for (const [key, lock] of this.#locks) if (lock.expiresAt <= now) this.#locks.delete(key);
  }

  #requireContext(): BackendContext {
    if (!this.#context) throw new Error('MemoryBackend is not attached to a cache yet');
    return this.#context;
  }
}

function storedTagHash(stored: StoredEntry): string | undefined {
  if (stored instanceof Uint8Array) {
    // The tag hash sits at a fixed offset of the header; a short or foreign value has none.
    if (stored.length < FRESH_UNTIL_OFFSET) return undefined;
    return Buffer.from(stored.buffer, stored.byteOffset + TAG_HASH_OFFSET, FRESH_UNTIL_OFFSET - TAG_HASH_OFFSET).toString('latin1');
  }
  return stored.tagHash;
}

/** A rough size in bytes of a live value, for `maxBytes` without `serialize`. */
function estimateSize(value: unknown, depth = 0): number {
  switch (typeof value) {
    case 'string':
      return 2 * value.length + 16;
    case 'number':
    case 'bigint':
      return 8;
    case 'boolean':
    case 'undefined':
      return 4;
    case 'object': {
      if (value === null) return 4;
      if (ArrayBuffer.isView(value)) return value.byteLength + 64;
      if (depth > 8) return 64;
      let size = 32;
      if (Array.isArray(value) || value instanceof Set) {
        for (const item of value) size += 8 + estimateSize(item, depth + 1);
      } else if (value instanceof Map) {
        for (const [k, v] of value) size += 16 + estimateSize(k, depth + 1) + estimateSize(v, depth + 1);
      } else {
        for (const [k, v] of Object.entries(value)) size += 16 + 2 * k.length + estimateSize(v, depth + 1);
      }
      return size;
    }
    default:
      return 16;
  }
}
