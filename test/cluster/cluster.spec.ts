/**
 * The promises of the Redis backend on a real 3-master Redis Cluster, checked on the wire:
 * round trips per operation and per node (every byte goes through counting proxies), the
 * stampede lock across independent backends, `clean()` on every master, the tag copies of
 * every bucket, and `dump()`'s logical keys.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { type CachedFunction, Hermes } from '../../src/index.js';
import { bucketHashTags, slotOf } from '../../src/backend/redis/buckets.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { type ClusterProxies, proxyCluster } from '../helpers/cluster-proxies.js';
import { type RedisCluster, slotOwners, startRedisCluster, storedKeyOf } from '../helpers/redis-cluster.js';

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** Per node (by its own port): round trips and commands by name since the last reset. */
type Traffic = Record<number, { roundTrips: number; commands: Record<string, number> }>;

describe('RedisBackend on Redis Cluster: the promises, on the wire', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  /** The master port owning each slot. */
  let owners: number[];
  /** Plain connections to each node, by port, to look at what each one holds. */
  const admins = new Map<number, Redis>();
  const closers: Array<() => Promise<unknown>> = [];

  before(async function () {
    cluster = await startRedisCluster(3);
    owners = await slotOwners(cluster.nodes[0]?.port ?? 0);
    for (const { port } of cluster.nodes) admins.set(port, new Redis({ host: '127.0.0.1', port }));
  });

  after(async function () {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    for (const admin of admins.values()) admin.disconnect();
    await cluster.stop();
  });

  /** A cache on its own backend (own cluster client), closed after the suite. */
  function newCache(prefix: string, extra: ConstructorParameters<typeof RedisBackend>[0] = {}): Hermes {
    const backend = new RedisBackend({ cluster: [...cluster.nodes], ...extra });
    const cache = new Hermes(backend, { prefix, ttl: 600 });
    closers.push(() => cache.close());
    return cache;
  }

  /** Keys under `pattern` on each node, by port (each node asked directly, no redirection). */
  async function keysPerNode(pattern: string): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>();
    for (const [port, admin] of admins) out.set(port, (await admin.keys(pattern)).sort());
    return out;
  }

  function ownerOf(storedKey: string): number {
    return owners[slotOf(storedKey)] ?? -1;
  }

  describe('round trips, counted per node by proxies that carry all the traffic', function () {
    let proxies: ClusterProxies;
    let cache: Hermes;
    let backend: RedisBackend;
    let runs = 0;
    const plain = async function plain(n: number): Promise<number> {
      runs++;
      return n * 2;
    };
    const tagged = async function tagged(n: number): Promise<number> {
      runs++;
      return n * 3;
    };
    let plainFn: CachedFunction<[number], number>;
    let taggedFn: CachedFunction<[number], number>;

    before(async function () {
      proxies = await proxyCluster(cluster);
      closers.push(() => proxies.close());
      backend = new RedisBackend({
        cluster: [...proxies.startupNodes],
        // ioredis 6 refreshes the slots only on demand (no slotsRefreshInterval): after the
        // warm-up, nothing but the cache's own requests crosses the proxies.
        clusterOptions: { natMap: proxies.natMap },
      });
      cache = new Hermes(backend, { prefix: 'rt', ttl: 600 });
      closers.push(() => cache.close());
      plainFn = cache.wrap(plain);
      taggedFn = cache.wrap(tagged, { tags: ['red', 'green', 'blue'] });
      // Warm-up: connections to every master, every script loaded (NOSCRIPT once each).
      for (let i = 0; i < 30; i++) {
        await plainFn(1000 + i);
        await taggedFn(1000 + i);
        await plainFn.invalidate(1000 + i);
      }
      await cache.clean(['red']);
    });

    /** Runs `action` and returns what it sent, per node. */
    async function traffic(action: () => Promise<unknown>): Promise<Traffic> {
      await sleep(20); // nothing else in flight
      proxies.reset();
      await action();
      await sleep(20); // a stray request after the action would show up too
      const out: Traffic = {};
      for (const node of proxies.nodes) {
        out[node.nodePort] = { roundTrips: node.counter.counts.roundTrips, commands: Object.fromEntries(node.counter.counts.commands) };
      }
      return out;
    }

    /** Expects `count` EVALSHA in as many round trips on the node owning `storedKey`, nothing elsewhere. */
    function expectOnOwnerOnly(seen: Traffic, storedKey: string, count: number): void {
      const owner = ownerOf(storedKey);
      for (const { port } of cluster.nodes) {
        if (port === owner) expect(seen[port], `node ${port} (owner)`).to.deep.equal({ roundTrips: count, commands: { evalsha: count } });
        else expect(seen[port], `node ${port}`).to.deep.equal({ roundTrips: 0, commands: {} });
      }
    }

    it('a miss is 2 requests in 2 round trips, a hit 1, on the master of the entry only (untagged)', async function () {
      const stored = storedKeyOf(backend, plainFn.key(7));
      runs = 0;
      const miss = await traffic(() => plainFn(7));
      expect(runs).to.equal(1);
      expectOnOwnerOnly(miss, stored, 2);
      const hit = await traffic(async () => expect(await plainFn(7)).to.equal(14));
      expect(runs).to.equal(1);
      expectOnOwnerOnly(hit, stored, 1);
    });

    it('with 3 tags: a miss is still 2 requests, a hit 1, all on one master', async function () {
      const stored = storedKeyOf(backend, taggedFn.key(8));
      runs = 0;
      expectOnOwnerOnly(await traffic(() => taggedFn(8)), stored, 2);
      expectOnOwnerOnly(await traffic(async () => expect(await taggedFn(8)).to.equal(24)), stored, 1);
      expect(runs).to.equal(1);
    });

    it("with a tags function: a miss is still 2 requests, a hit 1, on the entry's master only", async function () {
      const perId = cache.wrap(async function perId(n: number) {
        runs++;
        return n * 5;
      }, { tags: (n) => [`id:${n}`, 'ids'] });
      const stored = storedKeyOf(backend, perId.key(11));
      await perId(12); // this function's first tag versions are created on its first read
      runs = 0;
      expectOnOwnerOnly(await traffic(() => perId(11)), stored, 2);
      expectOnOwnerOnly(await traffic(async () => expect(await perId(11)).to.equal(55)), stored, 1);
      expect(runs).to.equal(1);
      await cache.clean(['id:11']);
      await perId(11);
      await perId(12);
      expect(runs, "clean(['id:11']) dropped 11 only").to.equal(2);
    });

    it('hits of entries on every master: each is 1 request to its own master', async function () {
      const byOwner = new Map<number, number>();
      for (let i = 0; i < 60 && byOwner.size < 3; i++) {
        const owner = ownerOf(storedKeyOf(backend, taggedFn.key(i)));
        if (!byOwner.has(owner)) byOwner.set(owner, i);
      }
      expect(byOwner.size, 'entries found on every master').to.equal(3);
      for (const i of byOwner.values()) {
        await taggedFn(i);
        expectOnOwnerOnly(await traffic(() => taggedFn(i)), storedKeyOf(backend, taggedFn.key(i)), 1);
      }
    });

    it('many() of 100 keys: one round trip per master, one readMany.lua call per bucket of the batch', async function () {
      const ids = Array.from({ length: 100 }, (_, i) => [2000 + i] as [number]);
      await taggedFn.many(ids); // fill
      // The buckets (slots) of the batch on each master.
      const slotsByOwner = new Map<number, Set<number>>();
      for (const [id] of ids) {
        const stored = storedKeyOf(backend, taggedFn.key(id));
        const owner = ownerOf(stored);
        let slots = slotsByOwner.get(owner);
        if (slots === undefined) slotsByOwner.set(owner, (slots = new Set()));
        slots.add(slotOf(stored));
      }
      expect(slotsByOwner.size, 'entries on every master').to.equal(3);
      runs = 0;
      let results: number[] = [];
      const seen = await traffic(async () => {
        results = await taggedFn.many(ids);
      });
      expect(runs).to.equal(0);
      expect(results).to.deep.equal(ids.map(([id]) => id * 3));
      for (const { port } of cluster.nodes) {
        const slots = slotsByOwner.get(port)?.size ?? 0;
        expect(seen[port], `node ${port}`).to.deep.equal(slots === 0 ? { roundTrips: 0, commands: {} } : { roundTrips: 1, commands: { evalsha: slots } });
      }
    });

    it('invalidate is 1 request', async function () {
      await plainFn(9);
      expectOnOwnerOnly(await traffic(() => plainFn.invalidate(9)), storedKeyOf(backend, plainFn.key(9)), 1);
      runs = 0;
      await plainFn(9);
      expect(runs, 'the entry is gone').to.equal(1);
    });

    it('clean(tags) is one round trip per master, the masters in parallel, one UNLINK per bucket', async function () {
      const tags = bucketHashTags(64);
      const expected = new Map<number, number>();
      for (const tag of tags) {
        const owner = owners[slotOf(tag)] ?? -1;
        expected.set(owner, (expected.get(owner) ?? 0) + 1);
      }
      expect([...expected.values()].sort()).to.deep.equal([21, 21, 22]);
      await taggedFn(11);
      const seen = await traffic(() => cache.clean(['red', 'green']));
      for (const { port } of cluster.nodes) {
        expect(seen[port], `node ${port}`).to.deep.equal({ roundTrips: 1, commands: { unlink: expected.get(port) } });
      }
      const firstAnswer = Math.min(...proxies.nodes.map((n) => n.firstAnswered ?? Infinity));
      const lastSend = Math.max(...proxies.nodes.map((n) => n.firstSent ?? Infinity));
      expect(lastSend, 'every master was sent its request before any answered').to.be.lessThan(firstAnswer);
      runs = 0;
      await taggedFn(11);
      expect(runs, 'the tagged entry was invalidated').to.equal(1);
    });
  });

  describe('stampede across independent backends', function () {
    it('one cold key, 4 caches each with its own RedisBackend, 10 callers each: the function runs once', async function () {
      const caches = Array.from({ length: 4 }, () => newCache('stampede'));
      let runs = 0;
      const fns = caches.map((cache) =>
        cache.wrap(
          async function slow(n: number): Promise<string> {
            runs++;
            await sleep(150);
            return `value-${n}`;
          },
          { tags: ['t'] },
        ),
      );
      // Connect every backend first (another key), so that the callers really race.
      await Promise.all(fns.map((fn, i) => fn(-1 - i)));
      runs = 0;
      const before = caches.map((cache) => cache.stats());
      const values = await Promise.all(fns.flatMap((fn) => Array.from({ length: 10 }, () => fn(42))));
      expect(values).to.have.length(40);
      expect(new Set(values)).to.deep.equal(new Set(['value-42']));
      expect(runs, 'computations').to.equal(1);
      const stats = caches.map((cache, c) => {
        const now = cache.stats();
        const then = before[c] ?? now;
        return { computations: now.computations - then.computations, lockWaits: now.lockWaits - then.lockWaits, fallbacks: now.fallbacks - then.fallbacks };
      });
      expect(stats.reduce((n, s) => n + s.computations, 0), 'computations counted by the caches').to.equal(1);
      // The 3 caches that lost the lock each waited for the winner's write (their own callers
      // sharing that wait in-process).
      expect(stats.filter((s) => s.lockWaits > 0), 'caches that waited for the lock').to.have.length(3);
      expect(stats.reduce((n, s) => n + s.fallbacks, 0)).to.equal(0);
    });
  });

  describe('clean(), tag copies and dump() across the masters', function () {
    it('clean() removes the prefix\'s keys on every master; another prefix\'s stay', async function () {
      const mine = newCache('scan');
      const other = newCache('scanother');
      const fn = mine.wrap(async function square(n: number) { return n * n; }, { tags: ['x'] });
      const otherFn = other.wrap(async function cube(n: number) { return n ** 3; });
      for (let i = 0; i < 60; i++) await fn(i);
      for (let i = 0; i < 20; i++) await otherFn(i);
      const before = await keysPerNode('scan:*');
      const otherBefore = await keysPerNode('scanother:*');
      for (const [port, keys] of before) expect(keys.length, `keys on node ${port}`).to.be.greaterThan(0);
      await mine.clean();
      for (const [port, keys] of await keysPerNode('scan:*')) expect(keys, `node ${port}`).to.deep.equal([]);
      expect(await keysPerNode('scanother:*')).to.deep.equal(otherBefore);
    });

    it('each bucket keeps its copy of a tag; clean(tags) removes the copies on every master', async function () {
      const cache = newCache('copies');
      let runs = 0;
      const fn = cache.wrap(async function tagged2(n: number) { runs++; return n; }, { tags: ['t1', 't2'] });
      for (let i = 0; i < 100; i++) await fn(i);
      const copies = await keysPerNode('copies:tag:*');
      const t1 = [...copies.values()].flat().filter((k) => k.endsWith(':t1'));
      const t2 = [...copies.values()].flat().filter((k) => k.endsWith(':t2'));
      const buckets = new Set(Array.from({ length: 100 }, (_, i) => slotOf(storedKeyOf(cache.backend as RedisBackend, fn.key(i)))));
      expect(t1.length, 'one copy of t1 per bucket used').to.equal(buckets.size);
      expect(t1.length).to.be.greaterThan(40);
      for (const [port, keys] of copies) expect(keys.filter((k) => k.endsWith(':t1')).length, `copies on node ${port}`).to.be.greaterThan(0);
      // Every copy lives in the slot of its bucket.
      for (const key of t1) expect(bucketHashTags(64).map(slotOf)).to.include(slotOf(key));
      await cache.clean(['t1']);
      const after = await keysPerNode('copies:tag:*');
      expect([...after.values()].flat().filter((k) => k.endsWith(':t1')), 'copies of t1 left').to.deep.equal([]);
      expect([...after.values()].flat().filter((k) => k.endsWith(':t2')), 'copies of t2 stay').to.have.length(t2.length);
      runs = 0;
      for (let i = 0; i < 100; i++) await fn(i);
      expect(runs, 'every entry tagged t1 was invalidated').to.equal(100);
    });

    it('dump() shows the logical keys, and a tag\'s versions from every bucket', async function () {
      const cache = newCache('dumped');
      const fn = cache.wrap(async function double(n: number) { return n * 2; }, { tags: ['d'] });
      for (let i = 0; i < 30; i++) await fn(i);
      const backend = cache.backend as RedisBackend;
      const dump = await backend.dump();
      const keys = Object.keys(dump);
      for (const key of keys) expect(key, 'no hash tag in a dumped key').not.to.match(/[{}]/);
      for (let i = 0; i < 30; i++) expect(dump[fn.key(i)], fn.key(i)).to.equal(i * 2);
      const tagKey = cache.keyspace.tagKey('d');
      expect(keys.filter((k) => k.includes(':tag:'))).to.deep.equal([tagKey]);
      const versions = dump[tagKey];
      expect(versions).to.be.an('array');
      const buckets = new Set(Array.from({ length: 30 }, (_, i) => slotOf(storedKeyOf(backend, fn.key(i)))));
      expect((versions as string[]).length).to.equal(buckets.size);
      expect(keys.filter((k) => k.includes(':entry:'))).to.have.length(30);
    });
  });
});
