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
 * Requests name an entry by its {@link EntryRef} (prefix and id), so that the bucket of an
 * entry is found from its id and no key is parsed.
 *
 * @module
 */

import { type Cluster, type Redis } from 'ioredis';
import type { BackendContext } from '../backend.js';
import { OptionError } from '../../errors.js';
import { type EntryRef, idStart } from '../../keys.js';
import { BucketLayout } from './buckets.js';
import { type ClusterReadiness, cleanTagsOnCluster, groupBySlot } from './cluster.js';

/** The prefixes of the caches attached to a backend: their contexts. */
export class AttachedPrefixes {
  readonly #contexts = new Map<string, BackendContext>();
  #last: BackendContext | undefined;

  /** Remembers a cache's context under its prefix; the last one attached is the default. */
  attach(context: BackendContext): void {
    this.#last = context;
    this.#contexts.set(context.prefix, context);
  }

  /** The context attached under `prefix`, else the last one attached. */
  context(prefix?: string): BackendContext | undefined {
    return prefix === undefined ? this.#last : (this.#contexts.get(prefix) ?? this.#last);
  }
}

/** Where keys are stored and commands sent; see the module documentation. */
export interface Placement {
  /** The bucket layout on a cluster; `undefined` on a single node. */
  readonly layout: BucketLayout | undefined;
  /** Throws an {@link OptionError} if a cache's prefix cannot be used here. */
  checkPrefix(prefix: string): void;
  /**
   * Where an entry's keys are stored: the entry, its lock, then the given tags' copies — all of
   * one slot (the KEYS of `read.lua`).
   */
  keysOf(ref: EntryRef, tagKeys: readonly string[]): string[];
  /** Where an entry's lock is stored. */
  lockKeyOf(ref: EntryRef): string;
  /** The slot of an entry's keys on a cluster (entries of one slot may share a script call); 0 on a single node. */
  slotOf(ref: EntryRef): number;
  /** Every stored copy of these tag keys (of `prefix`): the keys themselves on one node, each bucket's copy on a cluster. */
  copiesOf(prefix: string, tagKeys: readonly string[]): readonly string[];
  /** See {@link RedisBackend.failureDomain}. */
  failureDomain(ref: EntryRef): string | undefined;
  /** The key the cache names, from a stored key found under `prefix`. */
  unplace(stored: string, prefix: string): string;
  /** Deletes the tag versions of keys under `prefix`: with `script` (`cleanTags.lua`) on one node. */
  cleanTags(prefix: string, tagKeys: readonly string[], script: (keys: readonly string[]) => Promise<void>): Promise<void>;
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

  keysOf(ref: EntryRef, tagKeys: readonly string[]): string[] {
    const keys = [ref.entryKey, ref.lockKey];
    for (let i = 0; i < tagKeys.length; i++) keys.push(tagKeys[i] as string);
    return keys;
  }

  lockKeyOf(ref: EntryRef): string {
    return ref.lockKey;
  }

  slotOf(): number {
    return 0;
  }

  copiesOf(_prefix: string, tagKeys: readonly string[]): readonly string[] {
    return tagKeys;
  }

  failureDomain(): undefined {
    return undefined;
  }

  unplace(stored: string): string {
    return stored;
  }

  cleanTags(_prefix: string, tagKeys: readonly string[], script: (keys: readonly string[]) => Promise<void>): Promise<void> {
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
  readonly #readiness: ClusterReadiness;

  /**
   * @param cluster - the cluster client
   * @param buckets - the number of buckets
   * @param readiness - the wait for the client to learn the slots
   */
  constructor(cluster: Cluster, buckets: number, readiness: ClusterReadiness) {
    this.#cluster = cluster;
    this.layout = new BucketLayout(buckets);
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

  keysOf(ref: EntryRef, tagKeys: readonly string[]): string[] {
    // The entry, its lock and its bucket's copies of the tags share one slot.
    const layout = this.layout;
    const { prefix, id } = ref;
    const bucket = layout.bucketOf(id);
    const keys = [layout.place(ref.entryKey, idStart(prefix, 'entry'), bucket), layout.place(ref.lockKey, idStart(prefix, 'lock'), bucket)];
    const tagStart = idStart(prefix, 'tag');
    for (let i = 0; i < tagKeys.length; i++) keys.push(layout.place(tagKeys[i] as string, tagStart, bucket));
    return keys;
  }

  lockKeyOf(ref: EntryRef): string {
    return this.layout.place(ref.lockKey, idStart(ref.prefix, 'lock'), this.layout.bucketOf(ref.id));
  }

  slotOf(ref: EntryRef): number {
    const layout = this.layout;
    return layout.slots[layout.bucketOf(ref.id)] ?? 0;
  }

  copiesOf(prefix: string, tagKeys: readonly string[]): readonly string[] {
    const layout = this.layout;
    const tagStart = idStart(prefix, 'tag');
    const copies: string[] = [];
    for (let bucket = 0; bucket < layout.count; bucket++) for (const tagKey of tagKeys) copies.push(layout.place(tagKey, tagStart, bucket));
    return copies;
  }

  failureDomain(ref: EntryRef): string | undefined {
    const layout = this.layout;
    return this.#cluster.slots[layout.slots[layout.bucketOf(ref.id)] ?? 0]?.[0];
  }

  unplace(stored: string, prefix: string): string {
    return this.layout.unplace(stored, prefix);
  }

  async cleanTags(prefix: string, tagKeys: readonly string[]): Promise<void> {
    await this.#readiness.ready();
    await cleanTagsOnCluster(this.#cluster, this.layout, tagKeys, idStart(prefix, 'tag'));
  }

  async nodes(): Promise<Redis[]> {
    await this.#readiness.ready();
    return this.#cluster.nodes('master');
  }

  bySlot(keys: string[]): string[][] {
    return groupBySlot(keys);
  }
}
