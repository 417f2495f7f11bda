/**
 * Socket-write coalescing: a lone call is written at once (a plain write, no cork), a crowd is
 * corked until the end of its tick. Watched on the connection's socket (`writableCorked`), with
 * `batch: false` so that each read is its own command (tick batching: `batch.spec.ts`).
 */

import { expect } from 'chai';
import type { Redis } from 'ioredis';
import { RedisBackend } from '../../src/backend/redis/index.js';
import type { ReadRequest } from '../../src/backend/backend.js';
import { EntryCodec } from '../../src/index.js';
import { Keyspace } from '../../src/backend/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('RedisBackend write coalescing', function () {
  let server: RedisServer;
  let backend: RedisBackend;

  before(async function () {
    server = await startRedisServer();
    backend = new RedisBackend({ host: server.host, port: server.port, batch: false });
    backend.attach({ prefix: 'co', codec: new EntryCodec() });
  });

  after(async function () {
    await backend.close();
    await server.stop();
  });

  const request = (n: number): ReadRequest => ({ ref: new Keyspace('co').entryRef('f', String(n)), tagKeys: [], lockToken: undefined, lockTtlMs: 1000 });
  const corked = (): number => (backend.client as Redis).stream.writableCorked;

  it('writes a lone call at once, uncorked; corks the second call of a tick until its end', async function () {
    await backend.read(request(0)); // connected, script known
    await tick();
    const first = backend.read(request(1));
    expect(corked(), 'a lone call').to.equal(0);
    const second = backend.read(request(2));
    expect(corked(), 'the second call of the tick').to.equal(1);
    await Promise.all([first, second]);
    expect(corked()).to.equal(0);
  });

  it('after a tick with a crowd, corks from the first call of the next tick; after a lone tick, not', async function () {
    await Promise.all([backend.read(request(3)), backend.read(request(4)), backend.read(request(5))]);
    await tick(); // a tick that wrote three commands: a crowd
    const crowd = backend.read(request(6));
    expect(corked(), 'first call after a crowd').to.equal(1);
    await crowd;
    await tick(); // a tick that wrote one command
    const lone = backend.read(request(7));
    expect(corked(), 'first call after a lone tick').to.equal(0);
    await lone;
  });
});
