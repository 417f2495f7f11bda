/**
 * A load on a cache shared by two processes, for tests that change a Redis Cluster under it
 * (failovers): `callers` loops call tagged functions of both caches, a writer bumps the
 * versions of items and invalidates them (one entry, or a group through clean(tags)), and
 * every value served is checked against the versions whose invalidation was acknowledged.
 *
 * The stale check: a call started now through cache `c` may not return a version below
 * `floors[c][i]`. An invalidation through a cache raises that cache's floor once it resolves;
 * the other cache (another process) shares its running computations with later calls, so its
 * floor is raised once every call it had running at that moment has settled.
 */

import type { CachedFunction, Hermes, HermesError } from '../../src/index.js';
import { slotOf } from '../../src/backend/redis/buckets.js';
import type { RedisBackend } from '../../src/backend/redis/index.js';
import { storedKeyOf } from './redis-cluster.js';

const pause = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** Something the load saw, with when (`Date.now()`) and the hash slot of the key. */
export interface SlotEvent {
  readonly at: number;
  readonly slot: number;
}

/** A value served although its invalidation had been acknowledged. */
export interface StaleValue {
  readonly at: number;
  readonly item: number;
  readonly served: number;
  readonly needed: number;
  /** When the invalidation that made `needed` the floor was acknowledged. */
  readonly acknowledgedAt: number;
  /** The cache that served it, and the one whose invalidation made the floor, and how. */
  readonly cache?: number;
  readonly by?: string;
  /** When the call that served it started. */
  readonly startedAt?: number;
}

export interface ClusterLoad {
  /** The function of item `i` in cache `c`. */
  fnOf(c: number, i: number): CachedFunction<[number], string>;
  /** The hash slot of item `i`'s entry. */
  slotOfItem(i: number): number;
  /** Each item's current version (the source of truth). */
  readonly truth: readonly number[];
  readonly hits: readonly SlotEvent[];
  readonly fallbacks: ReadonlyArray<SlotEvent & { reason: string }>;
  readonly errors: ReadonlyArray<HermesError & { at?: number }>;
  /** Calls that rejected (the cache must fall open instead). */
  readonly rejected: readonly unknown[];
  /** Invalidations and clean(tags) that rejected, each retried until acknowledged. */
  readonly failedInvalidations: readonly unknown[];
  readonly stale: readonly StaleValue[];
  /** Lock waits longer than 500 ms. */
  readonly longWaits: ReadonlyArray<SlotEvent & { waitedMs: number; woken: boolean }>;
  readonly counts: { calls: number; invalidations: number; cleans: number; computations: number };
  /** Computes every item once in cache 0. */
  warm(): Promise<void>;
  /** Starts the callers and the writer. */
  start(): void;
  /** Stops them and waits until every call and invalidation has settled. */
  stop(): Promise<void>;
}

export interface ClusterLoadOptions {
  /** Two caches, each with its own RedisBackend on the cluster, the same prefix. */
  readonly caches: readonly [Hermes, Hermes];
  readonly items: number;
  readonly groups: number;
  readonly callers: number;
  /** The slots whose items the writer invalidates two times in three (the rest: any item, or a group). */
  readonly focus?: (slot: number) => boolean;
  /**
   * How long after an invalidation acknowledged to one cache the other may still serve the old
   * value, in ms (0 by default): a near-cache hears of it one network hop later.
   */
  readonly windowMs?: number;
}

