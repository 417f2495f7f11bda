/**
 * Where the Redis backend's keys and commands go: one interface, {@link Placement}, with two
 * implementations chosen once at construction, so that the backend's methods hold no topology
 * branch:
 *
 * - {@link SingleNodePlacement} (a standalone or Sentinel server): keys are stored as the cache
 *   names them, on the one node;
 * - {@link ClusterPlacement} (Redis Cluster): keys are moved into hash-tag buckets (see
 *   `buckets.ts`), `clean(tags)` deletes each tag's copy in every bucket, scans run on every
 *   master.
 *
 * The cache names its keys `{prefix}:{kind}:…`; {@link AttachedPrefixes} finds which attached
 * prefix a key is under, for its bucket and for its lock's release channel.
 *
 * @module
 */

import { type Cluster, type Redis } from 'ioredis';
import type { BackendContext } from '../backend.js';
import { OptionError } from '../../errors.js';
import { BucketLayout } from './buckets.js';
import { type ClusterReadiness, cleanTagsOnCluster, groupBySlot } from './cluster.js';

/** The kinds of key the cache names. */
export type KeyKind = 'entry' | 'lock' | 'tag';

/** The prefixes of the caches attached to a backend, and what a key's prefix tells. */
export class AttachedPrefixes {
  readonly #contexts = new Map<string, BackendContext>();
  #last: BackendContext | undefined;
  /** The prefix of the last key looked up, with its colon (hot-path memo). */
  #memo = '';
  // The channel of the last lock key's prefix, memoised for the hot path.
  #lockStart = '';
  #channel = '';

  /** Remembers a cache's context under its prefix; the last one attached is the default. */
  attach(context: BackendContext): void {
    this.#last = context;
    this.#contexts.set(context.prefix, context);
  }

  /** The context attached under `prefix`, else the last one attached. */
  context(prefix?: string): BackendContext | undefined {
    return prefix === undefined ? this.#last : (this.#contexts.get(prefix) ?? this.#last);
  }

