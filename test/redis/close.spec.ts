/**
 * After `close()`: the connections the backend opened have ended, and keep an error listener, so
 * that a late error on them (a write failing with EPIPE once the server is gone) is never
 * printed by ioredis as an "Unhandled error event" nor thrown.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { Hermes } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/backend/redis/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `action` and returns what was printed with console.error meanwhile. */
async function consoleErrors(action: () => Promise<void>): Promise<string[]> {
  const printed: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => {
    printed.push(args.map(String).join(' '));
  };
  try {
    await action();
  } finally {
    console.error = original;
  }
  return printed;
}

describe('RedisBackend close()', function () {
  let server: RedisServer;

  beforeEach(async function () {
    server = await startRedisServer();
  });

  afterEach(async function () {
    await server.stop();
  });

  /** A cache that has read, written and waited for a lock (its subscriber is open). */
  async function busyCache(): Promise<{ cache: Hermes<RedisBackendOptions>; backend: RedisBackend }> {
    const options = { host: server.host, port: server.port, prefix: 'closing', lockWait: 5000 };
    const cache = new Hermes(RedisBackend, options);
    const peer = new Hermes(RedisBackend, options);
    cache.on('error', () => undefined);
    peer.on('error', () => undefined);
    const fn = async (n: number): Promise<number> => {
      await sleep(100);
      return n;
    };
    const f = cache.wrap(fn, { name: 'f', tags: ['t'] });
    const g = peer.wrap(fn, { name: 'f', tags: ['t'] });
    const first = g(1);
    await sleep(30);
    expect(await Promise.all([first, f(1)])).to.deep.equal([1, 1]); // f waited on g's lock
    await peer.close();
    return { cache, backend: cache.backend as RedisBackend };
  }

  it('leaves its own connections ended, each with an error listener: a late error is neither printed nor thrown', async function () {
    const { cache, backend } = await busyCache();
    const printed = await consoleErrors(async () => {
      await cache.close();
      expect(backend.client.status).to.equal('end');
      expect(backend.client.listenerCount('error')).to.be.greaterThan(0);
      // What a late write on a dead socket raises: absorbed, not thrown.
      const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' });
      expect(() => backend.client.emit('error', epipe)).not.to.throw();
      await server.kill();
      await sleep(300);
    });
    expect(printed.filter((line) => line.includes('Unhandled error event'))).to.deep.equal([]);
  });

  it('stopping the server right after close(), even not awaited, prints nothing', async function () {
    for (let i = 0; i < 3; i++) {
      const { cache } = await busyCache();
      const printed = await consoleErrors(async () => {
        const closing = cache.close();
        await server.stop();
        await closing;
        await sleep(300);
      });
      expect(printed.filter((line) => line.includes('Unhandled error event'))).to.deep.equal([]);
      await server.restart();
    }
  });

  it('a given client is left open, with its own listeners only', async function () {
    const client = new Redis({ host: server.host, port: server.port });
    try {
      const cache = new Hermes(RedisBackend, { client, prefix: 'given' });
      const f = cache.wrap(async (n: number) => n, { name: 'f' });
      expect(await f(2)).to.equal(2);
      const before = client.listenerCount('error');
      await cache.close();
      expect(client.status).to.equal('ready');
      expect(client.listenerCount('error')).to.equal(before - 1);
    } finally {
      await client.quit();
    }
  });
});
