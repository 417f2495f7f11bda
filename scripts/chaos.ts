/**
 * Chaos test (issue 8, point 8): `npm run test:chaos`.
 *
 * 64 concurrent callers run wrapped calls for ~20 s against a real redis-server (a few hundred
 * keys, some tagged) while entries are invalidated (`invalidate`) and tags cleaned
 * (`clean(tags)`) all the time, the server is killed and restarted twice on the same port, and
 * `SCRIPT FLUSH` is run once. It asserts:
 *
 * - zero rejected calls and zero unhandled rejections;
 * - zero values served after their invalidation: every wrapped function returns the versions
 *   (of its key and of its tags) current when its computation started; an invalidation bumps
 *   the version *before* it is sent, and once it has resolved, its version becomes the floor
 *   for every call that *starts* afterwards (the floor is read when the call starts). A call
 *   may return an older version only if it started before the invalidation resolved;
 * - caching resumes after each restart: the hit ratio is back above 50 % within 5 s;
 *
 * Beside this process run four more (worker threads, see `chaos/load.ts`: each its own
 * `Hermes`, connections and event loop), on the same keys and under the same failures: three
 * with the near-cache (`nearCache: { heartbeatMs: 250 }`) and one plain, 12 callers each
 * pausing 1 ms between calls, each invalidating keys too (one near-cache process also cleans
 * tags); two of them (one near-cache, one plain) on 8 hot keys, where calls join one another. The versions live in memory
 * shared by every thread (`chaos/truth.ts`). Subscriber connections are killed twice
 * (`CLIENT KILL TYPE pubsub`) and every data connection once (`CLIENT KILL TYPE normal`). A value
 * is *late* when it is older than an invalidation another process had acknowledged before the
 * call started (a plain process never hears of those; it may join a call of its own that read
 * before). It asserts, for every process:
 *
 * - zero rejected calls, zero values older than its own acknowledged invalidations;
 * - near-cache processes: zero late values whose call started after the process had read the
 *   invalidation message naming the changed key, and zero late values whose call started more
 *   than `WINDOW_ALLOWANCE_MS` after the acknowledgement (the window: it hears one network hop
 *   after the invalidating caller's acknowledgement), not counting how late the caller's own
 *   thread woke for the call (a thread that does not run reads no socket either: on a loaded
 *   machine a thread is held up for 100–500 ms now and then, and serves what it holds as soon
 *   as it runs again); their near-cache serves hits again in the last 2 s, after every failure.
 *   near-3 goes through a proxy that stalls its subscriber connection twice: a value
 *   acknowledged then may be served until the heartbeat's trust ends (2 × heartbeat, plus a hop);
 *
 * and prints the figures as markdown tables, with the lags of late values (p50/p99/max) by
 * process kind. Exits 1 if an assertion fails, 0 otherwise.
 */

import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { Hermes, type HermesStats } from '../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../src/backend/redis/index.js';
import { type RedisServer, startRedisServer } from '../test/helpers/redis-server.js';
import { GROUPS, keyOf, keyTotal, type LateReads, lateReads, type LoadOptions, type LoadReport, type LoadWorker, keepWorst, SourceProbe, startLoad } from './chaos/load.js';
import { allLags, bySource, lagFigures, mergeLate, WINDOW_ALLOWANCE_MS } from './chaos/report.js';
import { type StallProxy, startStallProxy } from './chaos/stall-proxy.js';
import { isOlder, now as clock, Truth } from './chaos/truth.js';

const DURATION_MS = 20_000;
const CONCURRENCY = 64;
const KILLS_AT = [3_500, 11_000]; // ms after the start
const OUTAGE_MS = 1_500;
const SCRIPT_FLUSH_AT = 8_000;
const RECOVERY_LIMIT_MS = 5_000;
const SAMPLE_MS = 250;
const KEYS = { plain: 150, one: 100, two: 100 }; // 350 keys: untagged, tagged ['a'], tagged ['a', 'b']
const HEARTBEAT_MS = 250;
type Other = Pick<LoadOptions, 'name' | 'nearCache' | 'cleanEveryMs' | 'hotKeys' | 'invalidateShare'> & { viaStallProxy: boolean; hot?: true };
const NEAR = { heartbeatMs: HEARTBEAT_MS };
/**
 * The other processes, 12 callers each. near-1 and near-3 read every key (near-3 through the
 * stall proxy); near-hot and plain-hot read and invalidate 8 hot untagged keys (5 % of their
 * calls invalidate): the join window, where calls join one another's reads.
 */
