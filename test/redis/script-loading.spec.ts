/**
 * How the Redis backend gets its scripts to the server: one request per operation from the very
 * first call (EVAL with the body, EVALSHA after), and after SCRIPT FLUSH or on a fresh server
 * one body per script and connection, however many calls are in flight. Counted with MONITOR
 * and with the server's INFO commandstats / errorstats.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { Hermes, type HermesError } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/backend/redis/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import { CommandLog, scriptCommands } from './command-log.js';

let prefixCounter = 0;
const newPrefix = (name: string): string => `${name}${process.pid}x${++prefixCounter}`;

/** Per command (`evalsha`, `eval`, `script|load`): calls since the last CONFIG RESETSTAT; and errors by code. */
async function serverCounts(redis: Redis): Promise<{ calls: Record<string, number>; errors: Record<string, number> }> {
  const calls: Record<string, number> = {};
  for (const [, name, count] of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls[name as string] = Number(count);
  }
  const errors: Record<string, number> = {};
  for (const [, code, count] of (await redis.info('errorstats')).matchAll(/^errorstat_([^:]+):count=(\d+)/gm)) {
    errors[code as string] = Number(count);
  }
  return { calls, errors };
}

describe('RedisBackend script loading', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let admin: Redis;
  let log: CommandLog;
  const closers: (() => Promise<unknown>)[] = [];

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
    for (const close of closers.splice(0).reverse()) await close();
  });

  function newCache(on: RedisServer, options: Partial<RedisBackendOptions> & Record<string, unknown> = {}): { cache: Hermes<RedisBackendOptions>; errors: HermesError[] } {
    const cache = new Hermes(RedisBackend, { host: on.host, port: on.port, prefix: newPrefix('load'), ...options });
    const errors: HermesError[] = [];
    cache.on('error', (error) => errors.push(error));
    closers.push(() => cache.close());
    return { cache, errors };
  }

  it('on a server that knows no script, the first read, write, invalidate and clean(tags) of a quiet process cost one request each', async function () {
    await admin.script('FLUSH');
    const { cache, errors } = newCache(server);
    let calls = 0;
    const f = cache.wrap(async function f(n: number) {
      calls++;
      return n * 2;
    }, { tags: ['t'] });

    // A miss: the first read and the first write, each one EVAL carrying the body.
    expect(scriptCommands(await log.record(() => f(1)))).to.deep.equal(['eval read', 'eval write']);
    expect(scriptCommands(await log.record(() => f.invalidate(1)))).to.deep.equal(['eval invalidate']);
    expect(scriptCommands(await log.record(() => cache.clean(['t'])))).to.deep.equal(['eval cleanTags']);
    // From then on, EVALSHA: a miss is two requests, a hit one.
    expect(scriptCommands(await log.record(() => f(2)))).to.deep.equal(['evalsha read', 'evalsha write']);
    expect(scriptCommands(await log.record(() => f(2)))).to.deep.equal(['evalsha read']);
    expect(calls).to.equal(2);

    // Another quiet process, the server warm by now: its first read is one request too.
    const { cache: other } = newCache(server, { prefix: cache.keyspace.prefix });
    const g = other.wrap(async function f(n: number) {
      calls++;
      return n * 2;
    }, { tags: ['t'] });
    expect(scriptCommands(await log.record(() => g(2)))).to.deep.equal(['eval read']);
    expect(calls).to.equal(2);
    expect(errors).to.deep.equal([]);
  });

  /**
   * 200 concurrent hits of a tagged function (filled first), recorded warm and then right after
   * SCRIPT FLUSH: the script commands of both passes. Checks that both served every value and
   * computed nothing, and that nothing was reported.
   */
  async function hitsAroundFlush(options: Partial<RedisBackendOptions>): Promise<{ warm: string[]; flushed: string[]; f: (n: number) => Promise<number> }> {
    const { cache, errors } = newCache(server, options);
    let calls = 0;
    const f = cache.wrap(async function f(n: number) {
      calls++;
      return n * 3;
    }, { tags: ['t'] });
    const keys = Array.from({ length: 200 }, (_, i) => i);
    const all = async (): Promise<void> => {
      expect(await Promise.all(keys.map((n) => f(n)))).to.deep.equal(keys.map((n) => n * 3));
    };
    await all();
    expect(calls).to.equal(200);
    const warm = scriptCommands(await log.record(all));
    await admin.script('FLUSH');
    const flushed = scriptCommands(await log.record(all));
    expect(calls).to.equal(200);
    expect(errors).to.deep.equal([]);
    return { warm, flushed, f };
  }

  const count = (commands: readonly string[], what: string): number => commands.filter((c) => c === what).length;

  it('after SCRIPT FLUSH, 200 concurrent hits send the body once (one EVAL, no SCRIPT LOAD) and none is recomputed (batch: false)', async function () {
    const { flushed, f } = await hitsAroundFlush({ batch: false });
    expect(count(flushed, 'eval read'), flushed.join(', ')).to.equal(1);
    expect(count(flushed, 'script load')).to.equal(0);
    // Each call: its EVALSHA, and after a NOSCRIPT once more (the one EVAL, or an EVALSHA
    // written after that EVAL): at most one request more than a warm hit.
    expect(flushed.length).to.be.at.most(2 * 200);
    expect(new Set(flushed)).to.deep.equal(new Set(['evalsha read', 'eval read']));
    // Loaded again: one EVALSHA per hit.
    expect(scriptCommands(await log.record(() => f(7)))).to.deep.equal(['evalsha read']);
  });

  it('after SCRIPT FLUSH, 200 concurrent hits, batched: one body per script (read.lua for the first, readMany.lua for the rest), none recomputed', async function () {
    const { warm, flushed } = await hitsAroundFlush({});
    // The tick's first read goes out alone (unless the reads before were a crowd too); the others
    // in readMany.lua calls of 32 at most.
    const alone = count(warm, 'evalsha read');
    expect(alone).to.be.at.most(1);
    expect(count(warm, 'evalsha readMany')).to.equal(Math.ceil((200 - alone) / 32));
    expect(count(flushed, 'eval read'), flushed.join(', ')).to.be.at.most(1);
    expect(count(flushed, 'eval readMany'), flushed.join(', ')).to.equal(1);
    expect(count(flushed, 'script load')).to.equal(0);
    // At most one request more per script call than warm.
    expect(flushed.length).to.be.at.most(2 * warm.length);
  });

  /**
   * A burst of 5,000 first calls (distinct keys, one tag) through `Hermes` on a fresh server,
   * one process: returns what the server served and the cache's stats.
   */
  async function burstOnFreshServer(options: Record<string, unknown>): Promise<{
    served: Record<string, number>;
    failed: Record<string, number>;
    first: ReturnType<Hermes['stats']>;
    again: () => Promise<{ hits: number; calls: number }>;
  }> {
    const fresh = await startRedisServer();
    const control = new Redis({ host: fresh.host, port: fresh.port, lazyConnect: true });
    closers.push(async () => {
      await control.quit();
      await fresh.stop();
    });
    await control.connect();
    await control.config('RESETSTAT');
    const { cache } = newCache(fresh, options);
    let calls = 0;
    const f = cache.wrap(async function burst(n: number) {
      calls++;
      return n;
    }, { tags: ['one'] });
    const keys = Array.from({ length: 5000 }, (_, i) => i);
    const started = Date.now();
    expect(await Promise.all(keys.map((n) => f(n)))).to.deep.equal(keys);
    const burstMs = Date.now() - started;
    const first = cache.stats();
    // Calls that fell back left their reads queued (and the core releases the locks they took):
    // a PING on the same connection answers after all of them.
    await (cache.backend as RedisBackend).client.ping();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await (cache.backend as RedisBackend).client.ping();
    const { calls: served, errors: failed } = await serverCounts(control);
    console.log(`      burst of 5000 (${JSON.stringify(options)}): ${burstMs} ms, fallbacks ${first.fallbacks}, server ${JSON.stringify({ eval: served.eval, evalsha: served.evalsha, scriptLoad: served['script|load'], errors: failed })}`);
    return {
      served,
      failed,
      first,
      again: async () => {
        expect(await Promise.all(keys.map((n) => f(n)))).to.deep.equal(keys);
        return { hits: cache.stats().hits - first.hits, calls };
      },
    };
  }

  it('5,000 concurrent first calls on a fresh server, default backendTimeout, batch: false: one body per script and connection, no NOSCRIPT, no SCRIPT LOAD', async function () {
    // How many of them pass the 250 ms deadline depends on the machine (most of the time goes to
    // the client's own CPU and GC, before the connection is even open): the count is printed.
    const { served, failed } = await burstOnFreshServer({ batch: false });
    expect(served.evalsha ?? 0).to.be.greaterThan(4000); // the reads did reach the server
    // One connection: at most one EVAL per script (read, write, and release for the locks of the
    // calls that fell back), every other call an EVALSHA.
    expect(served.eval ?? 0).to.be.at.most(3);
    expect(served['script|load'] ?? 0).to.equal(0);
    expect(failed.NOSCRIPT ?? 0).to.equal(0);
  });

  it('5,000 concurrent first calls on a fresh server, every one answered, batch: false: one request each (one EVAL per script), all cached afterwards', async function () {
    const { served, failed, first, again } = await burstOnFreshServer({ backendTimeout: 60_000, circuitBreaker: false, batch: false });
    expect(first.fallbacks).to.equal(0);
    expect(first.computations).to.equal(5000);
    expect(served.eval).to.equal(2); // read.lua and write-2.lua, once each
    expect(served.evalsha).to.equal(2 * 5000 - 2); // the other reads and writes
    expect(served['script|load'] ?? 0).to.equal(0);
    expect(failed.NOSCRIPT ?? 0).to.equal(0);
    // The burst's entries are cached: a second pass hits, computing nothing.
    expect(await again()).to.deep.equal({ hits: 5000, calls: 5000 });
  });

  it('5,000 concurrent first calls on a fresh server, batched, every one answered: one body per script, a script call per 32 reads and per 32 writes, all cached afterwards', async function () {
    const { served, failed, first, again } = await burstOnFreshServer({ backendTimeout: 60_000, circuitBreaker: false });
    // One tick issues the 5,000 reads: the first alone (read.lua), the rest in readMany.lua
    // calls of 32; their writes likewise (write-2.lua, writeMany.lua).
    const batches = Math.ceil(4999 / 32);
    expect(first.fallbacks).to.equal(0);
    expect(first.computations).to.equal(5000);
    expect(served.eval ?? 0).to.equal(4); // read, readMany, write, writeMany: one body each
    expect((served.eval ?? 0) + (served.evalsha ?? 0)).to.equal(2 * (1 + batches));
    expect(served['script|load'] ?? 0).to.equal(0);
    expect(failed.NOSCRIPT ?? 0).to.equal(0);
    expect(await again()).to.deep.equal({ hits: 5000, calls: 5000 });
  });

  it('5,000 concurrent first calls on a fresh server, batched, default backendTimeout: no NOSCRIPT, no SCRIPT LOAD, the count that beat the deadline printed', async function () {
    const { served, failed, first } = await burstOnFreshServer({});
    expect(first.computations + first.fallbacks).to.be.at.least(5000);
    expect(served.eval ?? 0).to.be.at.most(5); // read, readMany, write, writeMany, release
    expect(served['script|load'] ?? 0).to.equal(0);
    expect(failed.NOSCRIPT ?? 0).to.equal(0);
  });
});
