/**
 * Redis Cluster failover under load, on real servers (3 masters, each with a replica): a
 * replica promoted by a manual CLUSTER FAILOVER, then a master SIGKILLed and replaced by its
 * replica once the cluster flags it failed. Two caches (each with its own RedisBackend) call
 * tagged functions while a writer invalidates entries and tags (test/helpers/cluster-load.ts).
 * The replica to be promoted knows no script (SCRIPT FLUSH): the backend must load them there.
 * No call may reject, no value may be served after its acknowledged invalidation, and hits on
 * the promoted slots must come back from the new master.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { Hermes } from '../../src/index.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { redisScripts } from '../../src/backend/redis/scripts.js';
import { type ClusterLoad, clusterLoad } from '../helpers/cluster-load.js';
import { clusterRoles, type RedisCluster, slotOwners, startRedisCluster } from '../helpers/redis-cluster.js';

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/** Polls `check` every 50 ms until it holds; the time it took, in ms. */
async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Successful calls of `command` in a node's INFO commandstats. */
function served(commandstats: string, command: string): number {
  const found = new RegExp(`cmdstat_${command}:calls=(\\d+),.*rejected_calls=(\\d+),failed_calls=(\\d+)`).exec(commandstats);
  if (found === null) return 0;
  const [, calls = 0, rejectedCalls = 0, failedCalls = 0] = found.map(Number);
  return calls - rejectedCalls - failedCalls;
}

