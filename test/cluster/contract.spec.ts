import { expect } from 'chai';
import { Cluster } from 'ioredis';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { registerBackendContract } from '../../src/testing/index.js';
import { type RedisCluster, startRedisCluster, storedKeyOf } from '../helpers/redis-cluster.js';

describe('RedisBackend on a real 3-master Redis Cluster', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;

  before(async function () {
    cluster = await startRedisCluster(3);
  });

  after(async function () {
    await cluster.stop();
  });

  it('runs on a real cluster: 3 masters that share the 16384 slots and serve keys of every slot', async function () {
    const client = new Cluster([...cluster.nodes], { lazyConnect: true });
    try {
      await client.connect();
      const masters = client.nodes('master');
      expect(masters).to.have.length(3);
      const slots = (await client.cluster('SLOTS')) as Array<[number, number, ...unknown[]]>;
      const covered = slots.reduce((n, [start, end]) => n + end - start + 1, 0);
      expect(covered).to.equal(16_384);
      for (let i = 0; i < 50; i++) await client.set(`k${i}`, String(i));
      for (let i = 0; i < 50; i++) expect(await client.get(`k${i}`)).to.equal(String(i));
      const perNode = await Promise.all(masters.map((node) => node.dbsize()));
      expect(perNode.every((n) => n > 0)).to.equal(true); // the keys spread over every master
      for (let i = 0; i < 50; i++) await client.del(`k${i}`);
    } finally {
      client.disconnect();
    }
  });

  registerBackendContract({
    name: 'RedisBackend (cluster)',
    createBackend: () => new RedisBackend({ cluster: [...cluster.nodes] }),
    // A second process: its own cluster client and subscriber.
    createPeer: () => new RedisBackend({ cluster: [...cluster.nodes] }),
    writeRaw: async (backend, key, bytes) => {
      const redis = backend as RedisBackend;
      await redis.client.set(storedKeyOf(redis, key), bytes);
    },
  });

  // Every clause again with the near-cache: tracking per master, keys in buckets.
  registerBackendContract({
    name: 'RedisBackend (cluster, nearCache)',
    createBackend: () => new RedisBackend({ cluster: [...cluster.nodes], nearCache: true }),
    createPeer: () => new RedisBackend({ cluster: [...cluster.nodes], nearCache: true }),
    writeRaw: async (backend, key, bytes) => {
      const redis = backend as RedisBackend;
      await redis.client.set(storedKeyOf(redis, key), bytes);
    },
  });
});
