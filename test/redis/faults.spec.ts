/**
 * Backend faults against real redis-servers (issue 8, point 4): a hung server (SIGSTOP), a
 * full one (maxmemory with noeviction), a read-only replica, ACL users without the rights the
 * backend needs, and the circuit breaker in front of a dead server. In every case a wrapped
 * call gets its function's result, promptly, with an `error` event, and never rejects.
 *
 * The killed server and CLIENT PAUSE cases are in redis.spec.ts ('failing open').
 *
 * `FAULTS_VERBOSE=1 npx mocha test/redis/faults.spec.ts` prints the measured timings.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { BackendError, type CachedFunction, Hermes, type HermesError, type HermesOptions } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/backend/redis/index.js';
import type { ReadReply, ReadRequest } from '../../src/backend/backend.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let prefixCounter = 0;
const newPrefix = (name: string): string => `${name}${process.pid}x${++prefixCounter}`;

const verbose = process.env.FAULTS_VERBOSE === '1';
function report(line: string): void {
  if (verbose) console.log(`      ${line}`);
}

/** A cache under test: its errors, fallback events, backend reads sent, and a counted function. */
interface Probe {
  cache: Hermes<RedisBackendOptions>;
  backend: RedisBackend;
  errors: HermesError[];
  fallbacks: string[];
  /** Backend reads issued (calls of `backend.read`). */
  reads: () => number;
  /** The wrapped function: `n * 10`, counting its computations. */
  f: CachedFunction<[number], Promise<number>>;
  /** The same, tagged. */
  tagged: CachedFunction<[number], Promise<number>>;
  computations: () => number;
}

/** Runs `call` and returns its result with its duration in ms. */
async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await call();
  return { value, ms: performance.now() - started };
}

