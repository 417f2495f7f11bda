import { expect } from 'chai';
import { Redis } from 'ioredis';
import { Hermes, type HermesError } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/backend/redis/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The ACL the README documents for the backend, for a prefix. */
const BASE_RULES = [
  '+eval', '+evalsha', '+scan', '+unlink', '+get', '+exists', '+publish', '+subscribe', '+unsubscribe', '+pubsub|numsub',
  '+set', '+del', '+pttl', '+time', '+ping', '+hello', '+info',
];
/** What docs/near-cache.md adds for the near-cache. */
const NEAR_RULES = ['+client|tracking', '+client|id', '+client|trackinginfo', '&__redis__:invalidate'];

describe('RedisBackend near-cache under an ACL', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let admin: Redis;
  const closers: (() => Promise<unknown>)[] = [];

  before(async function () {
    server = await startRedisServer();
    admin = new Redis({ host: server.host, port: server.port });
  });

  afterEach(async function () {
    for (const close of closers.splice(0)) await close();
  });

  after(async function () {
    admin.disconnect();
    await server.stop();
  });

  async function userCache(name: string, rules: readonly string[]): Promise<{ cache: Hermes<RedisBackendOptions>; warnings: string[]; errors: HermesError[] }> {
    const prefix = `nacl${name}`;
    await admin.call('ACL', 'SETUSER', name, 'reset', 'on', '>secret', `~${prefix}:*`, `&${prefix}:*`, ...rules);
    const cache = new Hermes(RedisBackend, {
      host: server.host, port: server.port, username: name, password: 'secret', prefix, lockWait: 10_000, nearCache: { heartbeatMs: 200 },
    });
    const errors: HermesError[] = [];
    cache.on('error', (error) => errors.push(error));
    const warnings: string[] = [];
    const onWarning = (warning: Error & { code?: string }): void => {
      if (warning.code === 'NEAR_CACHE_TRACKING') warnings.push(warning.message);
    };
    process.on('warning', onWarning);
    closers.push(async () => {
      process.off('warning', onWarning);
      await cache.close();
      await admin.call('ACL', 'DELUSER', name);
    });
    return { cache, warnings, errors };
  }

  it('serves hits from memory with the documented ACL', async function () {
    const { cache, errors } = await userCache('nearfull', [...BASE_RULES, ...NEAR_RULES]);
    const f = cache.wrap(async (n: number) => n * 2, { name: 'f', tags: ['t'] });
    for (let i = 0; i < 200 && (cache.stats().near?.hits ?? 0) === 0; i++) {
      expect(await f(1)).to.equal(2);
      await sleep(10);
    }
    expect(cache.stats().near?.hits).to.be.above(0);
    expect(errors).to.deep.equal([]);
  });

  it('without the tracking permissions: stays off with one warning, and lock wake-ups still work', async function () {
    const { cache, warnings } = await userCache('nearbare', BASE_RULES);
    let calls = 0;
    const f = cache.wrap(async (n: number) => {
      calls++;
      await sleep(100);
      return n * 2;
    }, { name: 'f' });
    // A second process waits on the first one's lock: woken by pub/sub on the same subscriber.
    const peer = new Hermes(RedisBackend, { host: server.host, port: server.port, username: 'nearbare', password: 'secret', prefix: 'naclnearbare', lockWait: 10_000 });
    closers.unshift(() => peer.close());
    const g = peer.wrap(async (n: number) => {
      calls++;
      await sleep(100);
      return n * 2;
    }, { name: 'f' });
    await f(5); // opens the subscriber
    await cache.clean();
    const started = Date.now();
    const [a, b] = await Promise.all([g(1), (async () => (await sleep(20), f(1)))()]);
    expect([a, b]).to.deep.equal([2, 2]);
    expect(calls).to.equal(2); // f(5), then one computation of f(1) shared across the two processes
    expect(Date.now() - started).to.be.below(5000); // woken, not timed out at lockWait
    for (let i = 0; i < 20; i++) expect(await f(1)).to.equal(2);
    const near = cache.stats().near;
    expect(near?.hits).to.equal(0); // never trusted: every read went to Redis
    expect(near?.bypassed).to.be.above(0);
    for (let i = 0; i < 100 && warnings.length === 0; i++) await sleep(20);
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.match(/NOPERM|permission/i);
  });
});
