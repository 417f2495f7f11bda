/**
 * The near-cache of the Redis backend: fresh entries read through `read.lua`, kept in this
 * process and served without a request for as long as Redis has not said that one of their keys
 * changed (server-assisted client-side caching; the connections and messages are in
 * `tracking.ts`). This module is the memory side, with no I/O:
 *
 * - a bounded LRU of entries (`lru-cache`, by count and by bytes), each indexed by its entry key
 *   and by each of its tag keys, so that one invalidation message costs one lookup per key it
 *   names, never a scan;
 * - a change log: every key named by an invalidation (or by this process' own invalidations)
 *   gets the next sequence number. A read remembers the sequence number when it is sent, and its
 *   reply fills the near-cache only if none of its keys changed since — the reply may be older
 *   than an invalidation that arrived on the other connection first;
 * - trust: entries are served only while tracking is known to be on with a live redirect
 *   target, acknowledged by a heartbeat. Losing trust empties the near-cache and makes every
 *   read in flight unable to fill it.
 *
 * @module
 */

import { LRUCache } from 'lru-cache';
import type { NearCacheStats, StoredEntry } from '../backend.js';
import type { EntryCodec } from '../../codec.js';

/** The `nearCache` option of the Redis backend, as an object. */
export interface NearCacheOptions {
  /**
   * The most entries kept; the least recently used go first.
   * @default 10000
   */
  maxEntries?: number | undefined;
  /**
   * The most bytes kept, counted as the entries' encoded bytes plus their keys (an estimate of
   * the memory they hold); the least recently used go first.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number | undefined;
  /**
   * How often the connections are checked, in milliseconds: a PING on the invalidation
   * connection and `CLIENT TRACKINGINFO` on the data connection. Entries are served only while a
   * check sent less than twice this long ago was answered by both: the PING's answer proves that
   * every invalidation Redis sent before it has arrived, so even a silent network failure serves
   * nothing changed more than `2 × heartbeatMs` ago.
   * @default 1000
   */
  heartbeatMs?: number | undefined;
  /**
   * `true`: an object value is decoded once, when it enters the near-cache, and every hit
   * returns that same object, as the in-process backend does with live values — the fastest,
   * but callers must not mutate what they get. `false`: each hit of an object value decodes a
   * fresh copy from the bytes, as a hit read from Redis does. Other values (strings, numbers,
   * booleans, `null`, `undefined`) cannot be mutated and are decoded once either way.
   * @default false
   */
  liveValues?: boolean | undefined;
}

/** The defaults of {@link NearCacheOptions}. */
export const NEAR_CACHE_DEFAULTS = Object.freeze({
  /** See {@link NearCacheOptions.maxEntries}. */
  maxEntries: 10_000,
  /** See {@link NearCacheOptions.maxBytes}. */
  maxBytes: 64 * 1024 * 1024,
  /** See {@link NearCacheOptions.heartbeatMs}. */
  heartbeatMs: 1000,
  /** See {@link NearCacheOptions.liveValues}. */
  liveValues: false,
});

/** The near-cache's settings, validated (see the backend's options). */
export interface NearCacheSettings {
  readonly maxEntries: number;
  readonly maxBytes: number;
  readonly heartbeatMs: number;
  readonly liveValues: boolean;
}

/** One entry held in memory. */
interface NearEntry {
  /** What a hit returns: the bytes as Redis returned them, or their decoded record (see {@link NearCacheOptions.liveValues}). */
  readonly stored: StoredEntry;
  /** The size of the bytes. */
  readonly size: number;
  /** The tag keys of the read that filled it (the policy's own array). */
  readonly tagKeys: readonly string[];
  /** Its fresh-until time, on the server's clock (ms since the epoch). */
  readonly freshUntil: number;
}

/**
 * How long one event-loop turn may serve hits from memory, in ms. Invalidation messages are read
 * when the loop polls I/O, between turns: callers that chain near hits (each resolves in a
 * microtask) would otherwise never let it poll, and never hear of a change. Past this, a call
 * goes to Redis, whose reply ends the turn.
 */
