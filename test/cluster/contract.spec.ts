import { RedisBackend } from '../../src/backend/redis/index.js';
import { registerBackendContract } from '../../src/testing/index.js';
import { type RedisCluster, startRedisCluster } from '../helpers/redis-cluster.js';

describe('RedisBackend on a real 3-master Redis Cluster', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;

  before(async function () {
    cluster = await startRedisCluster(3);
  });

  after(async function () {
    await cluster.stop();
  });

  registerBackendContract({
    name: 'RedisBackend (cluster)',
    createBackend: () => new RedisBackend({ cluster: [...cluster.nodes] }),
    // A second process: its own cluster client and subscriber.
    createPeer: () => new RedisBackend({ cluster: [...cluster.nodes] }),
    writeRaw: async (backend, key, bytes) => {
      const redis = backend as RedisBackend;
      await redis.client.set(redis.storedKey(key), bytes);
    },
  });
});
