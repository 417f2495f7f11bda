/**
 * The Redis backend's side of its near-cache: what `RedisBackend` calls on each operation when
 * the `nearCache` option is on — serve a hit from memory (`peek`), fill it from a read, drop
 * what this process invalidates — with the entries' keys as Redis stores them (on a cluster,
 * moved into their buckets: the keys the invalidation messages name). The memory is in
 * `near-cache.ts`; tracking, which keeps it true, in `tracking.ts` and `tracking-cluster.ts`.
 *
 * @module
 */

import type { Cluster, Redis } from 'ioredis';
import type { EntryRef, NearCacheStats, ReadRequest, StoredEntry } from '../backend.js';
import type { NearCache, NearCacheSettings } from './near-cache.js';
import type { AttachedPrefixes, Placement } from './placement.js';
import { type NearTracker, NearTracking } from './tracking.js';
import { ClusterNearTracking } from './tracking-cluster.js';
import type { InvalidationListener } from './wakeups.js';

/** An entry's stored keys on a cluster, remembered per `EntryRef`. */
interface StoredKeys {
  /** The tag keys as the cache names them (the policy's array). */
  readonly named: readonly string[];
  readonly entryKey: string;
  readonly lockKey: string;
  readonly tagKeys: readonly string[];
}

/** The near-cache as the backend uses it; see the module documentation. */
export class NearFront {
  /** The tracking (one server, or a cluster's masters). */
  readonly tracker: NearTracker;
  /** On one server: the listener of the lock wake-ups' subscriber, which is also the invalidation connection. */
  readonly listener: InvalidationListener | undefined;
  /** A fresh entry from memory (see {@link Backend.peek}). */
  readonly peek: (ref: EntryRef, tagKeys: readonly string[]) => StoredEntry | undefined;
  /**
   * See {@link Backend.changedSince}: the entry, its tags, or its lock — a lock deleted while its
   * holder computes is an invalidation of an entry that does not exist yet (Redis names the lock
   * key, which `read.lua` reads when it takes it).
   */
  readonly changedSince: (ref: EntryRef, tagKeys: readonly string[], mark: number) => boolean;
  readonly #cache: NearCache;
  readonly #placement: Placement;
  readonly #prefixes: AttachedPrefixes;
  readonly #stored = new WeakMap<EntryRef, StoredKeys>();

  /**
   * @param client - the backend's client
   * @param settings - the near-cache's settings
   * @param placement - where the backend stores keys
   * @param prefixes - the attached caches (their codecs decode what enters memory)
   * @param onError - the backend's error listener
   * @param openSubscriber - opens the lock wake-ups' subscriber (on one server, the invalidation connection)
   */
  constructor(
    client: Redis | Cluster,
    settings: NearCacheSettings,
    placement: Placement,
    prefixes: AttachedPrefixes,
    onError: (error: unknown) => void,
    openSubscriber: () => void,
  ) {
    if (placement.layout === undefined) {
      const single = new NearTracking(client as Redis, settings, onError, openSubscriber);
      this.tracker = single;
      this.listener = single;
    } else {
      this.tracker = new ClusterNearTracking(client as Cluster, settings, onError);
    }
    const cache = (this.#cache = this.tracker.cache);
    this.#placement = placement;
    this.#prefixes = prefixes;
    if (placement.layout === undefined) {
      // On one server the stored keys are the keys the cache names.
      this.peek = (ref, tagKeys) => cache.get(ref.entryKey, tagKeys);
      this.changedSince = (ref, tagKeys, mark) => cache.changedSince(ref.entryKey, tagKeys, mark) || cache.keyChangedSince(ref.lockKey, mark);
    } else {
      this.peek = (ref, tagKeys) => {
        const stored = this.#storedKeys(ref, tagKeys);
        return cache.get(stored.entryKey, stored.tagKeys);
      };
      this.changedSince = (ref, tagKeys, mark) => {
        const stored = this.#storedKeys(ref, tagKeys);
        return cache.changedSince(stored.entryKey, stored.tagKeys, mark) || cache.keyChangedSince(stored.lockKey, mark);
      };
    }
  }

  /** See {@link Backend.changeMark}. */
  readonly changeMark = (): number => this.#cache.seq;

  /** Before a read is sent: starts tracking on the first, and the sequence number the read remembers. */
  readSent(): number {
    this.tracker.start();
    return this.#cache.seq;
  }

  /** A fresh hit read by a request sent at `since`: kept (decoded with its prefix's codec) unless a key changed meanwhile. */
  fill(request: ReadRequest, since: number, bytes: Buffer): void {
    const context = this.#prefixes.context(request.ref.prefix);
    if (context === undefined) return;
    if (this.#placement.layout === undefined) {
      this.#cache.fill(request.ref.entryKey, request.tagKeys, since, bytes, context.codec);
    } else {
      const stored = this.#storedKeys(request.ref, request.tagKeys);
      this.#cache.fill(stored.entryKey, stored.tagKeys, since, bytes, context.codec);
    }
  }

  /**
   * This process invalidates an entry: dropped now, and by the returned function again once
   * the request is acknowledged (a read answered in between may have filled it), without
   * waiting for Redis' message.
   */
  invalidating(ref: EntryRef): () => void {
    const keys = [this.#placement.keysOf(ref, [])[0] as string];
    this.#cache.changed(keys);
    return () => {
      this.#cache.changed(keys);
    };
  }

  /** As {@link NearFront.invalidating}, for tags: every stored copy of them. */
  cleaningTags(prefix: string, tagKeys: readonly string[]): () => void {
    const keys = this.#placement.copiesOf(prefix, tagKeys);
    this.#cache.changed(keys);
    return () => {
      this.#cache.changed(keys);
    };
  }

  /** As {@link NearFront.invalidating}, for everything (`clear()`). */
  clearing(): () => void {
    this.#cache.flush();
    return () => {
      this.#cache.flush();
    };
  }

  /** The counters. */
  stats(): NearCacheStats {
    return this.#cache.stats();
  }

  /** Stops tracking and empties memory for good. */
  close(): void {
    this.tracker.close();
  }

  /** On a cluster: the stored keys of an entry and of its bucket's tag copies, remembered per `EntryRef` (the core reuses them). */
  #storedKeys(ref: EntryRef, tagKeys: readonly string[]): StoredKeys {
    const known = this.#stored.get(ref);
    if (known !== undefined && known.named === tagKeys) return known;
    const keys = this.#placement.keysOf(ref, tagKeys);
    const stored: StoredKeys = { named: tagKeys, entryKey: keys[0] as string, lockKey: keys[1] as string, tagKeys: keys.slice(2) };
    this.#stored.set(ref, stored);
    return stored;
  }
}
