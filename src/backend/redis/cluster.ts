/**
 * Operations only a Redis Cluster needs: waiting for the client to learn the slots, deleting a
 * tag's copy in every bucket (one pipeline per master), and grouping keys by slot for multi-key
 * commands.
 *
 * @module
 */

import type { Cluster } from 'ioredis';
import type { BucketLayout } from './buckets.js';
import { slotOf } from './buckets.js';
import { RedisUnavailableError } from './errors.js';

/**
 * Waits for a cluster client to know its slots (connecting it if it is lazy): one wait shared by
 * every caller meanwhile, bounded by `limitMs`.
 */
export class ClusterReadiness {
  readonly #cluster: Cluster;
  readonly #limitMs: number;
  readonly #lastError: () => unknown;
  #waiting: Promise<void> | undefined;

  /**
   * @param cluster - the cluster client
   * @param limitMs - how long to wait before rejecting with a {@link RedisUnavailableError}
   * @param lastError - the client's last error, given as the rejection's cause
   */
  constructor(cluster: Cluster, limitMs: number, lastError: () => unknown) {
    this.#cluster = cluster;
    this.#limitMs = limitMs;
    this.#lastError = lastError;
  }

  /** Resolves once the client knows the slots; rejects after the limit. */
  ready(): Promise<void> {
    const cluster = this.#cluster;
    if (cluster.status === 'ready' && cluster.slots.length > 0) return Promise.resolve();
    this.#waiting ??= new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cluster.off('ready', onReady);
        reject(new RedisUnavailableError(cluster.status, this.#lastError()));
      }, this.#limitMs);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      cluster.once('ready', onReady);
      if (cluster.status === 'wait') cluster.connect().catch(() => undefined);
      else if (cluster.status === 'ready') onReady();
    }).finally(() => {
      this.#waiting = undefined;
    });
    return this.#waiting;
  }
}

/**
 * Deletes each tag's copy in every bucket: one `UNLINK` per bucket, the buckets of each master
 * sent as one pipeline, all masters in parallel — one request per master. A bucket whose slot
 * moved meanwhile is retried on its own, redirected.
 * @param tagIdStart - the index just after `{prefix}:tag:` in every tag key
 */
export async function cleanTagsOnCluster(cluster: Cluster, layout: BucketLayout, tagKeys: readonly string[], tagIdStart: number): Promise<void> {
  const byMaster = new Map<string, string[][]>();
  for (let bucket = 0; bucket < layout.count; bucket++) {
    const keys = tagKeys.map((key) => layout.place(key, tagIdStart, bucket));
    const group = cluster.slots[slotOf(keys[0] as string)]?.join(';') ?? '';
    let list = byMaster.get(group);
    if (!list) byMaster.set(group, (list = []));
    list.push(keys);
  }
  const retries: string[][] = [];
  await Promise.all(
    [...byMaster.values()].map(async (buckets) => {
      const pipeline = cluster.pipeline();
      for (const keys of buckets) pipeline.unlink(...keys);
      try {
        const results = (await pipeline.exec()) ?? [];
        buckets.forEach((keys, i) => {
          if (results[i]?.[0]) retries.push(keys);
        });
      } catch {
        retries.push(...buckets);
      }
    }),
  );
  // Moved, asked or failed: each bucket again, through the cluster's own redirections.
  await Promise.all(retries.map((keys) => cluster.unlink(...keys)));
}

/** Keys grouped by hash slot, for multi-key commands on a cluster. */
export function groupBySlot(keys: readonly string[]): string[][] {
  const groups = new Map<number, string[]>();
  for (const key of keys) {
    const slot = slotOf(key);
    const group = groups.get(slot);
    if (group) group.push(key);
    else groups.set(slot, [key]);
  }
  return [...groups.values()];
}