describe('Redis faults against real servers (fail open, never reject)', function () {
  this.timeout(30_000);
  const closers: (() => Promise<unknown>)[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };

  before(function () {
    process.on('unhandledRejection', onUnhandled);
  });

  after(function () {
    process.off('unhandledRejection', onUnhandled);
  });

  afterEach(async function () {
    for (const close of closers.splice(0).reverse()) await close();
    expect(unhandled.splice(0), 'unhandled rejections').to.deep.equal([]);
  });

  function probe(server: RedisServer, options: HermesOptions & Partial<RedisBackendOptions> = {}): Probe {
    const cache = new Hermes(RedisBackend, { host: server.host, port: server.port, prefix: newPrefix('fault'), ...options });
    closers.push(() => cache.close());
    const errors: HermesError[] = [];
    const fallbacks: string[] = [];
    cache.on('error', (error) => errors.push(error));
    cache.on('fallback', (event) => fallbacks.push(event.reason));
    const backend = cache.backend as RedisBackend;
    let reads = 0;
    const read = backend.read.bind(backend);
    backend.read = (request: ReadRequest): Promise<ReadReply> => {
      reads++;
      return read(request);
    };
    let computations = 0;
    const fn = async (n: number): Promise<number> => {
      computations++;
      await Promise.resolve();
      return n * 10;
    };
    return {
      cache,
      backend,
      errors,
      fallbacks,
      reads: () => reads,
      f: cache.wrap(fn, { name: 'f' }),
      tagged: cache.wrap(fn, { name: 'tagged', tags: ['t1', 't2'] }),
      computations: () => computations,
    };
  }

  /** Connects an admin client to `server`, closed after the test. */
  async function adminOf(server: RedisServer, options: Partial<RedisBackendOptions> = {}): Promise<Redis> {
    const client = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 0, ...options });
    closers.push(async () => {
      client.disconnect();
    });
    await client.connect();
    return client;
  }

  /** Asserts every error is a BackendError whose cause's message matches `pattern`. */
  function expectCauses(errors: readonly HermesError[], pattern: RegExp): void {
    expect(errors, 'error events').to.not.be.empty;
    for (const error of errors) {
      expect(error).to.be.instanceOf(BackendError);
      expect((error.cause as Error).message).to.match(pattern);
    }
  }

  /** Calls until a value is computed once and then served from the cache (or `ms` pass). */
  async function cachingResumes(p: Probe, n: number, ms = 5000): Promise<number> {
    const started = Date.now();
    while (Date.now() - started < ms) {
      const before = p.computations();
      const hits = p.cache.stats().hits;
      expect(await p.f(n)).to.equal(n * 10);
      expect(await p.f(n)).to.equal(n * 10);
      if (p.computations() <= before + 1 && p.cache.stats().hits > hits) return Date.now() - started;
      await sleep(50);
    }
    throw new Error(`caching did not resume within ${ms} ms`);
  }

  describe('a hung server (SIGSTOP, then SIGCONT)', function () {
    let server: RedisServer;

    before(async function () {
      server = await startRedisServer();
    });

    after(async function () {
      await server.stop();
    });

    afterEach(function () {
      server.resume();
    });

    it('answers every call from the function within about backendTimeout, with error events; caches again after SIGCONT', async function () {
      const p = probe(server, { backendTimeout: 250, circuitBreaker: false, lockTimeout: 1500 });
      expect(await p.f(1)).to.equal(10);
      expect(await p.f(1)).to.equal(10); // cached before the hang
      expect(p.computations()).to.equal(1);
      expect(server.pid).to.be.a('number');

      server.pause();
      const durations: number[] = [];
      for (const n of [1, 2, 1, 3]) {
        const { value, ms } = await timed(() => p.f(n));
        expect(value).to.equal(n * 10);
        durations.push(ms);
      }
      // 32 concurrent calls on 8 keys, tagged and not: none waits longer than one deadline.
      const concurrent = await timed(() =>
        Promise.all(Array.from({ length: 32 }, (_, i) => (i % 2 === 0 ? p.f(i % 8) : p.tagged(i % 8)))),
      );
      expect(concurrent.value).to.deep.equal(Array.from({ length: 32 }, (_, i) => (i % 8) * 10));
      report(`hung: sequential calls ${durations.map((ms) => ms.toFixed(0)).join(', ')} ms; 32 concurrent in ${concurrent.ms.toFixed(0)} ms`);
      for (const ms of durations) expect(ms).to.be.within(240, 700);
      expect(concurrent.ms).to.be.below(700);
      expectCauses(p.errors, /timed out after 250 ms/);
      expect(p.fallbacks.every((reason) => reason === 'read-failed')).to.equal(true);
      expect(p.cache.stats().fallbacks).to.equal(4 + 32 - 24); // in-process sharing: 8 keys × 2 functions
      expect(p.cache.stats().errors.ERR_HERMES_BACKEND).to.equal(p.errors.length);

      server.resume();
      const resumedAt = Date.now();
      // A key not read during the hang caches again at once.
      const fresh = await cachingResumes(p, 100);
      expect(fresh).to.be.below(200);
      // A key read during the hang, within ioredis' commandTimeout of SIGCONT: its read reached
      // the server late and took the lock for a caller that had fallen open long before. The
      // core gave up on that read at its deadline and sent a release behind it, so the lock is
      // gone at once instead of blocking the key until its expiry (lockTimeout, 1500 ms here).
      const orphaned = await timed(() => p.f(4));
      expect(orphaned.value).to.equal(40);
      const resumedIn = await cachingResumes(p, 4, 3000);
      report(`hung: after SIGCONT a fresh key cached in ${fresh} ms; a key read 250 ms before SIGCONT answered in ${orphaned.ms.toFixed(0)} ms, cached again ${Date.now() - resumedAt} ms after SIGCONT (${resumedIn} ms of polling)`);
      expect(orphaned.ms).to.be.below(300);
    });

    it('many() during the hang: every element from the function within about backendTimeout, one error each; the late batch read leaves no lock behind', async function () {
      const p = probe(server, { backendTimeout: 250, circuitBreaker: false, lockTimeout: 5000 });
      const ids = Array.from({ length: 20 }, (_, i) => [100 + i] as [number]);
      expect(await p.tagged.many(ids.slice(0, 5))).to.deep.equal([1000, 1010, 1020, 1030, 1040]); // 5 cached before the hang
      const before = p.computations();
      server.pause();
      const batch = await timed(() => p.tagged.many(ids));
      expect(batch.value).to.deep.equal(ids.map(([n]) => n * 10));
      expect(batch.ms).to.be.within(240, 700);
      expect(p.computations() - before).to.equal(20);
      expectCauses(p.errors, /timed out after 250 ms/);
      expect(p.errors).to.have.length(20);
      expect(p.fallbacks).to.have.length(20);
      server.resume();
      // The batch read reaches the server late and takes the misses' locks for callers that fell
      // open: the releases sent behind it free them, so the batch caches again at once rather
      // than waiting for the locks' expiry (5 s).
      await sleep(100);
      const again = await timed(() => p.tagged.many(ids));
      expect(again.value).to.deep.equal(ids.map(([n]) => n * 10));
      expect(again.ms).to.be.below(1000);
      const computed = p.computations();
      expect(await p.tagged.many(ids)).to.deep.equal(ids.map(([n]) => n * 10));
      expect(p.computations()).to.equal(computed); // all hits now
      expect(unhandled).to.deep.equal([]);
    });

    it('a read that ioredis timed out during the hang leaves no lock behind: the key caches again right after SIGCONT', async function () {
      const p = probe(server, { backendTimeout: 250, commandTimeout: 1000, circuitBreaker: false, lockTimeout: 8000, lockWait: 8000 });
      const admin = await adminOf(server);
      expect(await p.f(1)).to.equal(10); // connected, the read script known to the server
      server.pause();
      const during = await timed(() => p.f(2)); // falls open at the deadline, its read queued
      expect(during.value).to.equal(20);
      expect(during.ms).to.be.within(240, 700);
      await sleep(1000); // ioredis' commandTimeout passes: the backend sends the release
      server.resume();
      const after = await timed(() => p.f(2));
      expect(after.value).to.equal(20);
      report(`hung > commandTimeout: the key read during the hang answered in ${after.ms.toFixed(0)} ms after SIGCONT (lock TTL 8000 ms)`);
      expect(after.ms, 'not blocked by an orphaned lock').to.be.below(500);
      expect(await admin.exists(p.cache.keyspace.lockKeyOf(p.f.key(2)))).to.equal(0);
      const n = p.computations();
      expect(await p.f(2)).to.equal(20);
      expect(p.computations()).to.equal(n); // cached
      expectCauses(p.errors, /timed out/);
    });

    it('with the circuit breaker: pays the deadline 5 times, then skips the backend until the cooldown ends', async function () {
      const p = probe(server, { backendTimeout: 250, circuitBreaker: { failures: 5, cooldown: 1000 }, lockTimeout: 1500 });
      await p.cache.clean(['warm']); // connected, scripts loaded
      server.pause();
      const slow: number[] = [];
      for (let n = 0; n < 5; n++) {
        const { value, ms } = await timed(() => p.f(n));
        expect(value).to.equal(n * 10);
        slow.push(ms);
      }
      const readsWhenOpen = p.reads();
      const fast: number[] = [];
      for (let n = 0; n < 20; n++) {
        const { value, ms } = await timed(() => p.f(n));
        expect(value).to.equal(n * 10);
        fast.push(ms);
      }
      report(`hung + breaker: first 5 calls ${slow.map((ms) => ms.toFixed(0)).join(', ')} ms; next 20 at most ${Math.max(...fast).toFixed(1)} ms`);
      for (const ms of slow) expect(ms).to.be.within(240, 700);
      for (const ms of fast) expect(ms).to.be.below(50);
      expect(p.reads(), 'reads sent while the breaker is open').to.equal(readsWhenOpen);
      expect(p.fallbacks.filter((reason) => reason === 'circuit-open')).to.have.length(20);
      server.resume();
      await sleep(1100);
      const resumedIn = await cachingResumes(p, 100);
      report(`hung + breaker: caching resumed ${resumedIn} ms after the cooldown`);
    });
  });

  describe('the circuit breaker in front of a dead server', function () {
    let server: RedisServer;

    before(async function () {
      server = await startRedisServer();
    });

    after(async function () {
      await server.stop();
    });

    it('opens after 5 failures: calls skip the backend (no reads, no latency), then one probes, and caching resumes once the server is back', async function () {
      const cooldown = 1000;
      const p = probe(server, { circuitBreaker: { failures: 5, cooldown } });
      expect(await p.f(1)).to.equal(10);
      expect(await p.f(1)).to.equal(10);
      expect(p.cache.stats().hits).to.equal(1);

      await server.kill();
      for (let n = 0; n < 5; n++) expect(await p.f(n)).to.equal(n * 10);
      expect(p.reads()).to.equal(2 + 5);
      expectCauses(p.errors, /unreachable|Connection is closed|ECONNREFUSED/);
      const errorsWhenOpened = p.errors.length;
      const fallbacksWhenOpened = p.cache.stats().fallbacks;
      expect(fallbacksWhenOpened).to.equal(5);
      const openedAt = Date.now();

      // Open: 50 calls, concurrent and sequential, none sent to the backend.
      const burst = await timed(() => Promise.all(Array.from({ length: 30 }, (_, n) => p.f(n))));
      expect(burst.value).to.deep.equal(Array.from({ length: 30 }, (_, n) => n * 10));
      let slowest = 0;
      for (let n = 0; n < 20; n++) {
        const { value, ms } = await timed(() => p.f(n));
        expect(value).to.equal(n * 10);
        slowest = Math.max(slowest, ms);
      }
      expect(Date.now() - openedAt).to.be.below(cooldown);
      report(`breaker open: 30 concurrent calls in ${burst.ms.toFixed(1)} ms, sequential calls at most ${slowest.toFixed(1)} ms`);
      expect(p.reads(), 'no read while open').to.equal(7);
      expect(p.errors.length, 'no error while open: the backend is not called').to.equal(errorsWhenOpened);
      expect(p.cache.stats().fallbacks).to.equal(fallbacksWhenOpened + 50);
      expect(p.fallbacks.slice(5)).to.deep.equal(Array(50).fill('circuit-open'));
      expect(burst.ms).to.be.below(100);
      expect(slowest).to.be.below(20);

      // Past the cooldown, still dead: exactly one call probes, fails, and the breaker reopens.
      await sleep(cooldown - (Date.now() - openedAt) + 50);
      await Promise.all(Array.from({ length: 10 }, (_, n) => p.f(n)));
      expect(p.reads(), 'one probe').to.equal(8);
      expect(p.errors.length).to.equal(errorsWhenOpened + 1);

      // The server comes back: after the cooldown the probe succeeds and caching resumes.
      await server.restart();
      const restartedAt = Date.now();
      const resumedIn = await cachingResumes(p, 7, 5000);
      report(`breaker: caching resumed ${Date.now() - restartedAt} ms after the restart (${resumedIn} ms of polling)`);
      const n = p.computations();
      const readsBefore = p.reads();
      for (let i = 0; i < 10; i++) expect(await p.f(7)).to.equal(70);
      expect(p.computations()).to.equal(n);
      expect(p.reads()).to.equal(readsBefore + 10); // closed again: every call reads
    });
  });

  describe('a full server (maxmemory with noeviction)', function () {
    let server: RedisServer;
    let admin: Redis;

    before(async function () {
      server = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
      admin = new Redis({ host: server.host, port: server.port, lazyConnect: true });
      await admin.connect();
    });

    after(async function () {
      await admin.config('SET', 'maxmemory', '0');
      await admin.quit();
      await server.stop();
    });

    afterEach(async function () {
      await admin.config('SET', 'maxmemory', '0');
    });

    it('fails writes and locks with OOM: the caller gets its result and an error event; hits keep working', async function () {
      const p = probe(server, { circuitBreaker: false });
      expect(await p.f(1)).to.equal(10);
      expect(await p.tagged(1)).to.equal(10);
      expect(p.computations()).to.equal(2);

      await admin.config('SET', 'maxmemory', '1'); // anything the server holds is over it
      expect(await admin.config('GET', 'maxmemory-policy')).to.deep.equal(['maxmemory-policy', 'noeviction']);
      await expectRejection(admin.set(`${p.cache.keyspace.prefix}:probe`, 'x'), /OOM/);

      // Reads of cached entries keep working: no write, no error.
      for (let i = 0; i < 5; i++) {
        expect(await p.f(1)).to.equal(10);
        expect(await p.tagged(1)).to.equal(10);
      }
      expect(p.computations()).to.equal(2);
      expect(p.errors).to.deep.equal([]);

      // A miss takes a lock (and a tagged one may create tag versions): refused, fall open.
      const miss = await timed(() => p.f(2));
      expect(miss.value).to.equal(20);
      expect(await p.f(2)).to.equal(20);
      expect(p.computations()).to.equal(4); // not cached
      expectCauses(p.errors, /OOM command not allowed/);
      expect(p.errors.map((e) => (e as BackendError).operation)).to.deep.equal(['read', 'read']);
      report(`full: a miss falls open in ${miss.ms.toFixed(1)} ms`);

      // A write refused after a successful read (the server filled up while the function ran).
      p.errors.length = 0;
      const fills = p.cache.wrap(
        async (n: number) => {
          await admin.config('SET', 'maxmemory', '1');
          return n + 0.5;
        },
        { name: 'fills' },
      );
      await admin.config('SET', 'maxmemory', '0');
      expect(await fills(1)).to.equal(1.5);
      expectCauses(p.errors, /OOM command not allowed/);
      expect(p.errors.map((e) => (e as BackendError).operation)).to.deep.equal(['write']);
      // The lock could not be released either (a DEL is refused too): it expires by itself.

      await admin.config('SET', 'maxmemory', '0');
      await cachingResumes(p, 3);
      expect(await p.tagged(1)).to.equal(10); // still the entry cached before
      expect(p.cache.stats().fallbacks).to.equal(2);
    });

    it('with many callers: none rejects while the server is full', async function () {
      const p = probe(server);
      await p.cache.clean(['warm']);
      await admin.config('SET', 'maxmemory', '1');
      const results = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? p.tagged(i % 40) : p.f(i % 40))),
      );
      expect(results.filter((r) => r.status === 'rejected')).to.deep.equal([]);
      expect(results.map((r) => (r as PromiseFulfilledResult<number>).value)).to.deep.equal(
        Array.from({ length: 200 }, (_, i) => (i % 40) * 10),
      );
      expectCauses(p.errors, /OOM command not allowed/);
    });
  });

  describe('a read-only replica', function () {
    let primary: RedisServer;
    let replica: RedisServer;

    before(async function () {
      primary = await startRedisServer();
      replica = await startRedisServer({ args: ['--replicaof', primary.host, String(primary.port)] });
      const client = new Redis({ host: replica.host, port: replica.port, lazyConnect: true });
      await client.connect();
      try {
        const deadline = Date.now() + 10_000;
        while (!/master_link_status:up/.test(await client.info('replication'))) {
          if (Date.now() > deadline) throw new Error('the replica did not sync');
          await sleep(50);
        }
      } finally {
        await client.quit();
      }
    });

    after(async function () {
      await replica.stop();
      await primary.stop();
    });

    it('refuses writes and locks with READONLY: calls fall open with error events, entries written on the primary are served', async function () {
      const writer = probe(primary);
      const prefix = writer.cache.keyspace.prefix;
      expect(await writer.f(1)).to.equal(10);
      expect(await writer.tagged(1)).to.equal(10);
      const admin = await adminOf(replica);
      const deadline = Date.now() + 5000;
      while ((await admin.exists(writer.tagged.key(1))) === 0 && Date.now() < deadline) await sleep(20);

      const p = probe(replica, { prefix, circuitBreaker: false });
      // Replicated entries hit: the read script writes nothing on a hit.
      expect(await p.f(1)).to.equal(10);
      expect(await p.tagged(1)).to.equal(10);
      expect(p.computations()).to.equal(0);
      expect(p.errors).to.deep.equal([]);

      // Misses take a lock (SET NX), tagged misses create tag versions: READONLY, fall open.
      const results = await Promise.allSettled([p.f(2), p.tagged(2), p.f(3), p.tagged(3), p.f(2)]);
      expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as unknown)))).to.deep.equal([20, 20, 30, 30, 20]);
      expectCauses(p.errors, /READONLY/);
      expect(p.fallbacks).to.deep.equal(['read-failed', 'read-failed', 'read-failed', 'read-failed']);
      expect(p.computations()).to.equal(4);

      // A read with a lock token on an unlocked miss is refused; invalidation rejects (never silent).
      const error = await expectRejection(p.f.invalidate(1), /READONLY/);
      expect(error).to.be.instanceOf(BackendError);
      await expectRejection(p.cache.clean(['t1']), /READONLY/);
      expect(await p.f(1)).to.equal(10); // the replica still serves the replicated entry
    });
  });

  describe('an ACL user without the rights the backend needs', function () {
    let server: RedisServer;
    let admin: Redis;

    before(async function () {
      server = await startRedisServer();
      admin = new Redis({ host: server.host, port: server.port, lazyConnect: true });
      await admin.connect();
    });

    after(async function () {
      await admin.quit();
      await server.stop();
    });

    async function userProbe(rules: string[]): Promise<Probe> {
      const prefix = newPrefix('acl');
      const user = `u-${prefix}`;
      await admin.call('ACL', 'SETUSER', user, 'reset', 'on', '>secret', ...rules.map((r) => r.replace('{prefix}', prefix)));
      closers.push(() => admin.call('ACL', 'DELUSER', user));
      const server2 = server;
      return probe(server2, { prefix, username: user, password: 'secret', circuitBreaker: false });
    }

    it('without +eval, with +evalsha and +script|load (the ACL of earlier versions): scripts loaded once per script, then cached as usual', async function () {
      const p = await userProbe(['~{prefix}:*', '&{prefix}:*', '+@all', '-eval']);
      const before = Number(/cmdstat_script\|load:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? p.f(i % 5) : p.tagged(i % 5))));
      expect(results).to.deep.equal(Array.from({ length: 20 }, (_, i) => (i % 5) * 10));
      expect(await p.f(1)).to.equal(10);
      expect(p.cache.stats().hits).to.be.at.least(1);
      expect(p.cache.stats().fallbacks).to.equal(0);
      expect(p.errors).to.deep.equal([]);
      const loads = Number(/cmdstat_script\|load:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0) - before;
      // Once per script used at most: read.lua and readMany.lua (the burst's first read alone,
      // the others batched), write-2.lua and writeMany.lua likewise.
      expect(loads).to.be.within(1, 4);
    });

    for (const [what, rules] of [
      ['without +eval and +evalsha', ['~{prefix}:*', '&{prefix}:*', '+@all', '-eval', '-evalsha']],
      ['without key access under the prefix', ['~other:*', '&{prefix}:*', '+@all']],
      ['with read-only key access (%R~)', ['%R~{prefix}:*', '&{prefix}:*', '+@all']],
    ] as const) {
      it(`${what}: NOPERM, every call falls open with an error event, none rejects`, async function () {
        const p = await userProbe([...rules]);
        const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? p.f(i % 5) : p.tagged(i % 5))));
        expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as unknown)))).to.deep.equal(
          Array.from({ length: 20 }, (_, i) => (i % 5) * 10),
        );
        const again = await timed(() => p.f(1));
        expect(again.value).to.equal(10);
        expect(again.ms).to.be.below(100);
        expectCauses(p.errors, /NOPERM/);
        expect(p.cache.stats().fallbacks).to.equal(p.errors.length);
        expect(p.cache.stats().hits).to.equal(0);
        await expectRejection(p.cache.clean(['t1']), /NOPERM/);
        report(`acl ${what}: ${(p.errors[0]?.cause as Error).message}`);
      });
    }
  });
});

async function expectRejection(promise: Promise<unknown>, pattern: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(Error);
    const messages = [(error as Error).message, ((error as Error).cause as Error | undefined)?.message ?? ''].join(' / ');
    expect(messages).to.match(pattern);
    return error as Error;
  }
  throw new Error(`expected a rejection matching ${String(pattern)}`);
}