const OTHERS: Other[] = [
  { name: 'near-1', nearCache: NEAR, cleanEveryMs: 2_500, hotKeys: 0, invalidateShare: 0, viaStallProxy: false },
  { name: 'near-3', nearCache: NEAR, cleanEveryMs: 0, hotKeys: 0, invalidateShare: 0, viaStallProxy: true },
  { name: 'near-hot', nearCache: NEAR, cleanEveryMs: 0, hotKeys: 8, invalidateShare: 0.05, viaStallProxy: false, hot: true },
  { name: 'plain-hot', nearCache: false, cleanEveryMs: 0, hotKeys: 8, invalidateShare: 0.05, viaStallProxy: false, hot: true },
];
const OTHER_CALLERS = 12;
/** A value acknowledged while a subscriber is stalled may be served until the heartbeat's trust ends: 2 × heartbeat, plus a hop. */
const STALLED_ALLOWANCE_MS = 2 * HEARTBEAT_MS + 2 * WINDOW_ALLOWANCE_MS;
/**
 * What their callers do between calls (see `LoadOptions.between`): by default sleep 1 ms,
 * processes that are not saturated. `--between=turn` (saturated threads) or `--between=chained`
 * (near hits chained in microtasks) show how far a busy process reads its invalidations late:
 * the allowance then fails, the trust bound (2 × heartbeat) holds.
 */
const OTHER_BETWEEN = betweenOf(process.argv.find((arg) => arg.startsWith('--between='))?.slice('--between='.length) ?? '1');
const PUBSUB_KILLS_AT = [6_500, 14_500]; // CLIENT KILL TYPE pubsub
const NORMAL_KILL_AT = 16_500; // CLIENT KILL TYPE normal
/**
 * Stalls of the subscriber connections behind the stall proxy (near-3): [at, ms]. In the short
 * one, no more than one ping is missed; they are answered late, after the held invalidations. The
 * long one misses two pings, so the subscriber is dropped and opened again (held too, until
 * the end).
 */
const STALLS: [number, number][] = [
  [7_500, 400],
  [13_500, 1_200],
];
/** Near-cache processes must serve near hits again in this last part of the run. */
const NEAR_RESUMED_WITHIN_MS = 2_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

console.log(`$ npm run test:chaos${OTHER_BETWEEN === 1 ? '' : ` -- --between=${OTHER_BETWEEN}`}   # tsx scripts/chaos.ts`);
console.log('');

// Never let a hung run outlive its budget.
const watchdog = setTimeout(() => {
  console.error('chaos: did not finish within 55 s');
  process.exit(2);
}, 55_000);
watchdog.unref();

let unhandled = 0;
process.on('unhandledRejection', (reason) => {
  unhandled++;
  console.error('unhandled rejection:', reason);
});

interface Versions {
  v: number;
  a: number;
  b: number;
}

/** Every process' versions and acknowledgements (current versions: bumped before an invalidation is sent). */
const truth = Truth.create(keyTotal(KEYS));
/** This process' floors: set once its own invalidation has resolved; a call that starts later must see at least these. */
const floor = { key: new Map<string, number>(), a: 0, b: 0 };