  /**
   * The index just after `{prefix}:` in a key of the given kind: the attached prefix it starts
   * with (the longest one), else the text before the first `:{kind}:`.
   */
  endOf(key: string, kind: KeyKind): number {
    const memo = this.#memo;
    if (memo !== '' && this.#contexts.size <= 1 && key.startsWith(memo)) return memo.length;
    let prefix: string | undefined;
    for (const candidate of this.#contexts.keys()) {
      if (key.startsWith(`${candidate}:${kind}:`) && (prefix === undefined || candidate.length > prefix.length)) prefix = candidate;
    }
    if (prefix === undefined) {
      const at = key.indexOf(`:${kind}:`);
      if (at < 0) throw new TypeError(`Not a hermes ${kind} key: '${key}'`);
      return at + 1;
    }
    this.#memo = `${prefix}:`;
    return prefix.length + 1;
  }

  /** The release channel of a lock key: `{prefix}:unlock` of the attached prefix it is under. */
  channelOf(lockKey: string): string {
    if (this.#lockStart !== '' && lockKey.startsWith(this.#lockStart)) return this.#channel;
    let prefix: string | undefined;
    for (const candidate of this.#contexts.keys()) {
      if (lockKey.startsWith(`${candidate}:lock:`) && (prefix === undefined || candidate.length > prefix.length)) {
        prefix = candidate;
      }
    }
    if (prefix === undefined) {
      const at = lockKey.indexOf(':lock:');
      prefix = at < 0 ? lockKey : lockKey.slice(0, at);
    }
    this.#lockStart = `${prefix}:lock:`;
    this.#channel = `${prefix}:unlock`;
    return this.#channel;
  }
}

/** Where keys are stored and commands sent; see the module documentation. */
export interface Placement {
  /** The bucket layout on a cluster; `undefined` on a single node. */
  readonly layout: BucketLayout | undefined;
  /** Throws an {@link OptionError} if a cache's prefix cannot be used here. */
  checkPrefix(prefix: string): void;
  /** The KEYS of `read.lua`: the entry, its lock, then its tags, all of one slot. */
  readKeys(entryKey: string, lockKey: string, tagKeys: readonly string[]): string[];
  /** Where an entry, or a lock, is stored. */
  place(key: string, kind: 'entry' | 'lock'): string;
  /** See {@link RedisBackend.storedKey}. */
  storedKey(key: string, entryKey?: string): string;
  /** See {@link RedisBackend.failureDomain}. */
  failureDomain(entryKey: string): string | undefined;
  /** The key the cache names, from a stored key found under `prefix`. */
  unplace(stored: string, prefix: string): string;
  /** Deletes tag versions: with `script` (`cleanTags.lua`) on one node. */
  cleanTags(tagKeys: readonly string[], script: (keys: readonly string[]) => Promise<void>): Promise<void>;
  /** The nodes holding keys: what a SCAN must visit. */
  nodes(): Promise<Redis[]>;
  /** Keys grouped so that each group may go in one multi-key command. */
  bySlot(keys: string[]): string[][];
}

/** A standalone or Sentinel server: keys stored as named, on the one node. */
export class SingleNodePlacement implements Placement {
  readonly layout = undefined;
  readonly #client: Redis;

  /** @param client - the client of the node */
  constructor(client: Redis) {
    this.#client = client;
  }

  checkPrefix(): void {}

  readKeys(entryKey: string, lockKey: string, tagKeys: readonly string[]): string[] {
    const keys = [entryKey, lockKey];
    for (let i = 0; i < tagKeys.length; i++) keys.push(tagKeys[i] as string);
    return keys;
  }

  place(key: string): string {
    return key;
  }

  storedKey(key: string): string {
    return key;
  }

  failureDomain(): undefined {
    return undefined;
  }

  unplace(stored: string): string {
    return stored;
  }

  cleanTags(tagKeys: readonly string[], script: (keys: readonly string[]) => Promise<void>): Promise<void> {
    return script(tagKeys);
  }

  nodes(): Promise<Redis[]> {
    return Promise.resolve([this.#client]);
  }

  bySlot(keys: string[]): string[][] {
    return [keys];
  }
}

/** Redis Cluster: keys in hash-tag buckets (see `buckets.ts`); scans and cleans on every master. */
export class ClusterPlacement implements Placement {
  readonly layout: BucketLayout;
  readonly #cluster: Cluster;
  readonly #prefixes: AttachedPrefixes;
  readonly #readiness: ClusterReadiness;

  /**
   * @param cluster - the cluster client
   * @param buckets - the number of buckets
   * @param prefixes - the attached prefixes, to find where a key's kind starts
   * @param readiness - the wait for the client to learn the slots
   */
  constructor(cluster: Cluster, buckets: number, prefixes: AttachedPrefixes, readiness: ClusterReadiness) {
    this.#cluster = cluster;
    this.layout = new BucketLayout(buckets);
    this.#prefixes = prefixes;
    this.#readiness = readiness;
  }

  checkPrefix(prefix: string): void {
    if (/[{}]/.test(prefix)) {
      throw new OptionError(
        'prefix',
        `On Redis Cluster the cache's prefix must not contain '{' or '}' (got '${prefix}'): hermes places its own hash tags in the keys`,
      );
    }
  }

  readKeys(entryKey: string, lockKey: string, tagKeys: readonly string[]): string[] {
    // The entry, its lock and its bucket's copies of the tags share one slot.
    const layout = this.layout;
    const kindEnd = this.#kindEnd(entryKey, 'entry');
    const bucket = layout.bucketOf(entryKey.slice(kindEnd));
    const keys = [layout.place(entryKey, kindEnd, bucket), this.#place(lockKey, 'lock', bucket)];
    for (let i = 0; i < tagKeys.length; i++) keys.push(this.#place(tagKeys[i] as string, 'tag', bucket));
    return keys;
  }

  place(key: string, kind: 'entry' | 'lock'): string {
    return this.#place(key, kind);
  }

  storedKey(key: string, entryKey?: string): string {
    for (const kind of ['entry', 'lock', 'tag'] as const) {
      const at = key.indexOf(`:${kind}:`);
      if (at < 0 || !key.startsWith(`${kind}:`, this.#prefixes.endOf(key, kind))) continue;
      if (kind !== 'tag') return this.#place(key, kind);
      if (entryKey === undefined) throw new TypeError('storedKey() of a tag key on a cluster needs the entry key whose bucket is meant');
      return this.#place(key, 'tag', this.layout.bucketOf(entryKey.slice(this.#kindEnd(entryKey, 'entry'))));
    }
    throw new TypeError(`Not a hermes key: '${key}'`);
  }

  failureDomain(entryKey: string): string | undefined {
    const layout = this.layout;
    return this.#cluster.slots[layout.slots[layout.bucketOf(entryKey.slice(this.#kindEnd(entryKey, 'entry')))] ?? 0]?.[0];
  }

  unplace(stored: string, prefix: string): string {
    return this.layout.unplace(stored, prefix);
  }

  async cleanTags(tagKeys: readonly string[]): Promise<void> {
    await this.#readiness.ready();
    await cleanTagsOnCluster(this.#cluster, this.layout, tagKeys, tagKeys.map((key) => this.#kindEnd(key, 'tag')));
  }

  async nodes(): Promise<Redis[]> {
    await this.#readiness.ready();
    return this.#cluster.nodes('master');
  }

  bySlot(keys: string[]): string[][] {
    return groupBySlot(keys);
  }

  /** The index just after `{prefix}:{kind}:` in a key of that kind. */
  #kindEnd(key: string, kind: KeyKind): number {
    return this.#prefixes.endOf(key, kind) + kind.length + 1;
  }

  /** A key the cache names moved into its bucket (an entry's or lock's own, or `bucket`). */
  #place(key: string, kind: KeyKind, bucket?: number): string {
    const layout = this.layout;
    const kindEnd = this.#kindEnd(key, kind);
    return layout.place(key, kindEnd, bucket ?? layout.bucketOf(key.slice(kindEnd)));
  }
}
