import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Hermes } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/backend/redis/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import { CommandLog, scriptOf } from './command-log.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let prefixCounter = 0;

describe('RedisBackend: early refresh decided by read.lua', function () {
  let server: RedisServer;
  let admin: Redis;
  let log: CommandLog;
  const caches: Hermes<RedisBackendOptions>[] = [];

  before(async function () {
    server = await startRedisServer();
    admin = new Redis({ host: server.host, port: server.port, lazyConnect: true });
    await admin.connect();
    log = await CommandLog.open(server);
  });

  after(async function () {
    await log.close();
    await admin.quit();
    await server.stop();
  });

  afterEach(async function () {
    for (const cache of caches.splice(0)) await cache.close();
  });

  function newCache(prefix: string, options: Record<string, unknown>): Hermes<RedisBackendOptions> {
    const cache = new Hermes(RedisBackend, { host: server.host, port: server.port, prefix, ...options });
    caches.push(cache);
    return cache;
  }

  it('the read that decides to refresh early is one request (hit, decision and lock in one reply); other processes get plain one-request hits', async function () {
    const prefix = `early${process.pid}x${++prefixCounter}`;
    const a = newCache(prefix, { ttl: 60, jitter: 0, earlyRefresh: { beta: 1e9 } });
    const b = newCache(prefix, { ttl: 60, jitter: 0, earlyRefresh: { beta: 1e9 } });
    let computed = 0;
    const fn = async (): Promise<string> => {
      const n = ++computed;
      await sleep(n === 1 ? 5 : 150);
      return `v${n}`;
    };
    const fa = a.wrap(fn, { name: 'early', tags: ['t'] });
    const fb = b.wrap(fn, { name: 'early', tags: ['t'] });
    assert.equal(await fa(), 'v1');
    await b.backend.read({ ref: b.keyspace.entryRef('warm', 'up'), tagKeys: [], lockToken: undefined, lockTtlMs: 1 }); // connect
    // beta 1e9 × 5 ms: every read of the fresh entry decides to refresh; the first takes the lock.
    let served: unknown;
    const early = await log.record(async () => {
      served = await fa();
    });
    assert.equal(served, 'v1');
    assert.deepEqual(early.map(scriptOf), ['read']);
    assert.equal(a.stats().earlyRefreshes, 1);
    // Meanwhile another process decides too, finds the lock taken: a plain hit, one request.
    const other = await log.record(async () => {
      served = await fb();
    });
    assert.equal(served, 'v1');
    assert.deepEqual(other.map(scriptOf), ['read']);
    assert.equal(b.stats().earlyRefreshes, 0);
    assert.equal(b.stats().hits, 1);
    // The refresh's write (which releases the lock) is the only other request.
    const rest = await log.record(() => sleep(250));
    assert.deepEqual(rest.map(scriptOf), ['write']);
    assert.equal(computed, 2);
    assert.equal(await fb(), 'v2'); // (beta 1e9: this read decides to refresh again)
    assert.equal(a.stats().misses + b.stats().misses, 1);
    await sleep(250); // that refresh ends before the caches close
  });

  it('many(): readMany.lua decides early refresh per entry in its one request; the refreshes run in the background', async function () {
    const prefix = `early${process.pid}x${++prefixCounter}`;
    const cache = newCache(prefix, { ttl: 60, jitter: 0, earlyRefresh: { beta: 1e9 } });
    let computed = 0;
    const item = cache.wrap(async function item(id: number) {
      computed++;
      await sleep(5);
      return `item ${id} #${computed}`;
    });
    const first = await item.many([[1], [2], [3]]);
    assert.equal(computed, 3);
    // beta 1e9 × 5 ms: each fresh entry of the batch is due; each read takes its lock.
    let served: unknown;
    const batch = await log.record(async () => {
      served = await item.many([[1], [2], [3]]);
    });
    assert.deepEqual(served, first, 'the cached values, served at once');
    assert.deepEqual(batch.map(scriptOf), ['readMany']);
    assert.equal(cache.stats().earlyRefreshes, 3);
    await sleep(200);
    assert.equal(computed, 6, 'three refreshes in the background');
    // The refreshes' writes are stored: a read without a lock token (no early decision) sees them.
    const now = await Promise.all([1, 2, 3].map((id) => item.peek(id)));
    assert.deepEqual(now.map((value) => String(value).replace(/#[456]$/, '#new')), ['item 1 #new', 'item 2 #new', 'item 3 #new']);
  });

  it('an entry without a compute time (a v1 header, written before early refresh) is never refreshed early', async function () {
    const prefix = `early${process.pid}x${++prefixCounter}`;
    const cache = newCache(prefix, { ttl: 60, jitter: 0, earlyRefresh: { beta: 1e9 } });
    let computed = 0;
    const fn = cache.wrap(async function legacy() {
      computed++;
      await sleep(5);
      return 'computed';
    });
    assert.equal(await fn(), 'computed');
    const key = fn.key();
    const v2 = (await admin.getBuffer(key)) as Buffer;
    assert.equal(v2.toString('latin1', 0, 2), 'h2');
    // The same entry as the v1 format wrote it: the first 33 bytes, then the payload.
    const v1 = Buffer.concat([Buffer.from('h1'), v2.subarray(2, 33), Buffer.from(JSON.stringify('legacy'))]);
    await admin.set(key, v1, 'PX', 60_000);
    for (let i = 0; i < 5; i++) assert.equal(await fn(), 'legacy');
    await sleep(50);
    assert.equal(computed, 1);
    assert.equal(cache.stats().earlyRefreshes, 0);
    // Written back as v2 (with its compute time), the same entry is refreshed early at once.
    await admin.set(key, v2, 'PX', 60_000);
    assert.equal(await fn(), 'computed');
    assert.equal(cache.stats().earlyRefreshes, 1);
    await sleep(50); // the refresh ends before the cache closes
  });

  it('beta 1 does not refresh an entry far from its expiry (a 20 ms function, an hour of TTL)', async function () {
    const prefix = `early${process.pid}x${++prefixCounter}`;
    const cache = newCache(prefix, { ttl: 3600, jitter: 0, earlyRefresh: true });
    let computed = 0;
    const fn = cache.wrap(async function hourly() {
      computed++;
      await sleep(20);
      return computed;
    });
    assert.equal(await fn(), 1);
    // 20 ms × -ln(random) would have to reach an hour: never, in practice.
    for (let i = 0; i < 200; i++) assert.equal(await fn(), 1);
    await sleep(50);
    assert.equal(computed, 1);
    assert.equal(cache.stats().earlyRefreshes, 0);
    // The same entry, read by a function with a large beta: refreshed early.
    const eager = newCache(cache.keyspace.prefix, { ttl: 3600, jitter: 0, earlyRefresh: { beta: 1e9 } });
    const eagerFn = eager.wrap(async function hourly() {
      computed++;
      await sleep(20);
      return computed;
    });
    assert.equal(await eagerFn(), 1);
    assert.equal(eager.stats().earlyRefreshes, 1);
    await sleep(100);
    assert.equal(computed, 2);
  });
});
