/**
 * Hash-tag buckets, the layout of the Redis backend's keys on Redis Cluster.
 *
 * A Redis Cluster script may only touch keys of one hash slot, while a read checks an entry
 * against the versions of its tags, which are shared by many entries. So on a cluster the key
 * space is cut into a fixed number of buckets, each pinned to one slot by a hash tag, and every
 * bucket keeps its own copy of each tag's version:
 *
 * - entry `{prefix}:entry:{name}:{argsHash}` is stored as `{prefix}:entry:{B}:{name}:{argsHash}`,
 * - its lock as `{prefix}:lock:{B}:{name}:{argsHash}`, in the same bucket,
 * - and each of its tags as `{prefix}:tag:{B}:{tag}`, the copy of that bucket,
 *
 * where `{B}` is the bucket's hash tag (braces included) and the bucket is chosen from the entry's
 * `{name}:{argsHash}`. The entry, its lock and the tag versions it is checked against share one
 * slot, so a read stays one script and one request. Invalidating a tag deletes its copy in every
 * bucket; a read in a bucket whose copy is gone creates a new version there, as on one server.
 *
 * The hash tags are chosen so that bucket `i` of `n` hashes to a slot in the `i`-th of `n` equal
 * ranges of the 16384 slots: with the usual assignment of contiguous, equal slot ranges to the
 * masters, the buckets divide evenly among them. The choice is deterministic, so every process
 * with the same bucket count uses the same keys.
 *
 * @module
 */

import calculateSlot from 'cluster-key-slot';

/** The number of hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;

const cache = new Map<number, readonly string[]>();

/**
 * The hash tags of `count` buckets, braces included (`{0}`, `{1x}`, …): the tag of bucket `i`
 * hashes to a slot in `[i × 16384 / count, (i + 1) × 16384 / count)`. Each tag is the first
 * base-36 numeral, counting from 0, whose slot falls in its range. Memoised per count.
 */
export function bucketHashTags(count: number): readonly string[] {
  const known = cache.get(count);
  if (known) return known;
  const tags: (string | undefined)[] = new Array<string | undefined>(count).fill(undefined);
  let missing = count;
  for (let n = 0; missing > 0; n++) {
    const text = n.toString(36);
    const bucket = Math.floor((calculateSlot(text) * count) / CLUSTER_SLOTS);
    if (tags[bucket] === undefined) {
      tags[bucket] = text;
      missing--;
    }
  }
  const result = tags.map((text) => `{${text ?? ''}}`);
  cache.set(count, result);
  return result;
}

/** The slot a key hashes to in a Redis Cluster (its hash tag's, when it has one). */
export function slotOf(key: string): number {
  return calculateSlot(key);
}

/**
 * Maps the keys the core gives the backend (`{prefix}:entry:…`, `{prefix}:lock:…`,
 * `{prefix}:tag:…`) to the bucketed keys stored on a cluster, and back.
 */
export class BucketLayout {
  /** The number of buckets. */
  readonly count: number;
  /** The hash tag of each bucket, braces included. */
  readonly hashTags: readonly string[];
  /** The hash slot of each bucket. */
  readonly slots: readonly number[];

  /** @param count - the number of buckets, an integer from 1 to 16384 */
  constructor(count: number) {
    this.count = count;
    this.hashTags = bucketHashTags(count);
    this.slots = this.hashTags.map((tag) => calculateSlot(tag));
  }

  /**
   * The bucket of an entry, from the part of its key after `{prefix}:entry:` (or
   * `{prefix}:lock:`), that is `{name}:{argsHash}`: its slot, scaled to the bucket count.
   */
  bucketOf(rest: string): number {
    return this.count === 1 ? 0 : calculateSlot(rest) % this.count;
  }

  /**
   * Inserts a bucket's hash tag into a key after its kind: `{prefix}:{kind}:{rest}` becomes
   * `{prefix}:{kind}:{B}:{rest}`, where `kindEnd` is the index just after `{prefix}:{kind}:`.
   */
  place(key: string, kindEnd: number, bucket: number): string {
    return `${key.slice(0, kindEnd)}${this.hashTags[bucket] ?? ''}:${key.slice(kindEnd)}`;
  }

  /**
   * The reverse of {@link BucketLayout.place} for a stored key found under a prefix:
   * `{prefix}:{kind}:{B}:{rest}` → `{prefix}:{kind}:{rest}`. Keys not of that shape are
   * returned as they are.
   */
  unplace(key: string, prefix: string): string {
    const kindEnd = key.indexOf(':', prefix.length + 1);
    if (kindEnd < 0 || key.charCodeAt(kindEnd + 1) !== 0x7b /* { */) return key;
    const close = key.indexOf('}:', kindEnd + 2);
    if (close < 0) return key;
    return key.slice(0, kindEnd + 1) + key.slice(close + 2);
  }
}
