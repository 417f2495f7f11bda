import { MemcachedBackend } from '../../src/backend/memcached/index.js';
import { registerBackendContract } from '../../src/testing/index.js';
import { type MemcachedProcess, startMemcached } from '../helpers/memcached-server.js';

describe('MemcachedBackend on a real memcached', function () {
  let server: MemcachedProcess;

  before(async function () {
    server = await startMemcached();
  });

  after(async function () {
    await server.stop();
  });

  registerBackendContract({
    name: 'MemcachedBackend',
    createBackend: () => new MemcachedBackend({ servers: server.address }),
    // A second process: its own backend instance and connection on the same server.
    createPeer: () => new MemcachedBackend({ servers: server.address }),
    writeRaw: async (backend, key, bytes) => {
      await (backend as MemcachedBackend).setRaw(key, bytes);
    },
    // A computation's write cannot be made conditional on its lock in memcached: it lands, and
    // is deleted again once the lock is found gone, taking a set meanwhile with it.
    setDuringComputation: 'dropped',
  });
});