export function clusterLoad(options: ClusterLoadOptions): ClusterLoad {
  const { caches, items, groups } = options;
  const truth = new Array<number>(items).fill(0);
  const floors = caches.map(() => Array.from({ length: items }, () => ({ version: 0, at: 0, by: '' })));
  const running = caches.map(() => new Set<Promise<unknown>>());
  const settling: Promise<unknown>[] = [];
  const hits: SlotEvent[] = [];
  const fallbacks: Array<SlotEvent & { reason: string }> = [];
  const errors: Array<HermesError & { at?: number }> = [];
  const rejected: unknown[] = [];
  const failedInvalidations: unknown[] = [];
  const stale: StaleValue[] = [];
  const longWaits: Array<SlotEvent & { waitedMs: number; woken: boolean }> = [];
  const counts = { calls: 0, invalidations: 0, cleans: 0, computations: 0 };
  const compute = async (i: number): Promise<string> => {
    counts.computations++;
    const version = truth[i] ?? 0;
    await pause(1);
    return `${i}:${version}`;
  };
  const fns = caches.map((cache) =>
    Array.from({ length: groups }, (_, g) => cache.wrap(compute, { name: `item${g}`, tags: [`g${g}`, 'all'] })),
  );
  const fnOf = (c: number, i: number): CachedFunction<[number], string> => fns[c]?.[i % groups] as CachedFunction<[number], string>;
  const backend = caches[0].backend as RedisBackend;
  const slotOfKey = (key: string): number => slotOf(storedKeyOf(backend, key));
  const slotOfItem = (i: number): number => slotOfKey(fnOf(0, i).key(i));
  for (const cache of caches) {
    cache.on('hit', ({ key }) => hits.push({ at: Date.now(), slot: slotOfKey(key) }));
    cache.on('fallback', ({ key, reason }) => fallbacks.push({ at: Date.now(), slot: slotOfKey(key), reason }));
    cache.on('error', (error: HermesError) => errors.push(Object.assign(error, { at: Date.now() })));
    cache.on('wait', ({ key, waitedMs, woken }) => {
      if (waitedMs > 500) longWaits.push({ at: Date.now(), slot: slotOfKey(key), waitedMs, woken });
    });
  }
  const focused = Array.from({ length: items }, (_, i) => i).filter((i) => options.focus?.(slotOfItem(i)) ?? true);

  const raise = (c: number, bumped: readonly number[], versions: readonly number[], at: number, by: string): void => {
    bumped.forEach((i, k) => {
      const floor = floors[c]?.[i];
      const version = versions[k] ?? 0;
      if (floor !== undefined && version > floor.version) Object.assign(floor, { version, at, by });
    });
  };
  const acknowledged = (c: number, bumped: readonly number[], versions: readonly number[], how: string): void => {
    const at = Date.now();
    raise(c, bumped, versions, at, `${how} by cache ${c}`);
    const other = 1 - c;
    settling.push(
      Promise.allSettled([...(running[other] ?? [])])
        .then(() => pause(Math.max(0, at + (options.windowMs ?? 0) - Date.now())))
        .then(() => {
          raise(other, bumped, versions, at, `${how} by cache ${c}, other cache's calls settled at ${Date.now()}`);
        }),
    );
  };

  let on = false;
  let loops: Promise<void>[] = [];
  const caller = async (worker: number): Promise<void> => {
    const c = worker % 2;
    let n = worker + 1;
    while (on) {
      n = (n * 16_807) % 2_147_483_647;
      const i = n % items;
      const floor = { ...(floors[c]?.[i] ?? { version: 0, at: 0, by: '' }) };
      const startedAt = Date.now();
      const call = fnOf(c, i)(i);
      running[c]?.add(call);
      try {
        const [item, served] = (await call).split(':').map(Number) as [number, number];
        if (item !== i || served < floor.version) {
          stale.push({ at: Date.now(), item: i, served, needed: floor.version, acknowledgedAt: floor.at, cache: c, by: floor.by, startedAt });
        }
      } catch (error) {
        rejected.push(error);
      }
      running[c]?.delete(call);
      counts.calls++;
    }
  };
  /**
   * An invalidation the backend could not acknowledge (its master unreachable) rejects, as it
   * must: the writer retries it, as a writer must, until acknowledged (or the load stops).
   */
  const persist = async (invalidate: () => Promise<void>): Promise<boolean> => {
    for (;;) {
      try {
        await invalidate();
        return true;
      } catch (error) {
        failedInvalidations.push(error);
        if (!on) return false;
        await pause(20);
      }
    }
  };
  const writer = async (): Promise<void> => {
    let n = 7;
    while (on) {
      n = (n * 48_271) % 2_147_483_647;
      const c = n % 2;
      const cache = caches[c] as Hermes;
      if (n % 5 === 0) {
        const group = n % groups;
        const bumped = Array.from({ length: items }, (_, i) => i).filter((i) => i % groups === group);
        const versions = bumped.map((i) => (truth[i] = (truth[i] ?? 0) + 1));
        if (await persist(() => cache.clean([`g${group}`]))) acknowledged(c, bumped, versions, 'clean');
        counts.cleans++;
      } else {
        const i = n % 3 === 0 ? n % items : (focused[n % focused.length] ?? 0);
        const version = (truth[i] = (truth[i] ?? 0) + 1);
        if (await persist(() => fnOf(c, i).invalidate(i))) acknowledged(c, [i], [version], 'invalidate');
        counts.invalidations++;
      }
      await pause(2);
    }
  };

  return {
    fnOf,
    slotOfItem,
    truth,
    hits,
    fallbacks,
    errors,
    rejected,
    failedInvalidations,
    stale,
    longWaits,
    counts,
    async warm() {
      for (let i = 0; i < items; i++) await fnOf(0, i)(i);
    },
    start() {
      on = true;
      loops = [...Array.from({ length: options.callers }, (_, w) => caller(w)), writer()];
    },
    async stop() {
      on = false;
      await Promise.all(loops);
      await Promise.all(settling);
    },
  };
}