const server: RedisServer = await startRedisServer();
const failures: string[] = [];
let cache: Hermes<RedisBackendOptions> | undefined;
const workers: LoadWorker[] = [];
let stallProxy: StallProxy | undefined;
try {
  await run(server);
} catch (error) {
  failures.push(`the chaos run itself failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await cache?.close();
  await Promise.all(workers.map((worker) => worker.terminate()));
  await stallProxy?.close();
  await server.stop();
}
if (server.running) failures.push('the redis-server is still running after stop()');
if (unhandled > 0) failures.push(`${unhandled} unhandled rejection(s)`);
console.log('');
if (failures.length > 0) {
  console.log('FAILED:');
  for (const failure of failures) console.log(`- ${failure}`);
  process.exitCode = 1;
} else {
  console.log(
    `PASSED: zero rejections, zero values served after their own process' invalidation, caching resumed after each restart; near-cache processes: zero values served after they heard of the change or more than ${WINDOW_ALLOWANCE_MS} ms after another process' acknowledged invalidation, near hits again after the failures.`,
  );
}

async function run(redis: RedisServer): Promise<void> {
  const hermes = new Hermes(RedisBackend, { host: redis.host, port: redis.port, prefix: 'chaos', ttl: 600 });
  cache = hermes;
  const errorsByCause = new Map<string, number>();
  hermes.on('error', (error) => {
    const cause = error.cause instanceof Error ? error.cause.message.replace(/'[^']*'/g, "'…'").replace(/:\d+/g, ':…').slice(0, 60) : error.code;
    errorsByCause.set(cause, (errorsByCause.get(cause) ?? 0) + 1);
  });

  /** Lock waits longer than 1 s: [start (ms into the run), waited, woken by a release]. */
  const longWaits: [number, number, boolean][] = [];
  hermes.on('wait', (event) => {
    if (event.waitedMs > 1_000) longWaits.push([performance.now() - started - event.waitedMs, event.waitedMs, event.woken]);
  });
  const fallbacksByReason = { 'read-failed': 0, 'circuit-open': 0 };
  hermes.on('fallback', (event) => {
    fallbacksByReason[event.reason]++;
  });

  const fnOf = (group: (typeof GROUPS)[number]): ((k: number) => Promise<Versions>) => {
    return async (k: number) => {
      const seen = truth.versionsOf(keyOf(KEYS, group, k));
      await sleep(1); // the work the cache saves: ~1 ms of I/O
      return seen;
    };
  };
  const functions = {
    plain: hermes.wrap(fnOf('plain'), { name: 'plain' }),
    one: hermes.wrap(fnOf('one'), { name: 'one', tags: ['a'] }),
    two: hermes.wrap(fnOf('two'), { name: 'two', tags: ['a', 'b'] }),
  };
  const groups = Object.keys(KEYS) as (keyof typeof KEYS)[];
  const probe = new SourceProbe(hermes);

  // The other processes, connected before the start.
  const proxy = await startStallProxy(redis.port);
  stallProxy = proxy;
  for (const other of OTHERS) {
    workers.push(
      startLoad(
        {
          name: other.name,
          host: redis.host,
          port: other.viaStallProxy ? proxy.port : redis.port,
          nearCache: other.nearCache,
          keys: KEYS,
          callers: OTHER_CALLERS,
          hotKeys: other.hotKeys,
          invalidateShare: other.invalidateShare,
          invalidateEveryMs: 40,
          cleanEveryMs: other.cleanEveryMs,
          workMs: 1,
          // The hot ones only wait for the next turn: more calls in flight to join.
          between: other.hot === true && OTHER_BETWEEN === 1 ? 'turn' : OTHER_BETWEEN,
        },
        truth,
      ),
    );
  }
  const spawned = performance.now();
  await Promise.all(workers.map((worker) => worker.ready));
  const startup = performance.now() - spawned;
  const go = clock();
  for (const worker of workers) worker.start(go, go + DURATION_MS);

  const started = performance.now();
  const end = started + DURATION_MS;
  const now = (): number => performance.now() - started;
  const outages: [number, number][] = [];
  const inOutage = (t: number): boolean => outages.some(([from, to]) => t >= from && t <= to);

  let calls = 0;
  let rejected = 0;
  let stale = 0;
  const staleExamples: string[] = [];
  /** Values older than another process' acknowledged invalidation. */
  const late = lateReads();
  const latencies: number[] = [];
  const outageLatencies: number[] = [];
  /** Calls that took more than 1 s: [start, duration] in ms. */
  const slowCalls: [number, number][] = [];

  async function worker(): Promise<void> {
    while (performance.now() < end) {
      const group = groups[Math.floor(Math.random() * groups.length)] as keyof typeof KEYS;
      const k = Math.floor(Math.random() * KEYS[group]);
      const id = `${group}:${k}`;
      const need: Versions = {
        v: floor.key.get(id) ?? 0,
        a: group === 'plain' ? 0 : floor.a,
        b: group === 'two' ? floor.b : 0,
      };
      const key = keyOf(KEYS, group, k);
      const needOfAll = truth.floorsOf(key);
      const startedAt = clock();
      const t0 = performance.now();
      let got: Versions;
      try {
        const { promise, source } = probe.call(() => functions[group](k));
        got = await promise;
        if (isOlder(got, needOfAll)) {
          const lag = truth.lagOf(key, got, needOfAll, startedAt);
          late[source].push(lag);
          late.acks.push([startedAt - lag, lag, 0]);
          keepWorst(late.examples, lag, `${id} (${source}, ${lag.toFixed(1)} ms late) at ${((t0 - started) / 1000).toFixed(2)} s got ${JSON.stringify(got)}, needed ${JSON.stringify(needOfAll)}`);
        }
      } catch (error) {
        rejected++;
        if (rejected <= 5) console.error('rejected call:', error);
        continue;
      } finally {
        calls++;
      }
      const t1 = performance.now();
      latencies.push(t1 - t0);
      if (t1 - t0 > 1_000) slowCalls.push([t0 - started, t1 - t0]);
      if (inOutage(t0 - started) || inOutage(t1 - started)) outageLatencies.push(t1 - t0);
      const old = got.v < need.v || (group !== 'plain' && got.a < need.a) || (group === 'two' && got.b < need.b);
      if (old) {
        stale++;
        if (staleExamples.length < 5) staleExamples.push(`${id} got ${JSON.stringify(got)}, needed ${JSON.stringify(need)}`);
      }
    }
  }

  let invalidations = 0;
  let cleans = 0;
  let invalidationRetries = 0;
  /** Bumps, then invalidates until it succeeds (a failed invalidation must be retried), then raises the floor. */
  async function invalidateOne(): Promise<void> {
    const group = groups[Math.floor(Math.random() * groups.length)] as keyof typeof KEYS;
    const k = Math.floor(Math.random() * KEYS[group]);
    const id = `${group}:${k}`;
    const key = keyOf(KEYS, group, k);
    const version = truth.bump(key.id);
    while (performance.now() < end + 5_000) {
      try {
        await functions[group].invalidate(k);
        truth.acknowledge(key.id, version, clock());
        floor.key.set(id, Math.max(floor.key.get(id) ?? 0, version));
        invalidations++;
        return;
      } catch {
        invalidationRetries++;
        await sleep(50);
      }
    }
  }
  async function cleanTag(tag: 'a' | 'b'): Promise<void> {
    const tagId = tag === 'a' ? truth.tagA : truth.tagB;
    const version = truth.bump(tagId);
    while (performance.now() < end + 5_000) {
      try {
        await hermes.clean([tag]);
        truth.acknowledge(tagId, version, clock());
        floor[tag] = Math.max(floor[tag], version);
        cleans++;
        return;
      } catch {
        invalidationRetries++;
        await sleep(50);
      }
    }
  }
  async function invalidator(): Promise<void> {
    while (performance.now() < end) {
      await invalidateOne();
      await sleep(20);
    }
  }
  async function cleaner(): Promise<void> {
    let i = 0;
    while (performance.now() < end) {
      await sleep(1_000);
      await cleanTag(i++ % 3 === 2 ? 'b' : 'a');
    }
  }

  // Hit ratio per sample window, from the stats' deltas.
  const samples: { t: number; calls: number; hits: number }[] = [];
  let last = { calls: 0, hits: 0 };
  const sampler = setInterval(() => {
    const stats = hermes.stats();
    samples.push({ t: now(), calls: calls - last.calls, hits: stats.hits - last.hits });
    last = { calls, hits: stats.hits };
  }, SAMPLE_MS);

  const events: { t: number; what: string }[] = [];
  const clientKills: string[] = [];
  /** The stalls of near-3's subscriber, on the shared clock, and what they held. */
  const stallWindows: [number, number][] = [];
  const stallsDone: string[] = [];
  async function chaos(): Promise<void> {
    const plan = [
      ...KILLS_AT.map((at) => ({ at, what: 'kill' as const })),
      { at: SCRIPT_FLUSH_AT, what: 'flush' as const },
      ...PUBSUB_KILLS_AT.map((at) => ({ at, what: 'pubsub' as const })),
      { at: NORMAL_KILL_AT, what: 'normal' as const },
    ].sort((x, y) => x.at - y.at);
    const stalls = STALLS.map(async ([at, ms]) => {
      await sleep(Math.max(0, at - now()));
      const from = clock();
      stallWindows.push([from, from + ms]);
      const held = await proxy.stall(ms);
      stallsDone.push(`${(at / 1000).toFixed(1)} s for ${ms} ms: ${held} chunks held`);
    });
    for (const step of plan) {
      await sleep(Math.max(0, step.at - now()));
      if (step.what === 'kill') {
        const outage: [number, number] = [now(), Infinity]; // open until the restart
        outages.push(outage);
        events.push({ t: outage[0], what: 'kill' });
        await redis.kill();
        await sleep(OUTAGE_MS);
        await redis.restart();
        outage[1] = now();
        events.push({ t: outage[1], what: 'restart' });
      } else {
        const admin = new Redis({ host: redis.host, port: redis.port, lazyConnect: true, maxRetriesPerRequest: 0 });
        admin.on('error', () => undefined);
        await admin.connect();
        if (step.what === 'flush') {
          await admin.script('FLUSH');
        } else {
          // Every subscriber connection (the near-cache's invalidations, lock wake-ups), or every
          // data connection but this one.
          const killed = await admin.call('CLIENT', 'KILL', 'TYPE', step.what, 'SKIPME', 'yes');
          clientKills.push(`${step.what} at ${(now() / 1000).toFixed(1)} s: ${String(killed)} connections`);
        }
        admin.disconnect();
        events.push({ t: now(), what: step.what });
      }
    }
    await Promise.all(stalls);
  }

  await Promise.all([
    ...Array.from({ length: CONCURRENCY }, () => worker()),
    invalidator(),
    cleaner(),
    chaos(),
  ]);
  clearInterval(sampler);
  const reports = await Promise.all(workers.map((worker) => worker.report));
  const elapsed = now();
  const stats: HermesStats = hermes.stats();

  // Recovery: the first sample window after each restart with a hit ratio above 50 %.
  const recoveries: number[] = [];
  for (const event of events.filter((e) => e.what === 'restart' || e.what === 'flush')) {
    const window = samples.find((s) => s.t - SAMPLE_MS >= event.t && s.calls > 0 && s.hits / s.calls > 0.5);
    const recovery = window === undefined ? Infinity : window.t - event.t;
    recoveries.push(recovery);
    if (event.what === 'restart' && !(recovery <= RECOVERY_LIMIT_MS)) {
      failures.push(`caching did not resume within ${RECOVERY_LIMIT_MS} ms of the restart at ${(event.t / 1000).toFixed(1)} s`);
    }
  }
  const steady = samples.filter((s) => !inOutage(s.t) && !events.some((e) => s.t > e.t && s.t < e.t + 2_000));
  const steadyRatio = steady.reduce((n, s) => n + s.hits, 0) / Math.max(1, steady.reduce((n, s) => n + s.calls, 0));

  if (rejected > 0) failures.push(`${rejected} rejected call(s)`);
  if (stale > 0) failures.push(`${stale} value(s) served after their invalidation, e.g. ${staleExamples.join('; ')}`);
  if (outages.length !== KILLS_AT.length) failures.push(`${outages.length} outages instead of ${KILLS_AT.length}`);
  if (!events.some((e) => e.what === 'flush')) failures.push('SCRIPT FLUSH was not run');
  if (invalidations < 100) failures.push(`only ${invalidations} invalidations completed`);
  if (clientKills.length !== PUBSUB_KILLS_AT.length + 1) failures.push(`${clientKills.length} CLIENT KILLs instead of ${PUBSUB_KILLS_AT.length + 1}`);
  if (stallsDone.length !== STALLS.length) failures.push(`${stallsDone.length} subscriber stalls instead of ${STALLS.length}`);
  for (const report of reports) {
    const stalled = OTHERS.find((other) => other.name === report.name)?.viaStallProxy === true;
    const beyond = report.late.acks.filter(([ackAt, lag, wokeLate]) => lag - wokeLate > allowanceOf(stalled, ackAt)).length;
    if (report.rejected + report.unhandled > 0) failures.push(`${report.name}: ${report.rejected} rejected call(s), ${report.unhandled} unhandled rejection(s)`);
    if (report.ownLate > 0) failures.push(`${report.name}: ${report.ownLate} value(s) served after its own invalidation, e.g. ${report.ownLateExamples.join('; ')}`);
    if (report.invalidations < 50) failures.push(`${report.name}: only ${report.invalidations} invalidations completed`);
    if (!report.near) continue;
    if (report.lateAfterHeard > 0) failures.push(`${report.name}: ${report.lateAfterHeard} value(s) older than an invalidation the process had heard of when the call started, e.g. ${report.lateAfterHeardExamples.join('; ')}`);
    if (beyond > 0) {
      failures.push(
        `${report.name}: ${beyond} value(s) served more than ${WINDOW_ALLOWANCE_MS} ms (${STALLED_ALLOWANCE_MS} ms if acknowledged during a stall of its subscriber) after another process' acknowledged invalidation, e.g. ${report.late.examples.join('; ')}`,
      );
    }
    const lastSeconds = report.nearHitsPerSecond.slice(-Math.ceil(NEAR_RESUMED_WITHIN_MS / 1000));
    if (!lastSeconds.some((hits) => hits > 0)) failures.push(`${report.name}: no near hits in the last ${NEAR_RESUMED_WITHIN_MS} ms (per second: ${report.nearHitsPerSecond.join(', ')})`);
  }

  /** The allowance of a late value acknowledged at `ackAt`: a hop, or (behind a stalled subscriber) the heartbeat's trust and a hop. */
  function allowanceOf(stalled: boolean, ackAt: number): number {
    const duringStall = stalled && stallWindows.some(([from, to]) => ackAt >= from - WINDOW_ALLOWANCE_MS && ackAt <= to + WINDOW_ALLOWANCE_MS);
    return duringStall ? STALLED_ALLOWANCE_MS : WINDOW_ALLOWANCE_MS;
  }

  const errors = Object.entries(stats.errors).map(([code, n]) => `${code}: ${n}`).join(', ') || '0';
  const rows: [string, string][] = [
    ['duration', `${(elapsed / 1000).toFixed(1)} s, ${CONCURRENCY} concurrent callers, ${KEYS.plain + KEYS.one + KEYS.two} keys (this process; ${OTHERS.length} more started in ${(startup / 1000).toFixed(1)} s)`],
    ['calls', String(calls)],
    ['rejected calls', String(rejected)],
    ['values served after their invalidation', String(stale)],
    ['hits', `${stats.hits} (${((100 * stats.hits) / Math.max(1, calls)).toFixed(1)} %; ${(100 * steadyRatio).toFixed(1)} % outside outages and recoveries)`],
    ['misses / computations', `${stats.misses} / ${stats.computations}`],
    ['errors absorbed, by code', errors],
    ['fallbacks (function run without the cache)', `${stats.fallbacks}: ${fallbacksByReason['read-failed']} read failed, ${fallbacksByReason['circuit-open']} circuit breaker open`],
    ['invalidate / clean(tags) completed', `${invalidations} / ${cleans} (${invalidationRetries} failed during outages and were retried)`],
    ['outages (kill → restart)', outages.map(([a, b]) => `${(a / 1000).toFixed(1)}–${(b / 1000).toFixed(1)} s`).join(', ')],
    ['SCRIPT FLUSH at', events.filter((e) => e.what === 'flush').map((e) => `${(e.t / 1000).toFixed(1)} s`).join(', ')],
    ['CLIENT KILL', clientKills.join(', ')],
    ['subscriber stalls (near-3, behind the stall proxy)', stallsDone.join(', ')],
    ['hit ratio > 50 % again after', recoveries.map((r, i) => `${events.filter((e) => e.what === 'restart' || e.what === 'flush')[i]?.what ?? '?'} ${Number.isFinite(r) ? `${r.toFixed(0)} ms` : 'never'}`).join(', ')],
    ['latency p50 / p99 / max, overall', `${pct(latencies, 50)} / ${pct(latencies, 99)} / ${pct(latencies, 100)} ms`],
    ['calls longer than 1 s (started at → took)', slowCallsText(slowCalls)],
    [
      'lock waits longer than 1 s (started at → waited)',
      longWaits.length === 0
        ? '0'
        : `${slowCallsText(longWaits.map(([at, waited]) => [at, waited]))}; ${longWaits.filter(([, , woken]) => woken).length} woken by a release, ${longWaits.filter(([, , woken]) => !woken).length} timed out`,
    ],
    ['latency p50 / p99 / max, during outages', `${pct(outageLatencies, 50)} / ${pct(outageLatencies, 99)} / ${pct(outageLatencies, 100)} ms (${outageLatencies.length} calls)`],
  ];
  console.log('| figure | value |');
  console.log('| --- | --- |');
  for (const [name, value] of rows) console.log(`| ${name} | ${value} |`);
  if (errorsByCause.size > 0) {
    console.log('');
    console.log('| absorbed error (cause) | count |');
    console.log('| --- | --- |');
    for (const [cause, n] of [...errorsByCause].sort((x, y) => y[1] - x[1]).slice(0, 8)) console.log(`| ${cause.replace(/\|/g, '\\|')} | ${n} |`);
  }
  const stalledOf = (report: LoadReport): boolean => OTHERS.find((other) => other.name === report.name)?.viaStallProxy === true;
  printProcesses(calls, stats, rejected, stale, late, reports, {
    beyondOf: (report) => report.late.acks.filter(([ackAt, lag, wokeLate]) => lag - wokeLate > allowanceOf(stalledOf(report), ackAt)).length,
    inStall: (report, ackAt) => stalledOf(report) && allowanceOf(true, ackAt) !== WINDOW_ALLOWANCE_MS,
  });
}

