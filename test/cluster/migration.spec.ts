/**
 * Slot migration under load on a real 3-master Redis Cluster: while callers of two caches
 * (each with its own RedisBackend) hammer tagged functions and a writer invalidates entries and
 * tags, the slots of some buckets move with their keys from one master to another and on to a
 * third (SETSLOT IMPORTING/MIGRATING, MIGRATE … KEYS a few at a time, SETSLOT NODE). No call
 * may reject, no value may be served after its invalidation, and the cache must serve hits from
 * the new owner afterwards.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { type CachedFunction, Hermes, type HermesError } from '../../src/index.js';
import { bucketHashTags, slotOf } from '../../src/backend/redis/buckets.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { type Migration, migrateSlots, type RedisCluster, slotOwners, startRedisCluster, storedKeyOf } from '../helpers/redis-cluster.js';

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/**
 * How long after an invalidation acknowledged to one cache the other (the near-cache) may still
 * serve the old value: it hears of it one network hop later. Bounded here at 100 ms.
 */
const WINDOW_MS = 100;
const ITEMS = 120;
const GROUPS = 6;
const MOVED_BUCKETS = 8;

describe('RedisBackend on Redis Cluster: slot migration under load', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  const caches: Hermes[] = [];
  /** Plain connections to each node, in the order of `cluster.nodes`. */
  const admins: Redis[] = [];

  before(async function () {
    cluster = await startRedisCluster(3);
    for (const { port } of cluster.nodes) admins.push(new Redis({ host: '127.0.0.1', port }));
  });

  after(async function () {
    for (const cache of caches) await cache.close().catch(() => undefined);
    for (const admin of admins) admin.disconnect();
    await cluster.stop();
  });

  it('moves buckets between masters while calls, invalidations and clean(tags) run: nothing rejected, nothing stale, hits on the new owner', async function () {
    const ports = cluster.nodes.map((n) => n.port);
    const [first, second, third] = ports as [number, number, number];
    /** The source of truth: each item's current version. */
    const truth = new Array<number>(ITEMS).fill(0);
    /**
     * Per cache, the lowest version of each item a call started now may return. An invalidation
     * through a cache raises that cache's floor as soon as it resolves. The other cache stands
     * for another process: its calls that were already running share their in-flight
     * computation with later calls of the same entry (the in-process stampede protection), so
     * its floor is raised once every call it had running at the invalidation has settled —
     * from then on none of its calls may see a value computed before the invalidation.
     */
    const floors = [new Array<number>(ITEMS).fill(0), new Array<number>(ITEMS).fill(0)] as const;
    /** Per cache, the calls running now. */
    const active = [new Set<Promise<unknown>>(), new Set<Promise<unknown>>()] as const;
    const deferred: Promise<unknown>[] = [];
    const raise = (c: number, items: readonly number[], versions: readonly number[]): void => {
      const floor = floors[c] as number[];
      items.forEach((i, k) => (floor[i] = Math.max(floor[i] ?? 0, versions[k] ?? 0)));
    };
    /** After an invalidation of `items` through cache `c` resolved. */
    const invalidated = (c: number, items: readonly number[], versions: readonly number[]): void => {
      raise(c, items, versions);
      const other = 1 - c;
      const at = Date.now();
      deferred.push(
        Promise.allSettled([...(active[other] as Set<Promise<unknown>>)])
          .then(() => sleep(Math.max(0, at + WINDOW_MS - Date.now())))
          .then(() => {
            raise(other, items, versions);
          }),
      );
    };
    let computations = 0;
    const errors: HermesError[] = [];
    /** Per cache, one wrapped function per group of items (its tags: the group's, and 'all'). */
    const fns: Array<Array<CachedFunction<[number], string>>> = [];
    const item = async (i: number): Promise<string> => {
      computations++;
      const version = truth[i] ?? 0;
      await sleep(1);
      return `${i}:${version}`;
    };
    for (let c = 0; c < 2; c++) {
      // The first cache with the near-cache (flushed and re-established on every slot move).
      const cache = new Hermes(new RedisBackend({ cluster: [...cluster.nodes], nearCache: c === 0 }), { prefix: 'mig', ttl: 600 });
      cache.on('error', (error: HermesError) => errors.push(error));
      caches.push(cache);
      fns.push(Array.from({ length: GROUPS }, (_, g) => cache.wrap(item, { name: `item${g}`, tags: [`g${g}`, 'all'] })));
    }
    /** The function of item `i` in cache `c`. */
    const fnOf = (c: number, i: number): CachedFunction<[number], string> => fns[c]?.[i % GROUPS] as CachedFunction<[number], string>;
    const backend = caches[0]?.backend as RedisBackend;

    // The buckets to move: used by the items, on the first master.
    const owners = await slotOwners(first);
    const itemSlot = (i: number): number => slotOf(storedKeyOf(backend, fnOf(0, i).key(i)));
    const usedSlots = new Set(Array.from({ length: ITEMS }, (_, i) => itemSlot(i)));
    const moved = bucketHashTags(64)
      .map(slotOf)
      .filter((slot) => owners[slot] === first && usedSlots.has(slot))
      .slice(0, MOVED_BUCKETS);
    expect(moved).to.have.length(MOVED_BUCKETS);
    const movedItems = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => moved.includes(itemSlot(i)));

    for (let i = 0; i < ITEMS; i++) await fnOf(0, i)(i); // warm

    let running = true;
    let migrating = false;
    let calls = 0;
    let callsDuringMigration = 0;
    let movedCallsDuringMigration = 0;
    let invalidations = 0;
    let cleans = 0;
    const rejected: unknown[] = [];
    const stale: string[] = [];

    const caller = async (worker: number): Promise<void> => {
      let n = worker;
      while (running) {
        n = (n * 7919 + 17) % 1_000_003;
        const i = n % ITEMS;
        const c = worker % 2;
        const mine = active[c] as Set<Promise<unknown>>;
        const need = (floors[c] as number[])[i] ?? 0;
        const during = migrating;
        const call = fnOf(c, i)(i);
        mine.add(call);
        try {
          const value = await call;
          const version = Number(value.split(':')[1]);
          if (!value.startsWith(`${i}:`) || version < need) stale.push(`item ${i}: got ${value}, needed version ≥ ${need}`);
        } catch (error) {
          rejected.push(error);
        }
        mine.delete(call);
        calls++;
        if (during) {
          callsDuringMigration++;
          if (movedItems.includes(i)) movedCallsDuringMigration++;
        }
      }
    };
    const writer = async (): Promise<void> => {
      let n = 1;
      while (running) {
        n = (n * 48_271) % 2_147_483_647;
        const cache = caches[n % 2] as Hermes;
        try {
          if (n % 4 === 0) {
            const group = n % GROUPS;
            const bumped = Array.from({ length: ITEMS }, (_, i) => i).filter((i) => i % GROUPS === group);
            const versions = bumped.map((i) => (truth[i] = (truth[i] ?? 0) + 1));
            await cache.clean([`g${group}`]);
            invalidated(n % 2, bumped, versions);
            cleans++;
          } else {
            // Mostly items of the moving buckets: their keys are the ones in flight.
            const i = n % 3 === 0 ? n % ITEMS : (movedItems[n % movedItems.length] ?? 0);
            const version = (truth[i] = (truth[i] ?? 0) + 1);
            await fnOf(n % 2, i).invalidate(i);
            invalidated(n % 2, [i], [version]);
            invalidations++;
          }
        } catch (error) {
          rejected.push(error);
        }
        await sleep(2);
      }
    };

    const load = [...Array.from({ length: 8 }, (_, w) => caller(w)), writer()];
    await sleep(200);
    const before = caches.map((cache) => cache.stats());
    const errorsBefore = errors.length;
    await Promise.all(admins.map((admin) => admin.config('RESETSTAT')));
    migrating = true;
    const started = Date.now();
    const migrations: Migration[] = [];
    migrations.push(await migrateSlots(cluster, moved, first, second, { keysPerBatch: 2, pauseMs: 10 }));
    migrations.push(await migrateSlots(cluster, moved, second, third, { keysPerBatch: 2, pauseMs: 10 }));
    const migrationMs = Date.now() - started;
    migrating = false;
    const during = caches.map((cache, c) => {
      const now = cache.stats();
      const then = before[c] as typeof now;
      return { fallbacks: now.fallbacks - then.fallbacks, hits: now.hits - then.hits, errors: now.errors };
    });
    const errorsDuring = errors.slice(errorsBefore);
    // The redirections the servers answered meanwhile (INFO errorstats). Its ERR count, left
    // out, is ioredis' CLIENT SETINFO on each new connection, which Redis 7.0 does not know.
    const redirections: Record<string, number> = { ASK: 0, TRYAGAIN: 0, MOVED: 0 };
    for (const admin of admins) {
      for (const [, kind = '', count] of (await admin.info('errorstats')).matchAll(/errorstat_(\w+):count=(\d+)/g)) {
        if (kind in redirections) redirections[kind] = (redirections[kind] ?? 0) + Number(count);
      }
    }
    await sleep(200);
    running = false;
    await Promise.all(load);
    await Promise.all(deferred);

    const report = {
      migrationMs,
      slotsMoved: migrations.map((m) => m.slots),
      keysMoved: migrations.map((m) => m.keys),
      migrateCommands: migrations.map((m) => m.batches),
      calls,
      callsDuringMigration,
      movedCallsDuringMigration,
      invalidations,
      cleans,
      computations,
      redirections,
      hitsDuringMigration: during.reduce((n, d) => n + d.hits, 0),
      fallbacksDuringMigration: during.reduce((n, d) => n + d.fallbacks, 0),
      backendErrorsDuringMigration: errorsDuring.length,
      errorKinds: [...new Set(errorsDuring.map((e) => `${e.code}: ${((e.cause as Error | undefined)?.message ?? e.message).slice(0, 60)}`))],
      fallbacksTotal: caches.reduce((n, cache) => n + cache.stats().fallbacks, 0),
      near: (caches[0] as Hermes).stats().near,
    };
    console.log(`      migration under load: ${JSON.stringify(report)}`);
    expect(report.near?.hits, 'near-cache hits').to.be.greaterThan(0);
    expect(report.near?.flushes, 'near-cache flushed as slots moved').to.be.greaterThan(0);

    expect(rejected, 'calls, invalidations or cleans rejected').to.deep.equal([]);
    expect(stale, 'values served after their invalidation').to.deep.equal([]);
    expect(migrations.every((m) => m.keys > 0), 'keys moved with their slots').to.equal(true);
    expect(movedCallsDuringMigration, 'calls on the moving buckets while they moved').to.be.greaterThan(50);
    expect(invalidations + cleans, 'invalidations while the buckets moved').to.be.greaterThan(20);
    expect((redirections.ASK ?? 0) + (redirections.TRYAGAIN ?? 0), 'requests that met a slot in migration').to.be.greaterThan(0);
    expect(redirections.MOVED ?? 0, 'requests that met a moved slot').to.be.greaterThan(0);

    // The slots and their keys now live on the third master only.
    const ownersAfter = await slotOwners(first);
    for (const slot of moved) expect(ownersAfter[slot], `owner of slot ${slot}`).to.equal(third);
    const counts = await Promise.all(admins.map((admin) => Promise.all(moved.map((slot) => admin.cluster('COUNTKEYSINSLOT', slot)))));
    expect(counts[0]?.every((n) => n === 0), 'left on the first master').to.equal(true);
    expect(counts[1]?.every((n) => n === 0), 'left on the second master').to.equal(true);
    // The cache works on the new owner: each moved item is computed at most once, then hits.
    const hitsBefore = (caches[0] as Hermes).stats().hits;
    for (const i of movedItems) {
      const value = await fnOf(0, i)(i);
      expect(value).to.equal(`${i}:${truth[i] ?? 0}`);
      expect(await fnOf(0, i)(i)).to.equal(value);
    }
    expect((caches[0] as Hermes).stats().hits - hitsBefore).to.be.at.least(movedItems.length);
    const newOwner = admins[2] as Redis;
    for (const i of movedItems) expect(await newOwner.exists(storedKeyOf(backend, fnOf(0, i).key(i))), `entry of item ${i} on the new owner`).to.equal(1);
    expect(errors.filter((e) => e.code !== 'ERR_HERMES_BACKEND'), 'only backend errors, absorbed').to.deep.equal([]);
  });
});
