/**
 * Script loading on Redis Cluster: one body per script and master, whatever the burst. Counted
 * with each master's INFO commandstats / errorstats.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { Hermes, type HermesError } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/backend/redis/index.js';
import { type RedisCluster, startRedisCluster } from '../helpers/redis-cluster.js';

describe('RedisBackend script loading on a 3-master Redis Cluster', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  let masters: Redis[];

  before(async function () {
    cluster = await startRedisCluster(3);
    masters = cluster.nodes.map(({ host, port }) => new Redis({ host, port }));
  });

  after(async function () {
    for (const master of masters) master.disconnect();
    await cluster.stop();
  });

  /** Per master: EVAL and SCRIPT LOAD calls and NOSCRIPT errors since the last reset. */
  async function perMaster(): Promise<Array<{ eval: number; scriptLoad: number; noscript: number; evalsha: number }>> {
    return Promise.all(
      masters.map(async (master) => {
        const stats = await master.info('commandstats');
        const errors = await master.info('errorstats');
        const calls = (name: string): number => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
        return {
          eval: calls('eval'),
          evalsha: calls('evalsha'),
          scriptLoad: calls('script\\|load'),
          noscript: Number(/^errorstat_NOSCRIPT:count=(\d+)/m.exec(errors)?.[1] ?? 0),
        };
      }),
    );
  }

  /** A cache on the cluster that waits long and never opens its circuit, with the errors it reports. */
  function clusterCache(options: { prefix: string; buckets?: number }): { cache: Hermes<RedisBackendOptions>; errors: HermesError[] } {
    const cache = new Hermes(RedisBackend, { cluster: [...cluster.nodes], backendTimeout: 30_000, circuitBreaker: false, ...options });
    const errors: HermesError[] = [];
    cache.on('error', (error) => errors.push(error));
    return { cache, errors };
  }

  async function reset(flush: boolean): Promise<void> {
    for (const master of masters) {
      if (flush) await master.script('FLUSH');
      await master.config('RESETSTAT');
    }
  }

  it('a cold cache: the first calls of a burst send one EVAL per script and master, the rest EVALSHA, no SCRIPT LOAD; after SCRIPT FLUSH on every master, one EVAL per script and master again', async function () {
    await reset(true);
    const { cache, errors } = clusterCache({ prefix: 'loading' });
    try {
      let calls = 0;
      const f = cache.wrap(async function f(n: number) {
        calls++;
        return n;
      }, { tags: ['one'] });
      const keys = Array.from({ length: 600 }, (_, i) => i);
      expect(await Promise.all(keys.map((n) => f(n)))).to.deep.equal(keys);
      let counts = await perMaster();
      for (const count of counts) {
        // read.lua, readMany.lua, write-2.lua and writeMany.lua at most once each.
        expect(count.eval, JSON.stringify(counts)).to.be.within(1, 4);
        expect(count.scriptLoad).to.equal(0);
        expect(count.noscript).to.equal(0);
      }
      // A read and a write per call at most, fewer where the tick's calls shared a bucket
      // (tick batching groups them by slot).
      const requests = counts.reduce((n, c) => n + c.eval + c.evalsha, 0);
      expect(requests).to.be.at.most(2 * keys.length);
      expect(requests, 'batched by slot').to.be.below(2 * keys.length);

      await reset(true);
      expect(await Promise.all(keys.map((n) => f(n)))).to.deep.equal(keys);
      expect(calls).to.equal(keys.length); // all hits, none recomputed
      counts = await perMaster();
      for (const count of counts) {
        expect(count.eval, JSON.stringify(counts)).to.be.within(1, 2); // read.lua and readMany.lua, once each per master
        expect(count.scriptLoad).to.equal(0);
      }
      // Each hit: its EVALSHA, and after a NOSCRIPT one more request (the EVAL or an EVALSHA
      // written after it).
      expect(counts.reduce((n, c) => n + c.eval + c.evalsha, 0)).to.be.at.most(2 * keys.length);
      expect(errors).to.deep.equal([]);
    } finally {
      await cache.close();
    }
  });

  it('tick batching on a cluster: a crowd of misses in one bucket goes out as a few readMany/writeMany calls on its master, each entry right and computed once', async function () {
    await reset(false);
    const { cache, errors } = clusterCache({ prefix: 'tickbatch', buckets: 1 });
    try {
      let calls = 0;
      const f = cache.wrap(async function f(n: number) {
        calls++;
        return n * 7;
      }, { tags: ['batch'] });
      await f(-1); // connected, slots known
      await reset(false);
      const keys = Array.from({ length: 100 }, (_, i) => i);
      expect(await Promise.all(keys.map((n) => f(n)))).to.deep.equal(keys.map((n) => n * 7));
      expect(calls).to.equal(101);
      const counts = await perMaster();
      const requests = counts.map((c) => c.eval + c.evalsha);
      // One bucket: every key in one slot, on one master; 100 reads and 100 writes in at most
      // 32 a call (the tick's first of each alone): 2 × (1 + 4) calls.
      expect(requests.filter((n) => n > 0), JSON.stringify(counts)).to.have.length(1);
      expect(Math.max(...requests), JSON.stringify(counts)).to.be.within(2 * 4, 2 * 5);
      expect(await Promise.all(keys.map((n) => f(n)))).to.deep.equal(keys.map((n) => n * 7));
      expect(calls).to.equal(101);
      expect(errors).to.deep.equal([]);
    } finally {
      await cache.close();
    }
  });
});