/** The per-process table, and the lags of late values by kind of process. */
function printProcesses(
  calls: number,
  stats: HermesStats,
  rejected: number,
  own: number,
  late: LateReads,
  reports: LoadReport[],
  judge: { beyondOf: (report: LoadReport) => number; inStall: (report: LoadReport, ackAt: number) => boolean },
): void {
  console.log('');
  console.log(`Every process: late = older than an invalidation another process had acknowledged when the call started (by source: near-cache, joined call in flight, backend); lag = how long after that acknowledgement the call started; allowance for near-cache processes: ${WINDOW_ALLOWANCE_MS} ms (${STALLED_ALLOWANCE_MS} ms for near-3 when acknowledged during a stall of its subscriber); after heard = late although the call started after the process read the invalidation message.`);
  console.log('');
  console.log('| process | near-cache | calls | hits (near) | late (by source) | late lag p50 / p99 / max | beyond allowance | after heard | own late | rejected | invalidations | near flushes / messages | loop delay p99 / max |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  console.log(`| main | off | ${calls} | ${stats.hits} | ${bySource(late)} | ${lagFigures(allLags(late))} | – | – | ${own} | ${rejected} | – | – | – |`);
  for (const r of reports) {
    const lags = allLags(r.late);
    const beyond = judge.beyondOf(r);
    console.log(
      `| ${r.name} | ${r.near ? 'on' : 'off'} | ${r.calls} | ${r.hits}${r.near ? ` (${r.nearStats?.hits ?? 0})` : ''} | ${bySource(r.late)} | ${lagFigures(lags)} | ${r.near ? beyond : '–'} | ${r.near ? r.lateAfterHeard : '–'} | ${r.ownLate} | ${r.rejected + r.unhandled} | ${r.invalidations + r.cleans} | ${r.near ? `${r.nearStats?.flushes ?? 0} / ${r.messages}` : '–'} | ${r.loopDelay.p99.toFixed(0)} / ${r.loopDelay.max.toFixed(0)} ms |`,
    );
  }
  const nearLate = mergeLate(reports.filter((r) => r.near).map((r) => r.late));
  const plainLate = mergeLate([...reports.filter((r) => !r.near).map((r) => r.late), late]);
  const nearAcks = reports.filter((r) => r.near).flatMap((r) => r.late.acks.map(([ackAt, lag, wokeLate]) => ({ lag, wokeLate, stalled: judge.inStall(r, ackAt) })));
  const hopLags = nearAcks.filter((ack) => !ack.stalled).map((ack) => ack.lag);
  const hopLagsBeyondWake = nearAcks.filter((ack) => !ack.stalled).map((ack) => Math.max(0, ack.lag - ack.wokeLate));
  const stallLags = nearAcks.filter((ack) => ack.stalled).map((ack) => ack.lag);
  console.log('');
  console.log('| late values, by kind of process | count | lag p50 / p99 / max |');
  console.log('| --- | --- | --- |');
  console.log(`| near-cache, all | ${bySource(nearLate)} | ${lagFigures(allLags(nearLate))} |`);
  console.log(`| near-cache, acknowledged outside a subscriber stall | ${hopLags.length} | ${lagFigures(hopLags)} |`);
  console.log(`| the same, lag minus how late the caller's thread woke for the call (allowance ${WINDOW_ALLOWANCE_MS} ms) | ${hopLagsBeyondWake.length} | ${lagFigures(hopLagsBeyondWake)} |`);
  console.log(`| near-cache, acknowledged during a subscriber stall (near-3; allowance ${STALLED_ALLOWANCE_MS} ms) | ${stallLags.length} | ${lagFigures(stallLags)} |`);
  console.log(`| plain (never hears of another process' invalidation) | ${bySource(plainLate)} | ${lagFigures(allLags(plainLate))} |`);
  if (nearLate.examples.length > 0) console.log(`\nlargest near-cache lags: ${nearLate.examples.slice(0, 3).join('; ')}`);
}

/** The `--between` argument: `turn`, `chained` or a number of ms. */
function betweenOf(text: string): LoadOptions['between'] {
  if (text === 'turn' || text === 'chained') return text;
  const ms = Number(text);
  if (!Number.isFinite(ms) || ms < 0) throw new TypeError(`--between takes turn, chained or a number of ms, not '${text}'`);
  return ms;
}

/** The slow calls, grouped by the second they started in: `3.6 s: 12 (max 1.9 s)`. */
function slowCallsText(slow: readonly [number, number][]): string {
  if (slow.length === 0) return '0';
  const bySecond = new Map<number, number[]>();
  for (const [at, took] of slow) {
    const second = Math.floor(at / 1000);
    bySecond.set(second, [...(bySecond.get(second) ?? []), took]);
  }
  return [...bySecond]
    .map(([second, took]) => `${second}–${second + 1} s: ${took.length} (up to ${(Math.max(...took) / 1000).toFixed(1)} s)`)
    .join(', ');
}

function pct(values: number[], p: number): string {
  if (values.length === 0) return '–';
  const sorted = Float64Array.from(values).sort();
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return (sorted[index] as number).toFixed(p === 50 ? 2 : 1);
}
