import { UNTAGGED_HASH } from '../../src/index.js';
import { MemcachedBackend } from '../../src/backend/memcached/index.js';
import { registerBackendContract } from '../contract/index.js';
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
      const memcached = backend as MemcachedBackend;
      // This backend salts every tag hash with the prefix's namespace version (what makes
      // clean() O(1) on a store that cannot list keys), so "the untagged hash" of a header is
      // the one a read reports for an untagged entry; the payload stays as the test wrote it.
      if (bytes.length >= 20 && bytes.toString('latin1', 4, 20) === UNTAGGED_HASH) {
        const { tagHash } = await memcached.read({ entryKey: key, tagKeys: [], lockKey: '', lockToken: undefined, lockTtlMs: 0 });
        bytes = Buffer.concat([bytes.subarray(0, 4), Buffer.from(tagHash, 'latin1'), bytes.subarray(20)]);
      }
      await memcached.setRaw(key, bytes);
    },
  });
});
