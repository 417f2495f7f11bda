/**
 * RedisBackend through Redis Sentinel, on real servers (a primary, a replica and three
 * sentinels): the whole contract suite, then forced failovers under load, a lock waiter across
 * a failover, and what the cache leaves on (and needs from) the old primary.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RedisBackend, RedisReplicationError } from '../../src/backend/redis/index.js';
import { redisScripts } from '../../src/backend/redis/scripts.js';
import type { HermesError } from '../../src/errors.js';
import { Hermes } from '../../src/hermes.js';
import { registerBackendContract } from '../../src/testing/index.js';
import { type RedisSentinelSetup, startRedisSentinel } from '../helpers/redis-sentinel.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const CONNECTION_NAME = 'hermes-sentinel-spec';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const started = Date.now();
  while (!(await check().catch(() => false))) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
  return Date.now() - started;
}

/** The promise's value, or a rejection naming what hung. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} hung for ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

describe('RedisBackend through Redis Sentinel (real primary, replica and 3 sentinels)', function () {
  this.timeout(60_000);
  let setup: RedisSentinelSetup;
  const admins: Redis[] = [];
  const backends: RedisBackend[] = [];
  /** The primaries demoted by the failovers, in order. */
  const oldPrimaries: number[] = [];

  /** A plain connection to one server, for checks behind the cache's back. */
  function admin(port: number): Redis {
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    admins.push(client);
    return client;
  }

  function sentinelBackend(extra: { invalidationReplicas?: number } = {}): RedisBackend {
    const backend = new RedisBackend({ sentinels: [...setup.sentinels], name: setup.name, connectionName: CONNECTION_NAME, ...extra });
    backends.push(backend);
    return backend;
  }

  /** The port a backend's command connection is actually connected to. */
  const connectedPort = (backend: RedisBackend): number | undefined => (backend.client as Redis).stream?.remotePort;

  /**
   * Waits until the old primary serves as a replica of the current one, in sync, and the
   * sentinels count it as a good replica again (so that another failover can be forced).
   */
  async function settled(): Promise<{ primary: number; replica: number }> {
    let primary = 0;
    let replica = 0;
    await until('the old primary to rejoin as a replica', async () => {
      primary = await setup.primaryPort();
      const sentinel = admin(setup.sentinels[0]?.port ?? 0);
      const replicas = (await sentinel.call('SENTINEL', 'REPLICAS', setup.name)) as string[][];
      sentinel.disconnect();
      const good = replicas.find((fields) => {
        const info = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) info.set(fields[i] ?? '', fields[i + 1] ?? '');
        return info.get('flags') === 'slave' && info.get('master-link-status') === 'ok' && info.get('master-port') === String(primary);
      });
      if (!good) return false;
      replica = Number(good[good.indexOf('port') + 1]);
      const role = await admin(replica).info('replication');
      return role.includes('role:slave') && role.includes('master_link_status:up') && role.includes(`master_port:${primary}`);
    });
    return { primary, replica };
  }

  before(async function () {
    setup = await startRedisSentinel('hermes-sentinel-spec');
  });

  afterEach(async function () {
    for (const backend of backends.splice(0)) await backend.close();
    for (const client of admins.splice(0)) client.disconnect();
  });

  after(async function () {
    await setup?.stop();
  });

  describe('the contract suite, connected through the sentinels', function () {
    registerBackendContract({
      name: 'RedisBackend (sentinel)',
      createBackend: () => new RedisBackend({ sentinels: [...setup.sentinels], name: setup.name }),
      // A second process: its own connections, resolved through the sentinels too.
      createPeer: () => new RedisBackend({ sentinels: [...setup.sentinels], name: setup.name }),
      writeRaw: async (backend, key, bytes) => {
        await (backend as RedisBackend).client.set(key, bytes);
      },
    });
  });

  describe('invalidations acknowledged by a replica', function () {
    it('with invalidationReplicas, resolve once a replica has them (WAIT); reject when too few replicas answer', async function () {
      const cache = new Hermes(sentinelBackend({ invalidationReplicas: 1 }), { prefix: 'acked', ttl: 60 });
      const fn = cache.wrap(async (id: number) => id, { name: 'fn', tags: ['t'] });
      expect(await fn(1)).to.equal(1);
      const server = admin(await setup.primaryPort());
      await server.config('RESETSTAT');
      await fn.invalidate(1);
      await cache.clean(['t']);
      await cache.clean();
      expect(await server.info('commandstats')).to.match(/cmdstat_wait:calls=3,/);
      // Off by default: no WAIT.
      const plain = new Hermes(sentinelBackend(), { prefix: 'acked', ttl: 60 });
      await server.config('RESETSTAT');
      await plain.clean(['t']);
      expect(await server.info('commandstats')).not.to.include('cmdstat_wait');
      // Two replicas wanted, one exists: not acknowledged, so the caller hears of it.
      const strict = new RedisBackend({ sentinels: [...setup.sentinels], name: setup.name, invalidationReplicas: 2, commandTimeout: 400 });
      backends.push(strict);
      const strictCache = new Hermes(strict, { prefix: 'acked', ttl: 60 });
      const strictFn = strictCache.wrap(async (id: number) => id, { name: 'fn', tags: ['t'] });
      expect(await strictFn(1)).to.equal(1);
      for (const invalidation of [() => strictFn.invalidate(1), () => strictCache.clean(['t']), () => strictCache.clean()]) {
        const error = await invalidation().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error, 'an invalidation that reached too few replicas').to.be.instanceOf(Error);
        const cause = (error as Error & { cause?: unknown }).cause;
        expect(cause).to.be.instanceOf(RedisReplicationError);
        expect((cause as RedisReplicationError).code).to.equal('ERR_HERMES_REDIS_NOT_REPLICATED');
        expect(String(cause)).to.include('reached 1 of 2 replicas');
      }
      expect(() => new RedisBackend({ invalidationReplicas: -1 })).to.throw(/invalidationReplicas/);
    });
  });

  describe('failover', function () {
    it('under load: no caller rejected, no value served after its invalidation, hits again from the new primary', async function () {
      const { replica: promoted } = await settled();
      const oldPrimary = await setup.primaryPort();
      // The replica about to be promoted knows no script: the new primary must get them loaded.
      await admin(promoted).script('FLUSH');
      await admin(promoted).config('RESETSTAT');

      // Two processes sharing the cache: one reads only, the other reads and invalidates. Without
      // invalidationReplicas, an invalidation the old primary acknowledges between the replica's
      // promotion and the switch (some 1 s) is lost, and its stale value served on: seen here.
      const caches = [
        new Hermes(sentinelBackend({ invalidationReplicas: 1 }), { prefix: 'load', ttl: 60 }),
        new Hermes(sentinelBackend({ invalidationReplicas: 1 }), { prefix: 'load', ttl: 60 }),
      ];
      const errors: HermesError[] = [];
      let fallbacks = 0;
      const fallbackTimes: number[] = [];
      const hits: Array<{ at: number; port: number | undefined }> = [];
      for (const cache of caches) {
        cache.on('error', (error) => errors.push(error));
        cache.on('fallback', () => {
          fallbacks++;
          fallbackTimes.push(Date.now());
        });
        cache.on('hit', () => hits.push({ at: Date.now(), port: connectedPort(cache.backend as RedisBackend) }));
      }
      // The source of truth: a version per (group, id); the functions return it.
      const GROUPS = 3;
      const IDS = 6;
      const versions = new Map<string, number>();
      /** Per key: the version the cache must serve at least, once an invalidation was acknowledged. */
      const floors = new Map<string, number>();
      const name = (group: number, id: number): string => `${group}:${id}`;
      const fns = caches.map((cache) =>
        Array.from({ length: GROUPS }, (_, group) =>
          cache.wrap(
            async (id: number) => {
              await sleep(1);
              return versions.get(name(group, id)) ?? 0;
            },
            { name: `item${group}`, tags: [`group${group}`] },
          ),
        ),
      );

      let running = true;
      let calls = 0;
      let rejected = 0;
      const violations: string[] = [];
      let invalidationRetries = 0;
      const reader = async (cacheIndex: number): Promise<void> => {
        while (running) {
          const group = Math.floor(Math.random() * GROUPS);
          const id = Math.floor(Math.random() * IDS);
          const floor = floors.get(name(group, id)) ?? 0;
          calls++;
          try {
            const version = await (fns[cacheIndex]?.[group] as (id: number) => Promise<number>)(id);
            if (version < floor) violations.push(`${name(group, id)}: served version ${version} after version ${floor} was invalidated`);
          } catch {
            rejected++;
          }
          await sleep(Math.random() * 2);
        }
      };
      /** An invalidation that failed (the switch) is retried, as a writer must; acknowledged, it holds. */
      const persist = async (invalidate: () => Promise<void>): Promise<void> => {
        for (;;) {
          try {
            await invalidate();
            return;
          } catch {
            invalidationRetries++;
            await sleep(20);
          }
        }
      };
      const writer = async (): Promise<void> => {
        const fn = fns[1] as Array<{ invalidate(id: number): Promise<void> }>;
        while (running) {
          const group = Math.floor(Math.random() * GROUPS);
          if (Math.random() < 0.2) {
            // A change of a whole group: every version moves, one tag invalidates them all.
            const moved: Array<[string, number]> = [];
            for (let id = 0; id < IDS; id++) {
              const version = (versions.get(name(group, id)) ?? 0) + 1;
              versions.set(name(group, id), version);
              moved.push([name(group, id), version]);
            }
            await persist(() => (caches[1] as Hermes).clean([`group${group}`]));
            for (const [key, version] of moved) floors.set(key, Math.max(floors.get(key) ?? 0, version));
          } else {
            const id = Math.floor(Math.random() * IDS);
            const version = (versions.get(name(group, id)) ?? 0) + 1;
            versions.set(name(group, id), version);
            await persist(() => (fn[group] as { invalidate(id: number): Promise<void> }).invalidate(id));
            floors.set(name(group, id), Math.max(floors.get(name(group, id)) ?? 0, version));
          }
          await sleep(10);
        }
      };

      const load = [...Array.from({ length: 12 }, (_, i) => reader(i % 2)), writer()];
      let failoverAt = 0;
      let newPrimary = 0;
      let firstHitMs = -1;
      let bothSwitchedAt = 0;
      try {
        await sleep(1000);
        const hitsBefore = hits.length;
        expect(hitsBefore, 'hits before the failover').to.be.greaterThan(100);
        failoverAt = Date.now();
        newPrimary = await setup.failover();
        const switchedMs = Date.now() - failoverAt;
        expect(newPrimary).to.equal(promoted);
        firstHitMs = -1;
        await until(
          'a hit from the new primary',
          async () => {
            const first = hits.find((hit) => hit.at >= failoverAt && hit.port === newPrimary);
            if (first) firstHitMs = first.at - failoverAt;
            return first !== undefined;
          },
          15_000,
        );
        // Both processes' connections on the new primary (each reacts to the switch on its own:
        // on a loaded machine one may follow seconds after the other), then the load a while
        // longer: the hits from then on must come from the new primary.
        await until(
          'both processes connected to the new primary',
          async () => caches.every((cache) => connectedPort(cache.backend as RedisBackend) === newPrimary),
          15_000,
        );
        bothSwitchedAt = Date.now();
        // The load a while longer: at least 20 hits from the new primary after both switched
        // (a second, or longer on a loaded machine where the load runs slowly).
        await sleep(1000);
        await until(
          '20 hits from the new primary after both switched',
          async () => hits.filter((hit) => hit.at >= bothSwitchedAt + 50 && hit.port === newPrimary).length >= 20,
          15_000,
        );
        console.log(
          `      failover: sentinels switched after ${switchedMs} ms; first hit from the new primary ${firstHitMs} ms after the failover began; ` +
            `${calls} calls, ${fallbacks} fell back (from ${(fallbackTimes[0] ?? failoverAt) - failoverAt} to ${(fallbackTimes.at(-1) ?? failoverAt) - failoverAt} ms), ${errors.length} backend errors (${[...new Set(errors.map((e) => e.code))].join(', ') || 'none'}), ` +
            `${invalidationRetries} invalidations retried`,
        );

      } finally {
        running = false;
        await Promise.all(load);
      }
      // A tag cleaned on the new primary too (the load may not have done it since the switch);
      // acknowledged once the old primary rejoins as its replica.
      await persist(() => (caches[1] as Hermes).clean(['group0']));
      await persist(() => (fns[1]?.[0] as { invalidate(id: number): Promise<void> }).invalidate(0));
      expect(rejected, 'calls rejected').to.equal(0);
      expect(violations, 'values served after their invalidation').to.deep.equal([]);
      // Sentinel demotes the old primary only some 8-10 s later: hits sooner come from the switch.
      expect(firstHitMs).to.be.within(0, 6000);
      // Both processes end up on the new primary, and hit there.
      for (const cache of caches) expect(connectedPort(cache.backend as RedisBackend)).to.equal(newPrimary);
      // The hits once both had switched (50 ms later: a reply already on its way counts as before).
      // (A hit whose connection closed right after its reply has no port to show: a reconnection
      // after the switch, READONLY from the demoted primary, can fall among them.)
      const ports = hits.filter((hit) => hit.at >= bothSwitchedAt + 50).map((hit) => hit.port);
      expect(ports.filter((port) => port !== undefined && port !== newPrimary), `ports of the hits after both switched: ${ports.join(',')}`).to.deep.equal([]);
      expect(ports.filter((port) => port === newPrimary).length, `ports of the hits after both switched: ${ports.join(',')}`).to.be.at.least(20);
      // The scripts were loaded on the new primary, and EVALSHA succeeds there.
      const server = admin(newPrimary);
      const scripts = redisScripts();
      const names = ['read', 'write', 'release', 'invalidate', 'cleanTags'] as const;
      const known = (await server.script('EXISTS', ...names.map((script) => scripts[script].sha))) as number[];
      const loaded = names.filter((_, i) => known[i] === 1);
      expect(loaded).to.include.members(['read', 'write', 'invalidate', 'cleanTags']);
      const stats = await server.info('commandstats');
      const evalsha = /cmdstat_evalsha:calls=(\d+),.*rejected_calls=(\d+),failed_calls=(\d+)/.exec(stats);
      expect(evalsha, stats).not.to.equal(null);
      const [, evalCalls, evalRejected, evalFailed] = (evalsha as RegExpExecArray).map(Number);
      expect((evalCalls as number) - (evalRejected as number) - (evalFailed as number)).to.be.greaterThan(10);
      expect(stats).to.match(/cmdstat_eval:calls=[1-9]/); // the bodies came with the first calls
      expect(oldPrimary).not.to.equal(newPrimary);
    });

    it('a lock waiter across a failover is woken by the computation that finishes on the new primary', async function () {
      this.timeout(90_000); // waits for the old primary to rejoin (some 10 s) before forcing the failover
      const { replica: promoted } = await settled();
      const options = { prefix: 'waiter', ttl: 60, lockWait: 30_000, lockTimeout: 30_000 };
      const computing = new Hermes(sentinelBackend(), options);
      const waiting = new Hermes(sentinelBackend(), options);
      const errors: HermesError[] = [];
      for (const cache of [computing, waiting]) cache.on('error', (error) => errors.push(error));
      let calls = 0;
      // Every computation started (the waiter computes too if its read fails over: a fallback).
      const finishers: Array<(value: string) => void> = [];
      const finish = (value: string): void => {
        for (const done of finishers.splice(0)) done(value);
      };
      const slow = (cache: Hermes): ((id: number) => Promise<string>) =>
        cache.wrap(
          async (id: number) => {
            calls++;
            return new Promise<string>((resolve) => {
              finishers.push((value) => {
                resolve(`${value}:${id}`);
              });
            });
          },
          { name: 'slow' },
        );
      const first = slow(computing)(1);
      await until('the computation to start', async () => calls === 1);
      const waits: Array<{ woken: boolean; waitedMs: number }> = [];
      waiting.on('wait', (event) => waits.push(event));
      const second = slow(waiting)(1);
      // The waiter is subscribed before the failover.
      await sleep(300);
      expect(calls).to.equal(1);
      oldPrimaries.push(await setup.primaryPort());
      const newPrimary = await setup.failover();
      expect(newPrimary).to.equal(promoted);
      // Let both processes move to the new primary, then finish the computation there.
      await until('both processes on the new primary', async () => {
        await waiting.clean(['unused-tag']).catch(() => undefined);
        await computing.clean(['unused-tag']).catch(() => undefined);
        return [computing, waiting].every((cache) => connectedPort(cache.backend as RedisBackend) === newPrimary);
      }, 15_000);
      const finishedAt = Date.now();
      finish('computed');
      expect(await within(first, 10_000, 'the computing caller')).to.equal('computed:1');
      expect(await within(second, 10_000, 'the waiting caller')).to.equal('computed:1');
      const latency = Date.now() - finishedAt;
      console.log(`      lock waiter: served ${latency} ms after the computation finished; ${calls} computation(s); waits ${JSON.stringify(waits)}`);
      // Woken (by the release, or by its subscriber's reconnection), not timed out.
      expect(waits.every((wait) => wait.woken)).to.equal(true);
      expect(waits.length).to.be.greaterThan(0);
      expect(latency).to.be.below(3000);
      // Stored on the new primary: a third process hits.
      const third = new Hermes(sentinelBackend(), options);
      let thirdCalls = 0;
      const hit = third.wrap(async (id: number) => `recomputed:${id + thirdCalls++}`, { name: 'slow' });
      expect(await hit(1)).to.equal('computed:1');
      expect(thirdCalls).to.equal(0);
      expect(errors.filter((error) => error.code !== 'ERR_HERMES_BACKEND').map(String)).to.deep.equal([]);
    });

    it('after a failover, clean(tags) and clean() act on the new primary; the old primary is not needed', async function () {
      // The old primary back as a replica, to check what it holds.
      const { primary } = await settled();
      expect(oldPrimaries.length).to.be.greaterThan(0);
      const oldPrimary = oldPrimaries[oldPrimaries.length - 1] as number;
      expect(oldPrimary).not.to.equal(primary);
      const options = { prefix: 'after', ttl: 60, lockWait: 10_000 };
      const cache = new Hermes(sentinelBackend(), options);
      const peer = new Hermes(sentinelBackend(), options);
      const errors: HermesError[] = [];
      let fallbacks = 0;
      for (const c of [cache, peer]) {
        c.on('error', (error) => errors.push(error));
        c.on('fallback', () => fallbacks++);
      }
      let calls = 0;
      const tagged = cache.wrap(async (id: number) => `t${id}:${calls++}`, { name: 'tagged', tags: ['t'] });
      const plain = cache.wrap(async (id: number) => `p${id}:${calls++}`, { name: 'plain' });
      const slowFn = async (id: number): Promise<string> => {
        await sleep(300);
        return `s${id}:${calls++}`;
      };
      const slowHere = cache.wrap(slowFn, { name: 'slow' });
      const slowThere = peer.wrap(slowFn, { name: 'slow' });
      // Connect both processes, the subscriber included (a lock wait), before the checks.
      const warm = slowThere(0);
      await sleep(50);
      expect(await slowHere(0)).to.equal(await warm);
      const list = async (port: number): Promise<string> => String(await admin(port).client('LIST'));
      expect(await list(primary)).to.include(`name=${CONNECTION_NAME}`);
      // The old primary holds no connection of the cache: neither commands nor the subscriber.
      expect(await list(oldPrimary)).not.to.include(`name=${CONNECTION_NAME}`);
      // Pause every client of the old primary: reads, writes and lock waits must not notice.
      await admin(oldPrimary).client('PAUSE', 5000, 'ALL');
      const started = Date.now();
      let a: string;
      let b: string;
      try {
        a = await tagged(1);
        b = await plain(1);
        expect(await tagged(1)).to.equal(a);
        expect(await plain(1)).to.equal(b);
        // A lock wait: the computation in one process wakes the waiter in the other.
        const computing = slowThere(1);
        await sleep(50);
        const before = calls;
        expect(await slowHere(1)).to.equal(await computing);
        expect(calls).to.equal(before + 1);
        expect(Date.now() - started, 'served while the old primary was paused').to.be.below(3000);
      } finally {
        await admin(oldPrimary).client('UNPAUSE').catch(() => undefined);
      }
      {
        const server = admin(primary);
        expect(await server.exists(tagged.key(1), plain.key(1), cache.keyspace.tagKey('t'))).to.equal(3);
        await cache.clean(['t']);
        expect(await server.exists(cache.keyspace.tagKey('t'))).to.equal(0);
        expect(await tagged(1)).not.to.equal(a);
        expect(await plain(1)).to.equal(b);
        await cache.clean();
        const [, left] = await server.scan('0', 'MATCH', 'after:*', 'COUNT', 1000);
        expect(left).to.deep.equal([]);
        // Replicated to the old primary: nothing of the cache is left there either.
        await until('the replica to follow', async () => (await admin(oldPrimary).scan('0', 'MATCH', 'after:*', 'COUNT', 1000))[1].length === 0, 5000);
        expect(await plain(1)).not.to.equal(b);
        expect(errors.map(String)).to.deep.equal([]);
        expect(fallbacks).to.equal(0);
      }
    });

    it("close() leaves no connection open to the sentinels (ioredis' quit() keeps the failover detector's open)", async function () {
      const count = async (): Promise<number> => {
        let total = 0;
        for (const { port } of setup.sentinels) {
          // The failover detector's connections are subscribed to +switch-master.
          total += String(await admin(port).client('LIST')).split('\n').filter((line) => / sub=[1-9]/.test(line)).length;
        }
        return total;
      };
      const baseline = await count();
      const cache = new Hermes(sentinelBackend(), { prefix: 'closing' });
      const fn = cache.wrap(async (id: number) => id, { name: 'fn' });
      expect(await fn(1)).to.equal(1);
      await until('the failover detector to subscribe', async () => (await count()) > baseline, 5000);
      await cache.close();
      await until('every connection to the sentinels to close', async () => (await count()) === baseline, 5000);
    });
  });
});
