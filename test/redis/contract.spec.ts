import { RedisBackend } from '../../src/backend/redis/index.js';
import { registerBackendContract } from '../../src/testing/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';

describe('RedisBackend on a real redis-server', function () {
  let server: RedisServer;

  before(async function () {
    server = await startRedisServer();
  });

  after(async function () {
    await server.stop();
  });

  registerBackendContract({
    name: 'RedisBackend',
    createBackend: () => new RedisBackend({ host: server.host, port: server.port }),
    // A second process: its own backend, connections and subscriber on the same server.
    createPeer: () => new RedisBackend({ host: server.host, port: server.port }),
    writeRaw: async (backend, key, bytes) => {
      await (backend as RedisBackend).client.set(key, bytes);
    },
  });
});

describe('RedisBackend with the near-cache on a real redis-server', function () {
  let server: RedisServer;

  before(async function () {
    server = await startRedisServer();
  });

  after(async function () {
    await server.stop();
  });

  // Every clause of the contract, with hits served from memory where the near-cache has them:
  // invalidations by a peer, stale values, locks and corrupt bytes must behave as without it.
  registerBackendContract({
    name: 'RedisBackend (nearCache)',
    createBackend: () => new RedisBackend({ host: server.host, port: server.port, nearCache: true }),
    createPeer: () => new RedisBackend({ host: server.host, port: server.port, nearCache: true }),
    writeRaw: async (backend, key, bytes) => {
      await (backend as RedisBackend).client.set(key, bytes);
    },
  });
});