const TURN_LIMIT_MS = 5;
/** The change log is forgotten past this many keys (reads in flight then cannot fill). */
const CHANGE_LOG_LIMIT = 100_000;
/** Per-entry overhead counted towards `maxBytes`, beside the bytes and the key. */
const ENTRY_OVERHEAD = 96;

/** The near-cache's memory; see the module documentation. */
export class NearCache {
  readonly #lru: LRUCache<string, NearEntry>;
  /** Entry keys by tag key. */
  readonly #byTag = new Map<string, Set<string>>();
  /** The sequence number of the last change of each key heard of. */
  #changed = new Map<string, number>();
  #seq = 0;
  /** Reads sent before this sequence number never fill (a flush, a trust change, a forgotten log). */
  #fillsFrom = 0;
  #trusted = false;
  /** Entries are served until this time (`Date.now()`), extended by each answered heartbeat. */
  #trustedUntil = 0;
  /** Added to `Date.now()` to be on the safe side of the server's clock: its offset plus the uncertainty. */
  #clockAhead = 0;
  readonly #stats = { hits: 0, fills: 0, invalidations: 0, flushes: 0, bypassed: 0 };
  readonly #liveValues: boolean;
  /** Whether a hit was served in the current event-loop turn (a `setImmediate` ends it), and when the first was. */
  #turnOpen = false;
  #turnAt = 0;
  readonly #turnEnded = (): void => {
    this.#turnOpen = false;
  };

  /** @param options - the near-cache's settings */
  constructor(options: NearCacheSettings) {
    this.#liveValues = options.liveValues;
    this.#lru = new LRUCache<string, NearEntry>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (entry, key) => entry.size + key.length + ENTRY_OVERHEAD,
      dispose: (entry, key) => {
        this.#unindex(key, entry.tagKeys);
      },
    });
  }

  /** The current sequence number: a read remembers it when it is sent. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * A fresh hit for this entry, from memory; `undefined` when the near-cache has none, or is
   * not trusted now, or the entry was filled under other tags, or is no longer fresh.
   */
  get(entryKey: string, tagKeys: readonly string[]): StoredEntry | undefined {
    if (!this.#trusted) {
      this.#stats.bypassed++;
      return undefined;
    }
    const entry = this.#lru.get(entryKey);
    if (entry === undefined) return undefined;
    const now = Date.now();
    if (!this.#turnOpen) {
      // The first hit of this event-loop turn: I/O was polled just before it (invalidations read).
      this.#turnOpen = true;
      this.#turnAt = now;
      setImmediate(this.#turnEnded);
    } else if (now - this.#turnAt > TURN_LIMIT_MS) {
      // Hits chained in microtasks (or a long task) for this long: messages wait unread.
      this.#stats.bypassed++;
      return undefined;
    }
    if (now >= this.#trustedUntil) {
      this.#stats.bypassed++;
      return undefined;
    }
    if (now + this.#clockAhead >= entry.freshUntil || !sameKeys(entry.tagKeys, tagKeys)) return undefined;
    this.#stats.hits++;
    return entry.stored;
  }

  /**
   * Keeps the bytes of a fresh hit read by a request sent at sequence number `since`, if the
   * near-cache is trusted, has been since the request was sent, and neither the entry key nor a
   * tag key changed meanwhile. Bytes that do not decode are not kept (the read path reports
   * them).
   */
  fill(entryKey: string, tagKeys: readonly string[], since: number, bytes: Buffer, codec: EntryCodec): void {
    if (!this.#trusted || this.changedSince(entryKey, tagKeys, since)) return;
    let stored: StoredEntry = bytes;
    let freshUntil: number;
    try {
      const record = codec.decode(bytes);
      freshUntil = record.freshUntil;
      const value = record.value;
      if (this.#liveValues || value === null || (typeof value !== 'object' && typeof value !== 'function')) stored = record;
    } catch {
      return;
    }
    this.#lru.set(entryKey, { stored, size: bytes.byteLength, tagKeys, freshUntil });
    if (!this.#lru.has(entryKey)) return; // larger than maxBytes
    for (let i = 0; i < tagKeys.length; i++) {
      const tagKey = tagKeys[i] as string;
      let entries = this.#byTag.get(tagKey);
      if (entries === undefined) this.#byTag.set(tagKey, (entries = new Set()));
      entries.add(entryKey);
    }
    this.#stats.fills++;
  }

  /** Whether the entry key or a tag key changed after sequence number `since` (or the log was forgotten). */
  changedSince(entryKey: string, tagKeys: readonly string[], since: number): boolean {
    if (since < this.#fillsFrom) return true;
    const changed = this.#changed;
    if (changed.size === 0) return false;
    if ((changed.get(entryKey) ?? 0) > since) return true;
    for (let i = 0; i < tagKeys.length; i++) if ((changed.get(tagKeys[i] as string) ?? 0) > since) return true;
    return false;
  }

  /** Whether one key changed after sequence number `since` (or the log was forgotten). */
  keyChangedSince(key: string, since: number): boolean {
    return since < this.#fillsFrom || (this.#changed.get(key) ?? 0) > since;
  }

  /**
   * An invalidation message from Redis: these keys changed (an entry key drops its entry, a
   * tag key every entry carrying it); `null` (a flush of the database) empties the near-cache.
   */
  invalidated(keys: readonly string[] | null): void {
    if (keys === null) {
      this.flush();
      return;
    }
    this.#stats.invalidations += keys.length;
    this.changed(keys);
  }

  /** Keys this process changes (its own invalidations), before and after the request. */
  changed(keys: readonly string[]): void {
    const seq = ++this.#seq;
    if (this.#changed.size + keys.length > CHANGE_LOG_LIMIT) {
      this.#changed = new Map();
      this.#fillsFrom = seq;
    }
    for (const key of keys) {
      this.#changed.set(key, seq);
      this.#lru.delete(key);
      const carriers = this.#byTag.get(key);
      if (carriers !== undefined) for (const entryKey of [...carriers]) this.#lru.delete(entryKey);
    }
  }

  /** Empties the near-cache; reads in flight cannot fill it. */
  flush(): void {
    this.#stats.flushes++;
    this.#fillsFrom = ++this.#seq;
    this.#lru.clear();
    this.#byTag.clear();
    this.#changed = new Map();
  }

  /** Tracking was lost or cannot be vouched for: emptied, and bypassed until {@link NearCache.trust}. */
  distrust(): void {
    if (this.#trusted || this.#lru.size > 0) this.flush();
    else this.#fillsFrom = ++this.#seq;
    this.#trusted = false;
    this.#trustedUntil = 0;
  }

  /**
   * Tracking is on (re-established): reads sent from now on may fill the near-cache.
   * @param until - see {@link NearCache.extend}
   * @param clockAhead - how far the server's clock may be ahead of this one, in ms
   */
  trust(until: number, clockAhead: number): void {
    this.#fillsFrom = ++this.#seq;
    this.#clockAhead = clockAhead;
    this.#trusted = true;
    this.#trustedUntil = until;
  }

  /** A heartbeat was answered: entries may be served until `until` (`Date.now()` time). */
  extend(until: number): void {
    if (this.#trusted && until > this.#trustedUntil) this.#trustedUntil = until;
  }

  /** Whether tracking is established (entries may be filled and served). */
  get trusted(): boolean {
    return this.#trusted;
  }

  /** A copy of the counters, with the current size. */
  stats(): NearCacheStats {
    return { ...this.#stats, entries: this.#lru.size, bytes: this.#lru.calculatedSize };
  }

  #unindex(entryKey: string, tagKeys: readonly string[]): void {
    for (let i = 0; i < tagKeys.length; i++) {
      const tagKey = tagKeys[i] as string;
      const entries = this.#byTag.get(tagKey);
      if (entries === undefined) continue;
      entries.delete(entryKey);
      if (entries.size === 0) this.#byTag.delete(tagKey);
    }
  }
}

/** Whether two tag-key lists are equal (the same array, mostly). */
function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