describe('RedisBackend on Redis Cluster: failover of a master to its replica, under load', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  const admins = new Map<number, Redis>();
  const caches: Hermes[] = [];

  /** A plain connection to one node (no redirections). */
  const admin = (port: number): Redis => {
    let client = admins.get(port);
    if (client === undefined) {
      client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
      client.on('error', () => undefined);
      admins.set(port, client);
    }
    return client;
  };

  before(async function () {
    cluster = await startRedisCluster(3, { replicas: 1 });
  });

  afterEach(async function () {
    for (const cache of caches.splice(0)) await cache.close().catch(() => undefined);
  });

  after(async function () {
    for (const client of admins.values()) client.disconnect();
    await cluster?.stop();
  });

  /** Two caches on the cluster under `prefix`, and the load on them, warmed. */
  async function loadOn(prefix: string, promotedSlots: ReadonlySet<number>): Promise<ClusterLoad> {
    // A read the cluster client retried onto the new master after the caller gave up may take
    // its entry's lock for nobody (the caller's release may run first): such a lock expires
    // after lockTimeout, kept short here as it should be for 1 ms functions.
    const options = { prefix, ttl: 600, lockTimeout: 1500, lockWait: 1500 };
    // The first cache with the near-cache (tracking per master, re-established on the new one),
    // the second without: the old value may reach the near-cache's callers for one network hop
    // after the other cache's invalidation is acknowledged (the window, bounded here at 100 ms).
    const pair = [true, false].map((nearCache) => new Hermes(new RedisBackend({ cluster: [...cluster.nodes], nearCache }), options)) as [Hermes, Hermes];
    caches.push(...pair);
    const load = clusterLoad({ caches: pair, items: 120, groups: 6, callers: 8, focus: (slot) => promotedSlots.has(slot), windowMs: 100 });
    await load.warm();
    return load;
  }

  /**
   * Runs `load` across `failover` (which resolves once the promoted replica serves as a
   * master), then on until a key of `promotedSlots` hit after the promotion, and `settleMs`
   * more. The figures, for the log and the checks.
   */
  async function across(load: ClusterLoad, promotedSlots: ReadonlySet<number>, failover: () => Promise<void>, firstHitWithinMs: number, settleMs = 1500) {
    load.start();
    try {
      await sleep(500);
      const hitsBefore = load.hits.filter((hit) => promotedSlots.has(hit.slot)).length;
      const errorsBefore = load.errors.length;
      const failoverAt = Date.now();
      await failover();
      const promotedAt = Date.now();
      let firstHitMs = -1;
      await waitFor(
        'a hit of a promoted slot after the promotion',
        async () => {
          const first = load.hits.find((hit) => hit.at >= promotedAt && promotedSlots.has(hit.slot));
          if (first !== undefined) firstHitMs = first.at - failoverAt;
          return first !== undefined;
        },
        firstHitWithinMs,
      );
      await sleep(settleMs);
      const lastSecond = Date.now() - 1000;
      const fallbacks = load.fallbacks.filter((f) => f.at >= failoverAt);
      const errors = load.errors.slice(errorsBefore);
      return {
        hitsOnPromotedSlotsBefore: hitsBefore,
        promotedMs: promotedAt - failoverAt,
        firstHitOnPromotedMs: firstHitMs,
        fallbacks: fallbacks.length,
        fallbacksOnPromotedSlots: fallbacks.filter((f) => promotedSlots.has(f.slot)).length,
        fallbacksOnOtherSlots: fallbacks.filter((f) => !promotedSlots.has(f.slot)).length,
        hitsOnOtherSlotsDuring: load.hits.filter((hit) => hit.at >= failoverAt && hit.at < promotedAt && !promotedSlots.has(hit.slot)).length,
        circuitOpenFallbacks: fallbacks.filter((f) => f.reason === 'circuit-open').length,
        fallbackSpanMs: fallbacks.length === 0 ? [0, 0] : [(fallbacks[0]?.at ?? 0) - failoverAt, (fallbacks.at(-1)?.at ?? 0) - failoverAt],
        backendErrors: errors.length,
        errorKinds: [...new Set(errors.map((e) => `${e.code}: ${((e.cause as Error | undefined)?.message ?? e.message).slice(0, 50)}`))].slice(0, 6),
        failedInvalidations: load.failedInvalidations.length,
        lastSecondOnPromotedSlots: {
          hits: load.hits.filter((hit) => hit.at > lastSecond && promotedSlots.has(hit.slot)).length,
          fallbacks: fallbacks.filter((f) => f.at > lastSecond && promotedSlots.has(f.slot)).length,
        },
      };
    } finally {
      await load.stop();
    }
  }

  /** The scripts the backend keeps on a cluster: loaded on the new master? */
  async function scriptsOn(port: number): Promise<string[]> {
    const scripts = redisScripts();
    const names = ['read', 'write', 'release', 'invalidate'] as const;
    const known = (await admin(port).script('EXISTS', ...names.map((name) => scripts[name].sha))) as number[];
    return names.filter((_, i) => known[i] === 1);
  }

  /**
   * Since its CONFIG RESETSTAT: the EVALSHA a node served, the script bodies it was sent (EVAL,
   * or SCRIPT LOAD), and the scripts it knows.
   */
  async function onNewMaster(port: number): Promise<{ evalsha: number; scriptLoads: number; loaded: string[] }> {
    const stats = await admin(port).info('commandstats');
    const scriptLoads = served(stats, 'eval') + served(stats, 'script\\|load');
    return { evalsha: served(stats, 'evalsha'), scriptLoads, loaded: await scriptsOn(port) };
  }

  /** Waits until every node in `ports` sees the cluster whole, with `master` a master. */
  async function agreed(ports: readonly number[], master: number, timeoutMs: number): Promise<void> {
    await waitFor(
      `every node to see ${master} as a master, cluster_state:ok`,
      async () => {
        for (const port of ports) {
          if (!(await admin(port).cluster('INFO')).includes('cluster_state:ok')) return false;
          if ((await clusterRoles(port)).find((node) => node.port === master)?.role !== 'master') return false;
        }
        return true;
      },
      timeoutMs,
    );
  }

  /** A master, its replica and the slots it serves; not `except`. */
  async function pair(except: readonly number[]): Promise<{ master: number; replica: number; slots: Set<number> }> {
    const roles = await clusterRoles(cluster.nodes[0]?.port ?? 0);
    const replica = roles.find((node) => node.role === 'replica' && !node.failing && !except.includes(node.master));
    if (replica === undefined) throw new Error('no master with a replica left');
    const owners = await slotOwners(replica.master);
    const slots = new Set<number>();
    owners.forEach((owner, slot) => {
      if (owner === replica.master) slots.add(slot);
    });
    return { master: replica.master, replica: replica.port, slots };
  }

  let firstPromoted = 0;

  it('CLUSTER FAILOVER on a replica with no script: nothing rejected, nothing stale, scripts loaded and hits on the new master', async function () {
    const { master, replica, slots } = await pair([]);
    const load = await loadOn('manual', slots);
    await admin(replica).script('FLUSH');
    expect(await scriptsOn(replica), 'scripts on the replica before').to.deep.equal([]);
    await admin(replica).config('RESETSTAT');
    const ports = cluster.nodes.map((n) => n.port);
    const report = await across(load, slots, async () => {
      await admin(replica).cluster('FAILOVER');
      await agreed(ports, replica, 10_000);
    }, 5000);
    firstPromoted = replica;
    const { evalsha, scriptLoads, loaded } = await onNewMaster(replica);
    const near = caches.at(-2)?.stats().near;
    console.log(`      manual failover: ${JSON.stringify({ ...report, ...load.counts, stale: load.stale.length, evalshaOnNewMaster: evalsha, scriptLoadsOnNewMaster: scriptLoads, scriptsOnNewMaster: loaded, near })}`);
    expect(near?.hits, 'near-cache hits').to.be.greaterThan(0);
    expect(near?.flushes, 'near-cache flushed by the failover').to.be.greaterThan(0);

    expect((await clusterRoles(master)).find((node) => node.port === master)?.role, 'the old master, demoted').to.equal('replica');
    expect(load.rejected, 'calls rejected').to.deep.equal([]);
    expect(load.stale, 'values served after their acknowledged invalidation').to.deep.equal([]);
    expect(report.hitsOnPromotedSlotsBefore, 'hits on the promoted slots before').to.be.greaterThan(20);
    expect(load.counts.invalidations + load.counts.cleans, 'invalidations under load').to.be.greaterThan(20);
    expect(loaded, 'scripts loaded on the new master').to.include.members(['read', 'write', 'invalidate']);
    expect(scriptLoads, 'EVAL (or SCRIPT LOAD) sent to the new master').to.be.greaterThan(0);
    expect(evalsha, 'EVALSHA served by the new master').to.be.greaterThan(10);
    expect(report.firstHitOnPromotedMs).to.be.within(0, 5000);
    // The coordinated failover: the replica had every acknowledged write; calls do not fall back
    // for long (the promotion itself, ioredis learning the new slot owner).
    expect(report.fallbackSpanMs[1] ?? 0, 'fallbacks end soon after the failover').to.be.below(3000);
    expect(report.lastSecondOnPromotedSlots.fallbacks, 'fallbacks on the promoted slots in the last second').to.equal(0);
    expect(report.lastSecondOnPromotedSlots.hits, 'hits on the promoted slots in the last second').to.be.greaterThan(0);
  });

  it('a master SIGKILLed, its replica (no script) elected: nothing rejected, nothing stale, hits again on the new master', async function () {
    const { master, replica, slots } = await pair([firstPromoted]);
    const load = await loadOn('killed', slots);
    await admin(replica).script('FLUSH');
    await admin(replica).config('RESETSTAT');
    const alive = cluster.nodes.map((n) => n.port).filter((port) => port !== master);
    let killedAt = 0;
    const report = await across(load, slots, async () => {
      killedAt = Date.now();
      await cluster.kill(master);
      admins.get(master)?.disconnect();
      admins.delete(master);
      await agreed(alive, replica, 20_000);
    }, 15_000, 2000);
    const { evalsha, scriptLoads, loaded } = await onNewMaster(replica);
    // Async replication: a write the killed master acknowledged just before it died may not
    // have reached the replica. Each stale value, with how long before the kill its
    // invalidation was acknowledged.
    const lost = load.stale.map((s) => ({ ...s, acknowledgedBeforeKillMs: killedAt - s.acknowledgedAt, startedAfterAckMs: (s.startedAt ?? 0) - s.acknowledgedAt, servedAfterAckMs: s.at - s.acknowledgedAt, promoted: slots.has(load.slotOfItem(s.item)) }));
    const near = caches.at(-2)?.stats().near;
    console.log(`      master killed: ${JSON.stringify({ ...report, ...load.counts, stale: load.stale.length, evalshaOnNewMaster: evalsha, scriptLoadsOnNewMaster: scriptLoads, scriptsOnNewMaster: loaded, near })}`);
    expect(near?.hits, 'near-cache hits').to.be.greaterThan(0);
    expect(near?.flushes, 'near-cache flushed by the failover').to.be.greaterThan(0);
    if (lost.length > 0) console.log(`      stale after the kill: ${JSON.stringify(lost.slice(0, 10))}`);
    console.log(`      long waits: ${load.longWaits.length} ${JSON.stringify(load.longWaits.slice(0, 5).map((w) => ({ ...w, at: w.at - killedAt })))}`);

    expect(load.rejected, 'calls rejected').to.deep.equal([]);
    // Once seen in about 1 run in 6 (an item serving its previous value for a few ms right after
    // a clean(tags)): a lock waiter read again with the same version seed as its first read, so
    // it re-created, after the clean, the tag version its first read had created, and every
    // entry written with that version was valid again. Reads now seed versions afresh
    // (test/redis/redis.spec.ts has the deterministic case).
    expect(lost, 'values served after their acknowledged invalidation').to.deep.equal([]);
    expect(report.hitsOnPromotedSlotsBefore, 'hits on the killed master\'s slots before').to.be.greaterThan(20);
    expect(report.fallbacksOnPromotedSlots, 'calls on the killed master\'s slots fell back meanwhile').to.be.greaterThan(0);
    // The circuit breaker trips per master: the live masters' slots kept being served. (They
    // carry twice the dead master's calls; one breaker for the whole backend sent ~97% of the
    // fallbacks there. A stall of this 2-core machine's event loop can still time out reads on
    // every master at once and open their breakers too, hence no bound of zero.)
    expect(report.hitsOnOtherSlotsDuring, 'hits on the live masters\' slots during the outage').to.be.greaterThan(200);
    // Most calls on the live masters' slots were served during the outage (one breaker for the
    // backend fell back on nearly all of them). Not compared with the dead master's fallbacks:
    // with the load at 3-7 on 2 cores, stalls opened the live breakers for 2,459 fallbacks
    // against 1,867 on the dead master's slots, while 3,633 calls there were still served.
    expect(report.fallbacksOnOtherSlots, 'fallbacks on the live masters\' slots, against their hits').to.be.below(report.hitsOnOtherSlotsDuring);
    expect(loaded, 'scripts loaded on the new master').to.include.members(['read', 'write', 'invalidate']);
    expect(scriptLoads, 'EVAL (or SCRIPT LOAD) sent to the new master').to.be.greaterThan(0);
    expect(evalsha, 'EVALSHA served by the new master').to.be.greaterThan(10);
    expect(report.firstHitOnPromotedMs).to.be.within(0, 15_000);
    // Reads of the promoted slots hit again: the last second of the load fell back no more there.
    expect(report.lastSecondOnPromotedSlots.fallbacks, 'fallbacks on the promoted slots in the last second').to.equal(0);
    expect(report.lastSecondOnPromotedSlots.hits, 'hits on the promoted slots in the last second').to.be.greaterThan(0);
  });
});
