/**
 * The join window, measured: `npm run test:join-window` (`tsx scripts/join-window.ts`).
 *
 * 4 processes (worker threads, each its own `Hermes`, connections and event loop) × 12
 * concurrent callers read, bump and invalidate 8 keys for 6 s against one redis-server; run
 * without and with the near-cache, with callers that saturate their threads and callers that
 * pause 1 ms between calls, and once more with the near-cache and callers chaining their calls.
 * A read is *late* when it returns a value older than an invalidation that some process had
 * acknowledged before the read started; for each, how long after that acknowledgement it
 * started, and where its value came from (the near-cache, a call in flight it joined in its own
 * process, or Redis).
 *
 * Without the near-cache a process never hears of another's invalidation, so a call may join a
 * call of its own process that read before it: those late reads are the join window. With the
 * near-cache a process hears of it one network hop after the acknowledgement, and a call that
 * starts after that never joins a call that read before it. Asserts, exiting 1 otherwise:
 *
 * - no process serves a value older than its *own* acknowledged invalidation (every run);
 * - with the near-cache, no late read started after its process had read the invalidation
 *   message naming the changed key (observed on the subscriber, see `chaos/load.ts`);
 * - with the near-cache, no late read lags its acknowledgement by more than
 *   {@link WINDOW_ALLOWANCE_MS}, beyond how late the caller's own thread woke for it, when
 *   callers sleep 1 ms between calls (processes that are not saturated); when they only wait for the event loop's next turn (every thread saturated) or
 *   chain their calls (near hits resolve in microtasks, so the process reads no socket
 *   meanwhile), the bound is the near-cache's trust: 2 × `heartbeatMs`;
 * - zero rejected calls.
 */

import { startRedisServer } from '../test/helpers/redis-server.js';
import { Redis } from 'ioredis';
import { type LoadReport, startLoad } from './chaos/load.js';
import { allLags, bySource, lagFigures, mergeLate, WINDOW_ALLOWANCE_MS } from './chaos/report.js';
import { now, Truth } from './chaos/truth.js';

const PROCESSES = 4;
const CALLERS = 12;
const KEYS = { plain: 8, one: 0, two: 0 };
const DURATION_MS = 6_000;
const INVALIDATE_SHARE = 0.05;
const HEARTBEAT_MS = 250;

console.log('$ npm run test:join-window   # tsx scripts/join-window.ts');
console.log('');

const watchdog = setTimeout(() => {
  console.error('join-window: did not finish within 120 s');
  process.exit(2);
}, 120_000);
watchdog.unref();

const server = await startRedisServer();
const failures: string[] = [];
/**
 * The runs (see `LoadOptions.between`): callers that wait for the event loop's next turn before
 * each call (every thread saturated), callers that sleep 1 ms between calls (unsaturated
 * processes), callers that chain their calls.
 */
const RUNS = [
  { near: false, between: 'turn', label: 'off' },
  { near: true, between: 'turn', label: 'on' },
  { near: false, between: 1, label: 'off, 1 ms pauses' },
  { near: true, between: 1, label: 'on, 1 ms pauses' },
  { near: true, between: 'chained', label: 'on, calls chained' },
] as const;
const results: { near: boolean; label: string; paced: boolean; reports: LoadReport[] }[] = [];
try {
  for (const { near, between, label } of RUNS) {
    const admin = new Redis({ host: server.host, port: server.port });
    await admin.flushall();
    admin.disconnect();
    const truth = Truth.create(KEYS.plain);
    const workers = Array.from({ length: PROCESSES }, (_, i) =>
      startLoad(
        {
          name: `${near ? 'near' : 'plain'}-${i + 1}`,
          host: server.host,
          port: server.port,
          nearCache: near ? { heartbeatMs: HEARTBEAT_MS } : false,
          keys: KEYS,
          callers: CALLERS,
          hotKeys: 0,
          invalidateShare: INVALIDATE_SHARE,
          invalidateEveryMs: 0,
          cleanEveryMs: 0,
          workMs: 1,
          between,
        },
        truth,
      ),
    );
    const spawned = now();
    await Promise.all(workers.map((worker) => worker.ready));
    console.error(`near-cache ${label}: ${PROCESSES} processes ready in ${(now() - spawned).toFixed(0)} ms`);
    const go = now() + 50;
    for (const worker of workers) worker.start(go, go + DURATION_MS);
    try {
      results.push({ near, label, paced: typeof between === 'number', reports: await Promise.all(workers.map((worker) => worker.report)) });
    } finally {
      await Promise.all(workers.map((worker) => worker.terminate()));
    }
  }
} catch (error) {
  failures.push(`the run itself failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
} finally {
  await server.stop();
}

console.log(
  `${PROCESSES} processes (worker threads) × ${CALLERS} callers, ${KEYS.plain} keys, ${DURATION_MS / 1000} s each run; ${(INVALIDATE_SHARE * 100).toFixed(0)} % of operations bump and invalidate; near-cache heartbeat ${HEARTBEAT_MS} ms. Callers wait for the event loop's next turn before each call (every thread saturated), or sleep 1 ms between calls, or chain their calls. Allowance with 1 ms pauses: ${WINDOW_ALLOWANCE_MS} ms; else the near-cache's trust bound, 2 × heartbeat = ${2 * HEARTBEAT_MS} ms (a saturated thread reads its sockets late).`,
);
console.log('');
console.log(
  "| near-cache | reads | invalidations | late reads (by source) | late lag p50 / p99 / max | late beyond allowance (lag minus the caller's own wake delay) | late after the process heard | own-invalidation late | near hits | rejected |",
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const { near, label, paced, reports } of results) {
  const late = mergeLate(reports.map((r) => r.late));
  const lags = allLags(late);
  const acks = reports.flatMap((r) => r.late.acks);
  // Saturated threads (callers that never sleep) read their sockets late: there only the trust bound holds.
  const allowance = paced ? WINDOW_ALLOWANCE_MS : 2 * HEARTBEAT_MS;
  // Not counting how late the caller's own thread woke for the call (it could not read a socket either).
  const beyond = acks.filter(([, lag, wokeLate]) => lag - wokeLate > allowance).length;
  const reads = reports.reduce((n, r) => n + r.calls, 0);
  const own = reports.reduce((n, r) => n + r.ownLate, 0);
  const rejected = reports.reduce((n, r) => n + r.rejected + r.unhandled, 0);
  const nearHits = reports.reduce((n, r) => n + (r.nearStats?.hits ?? 0), 0);
  const afterHeard = reports.reduce((n, r) => n + r.lateAfterHeard, 0);
  console.log(
    `| ${label} | ${reads} | ${reports.reduce((n, r) => n + r.invalidations, 0)} | ${bySource(late)} | ${lagFigures(lags)} | ${beyond} (> ${allowance} ms) | ${near ? afterHeard : '–'} | ${own} | ${near ? nearHits : '–'} | ${rejected} |`,
  );
  if (own > 0) failures.push(`near-cache ${label}: ${own} value(s) older than the process' own acknowledged invalidation: ${reports.flatMap((r) => r.ownLateExamples).slice(0, 3).join('; ')}`);
  if (afterHeard > 0) failures.push(`near-cache ${label}: ${afterHeard} late read(s) started after the process heard of the change: ${reports.flatMap((r) => r.lateAfterHeardExamples).slice(0, 3).join('; ')}`);
  if (near && beyond > 0) failures.push(`near-cache ${label}: ${beyond} late read(s) beyond ${allowance} ms: ${late.examples.slice(0, 3).join('; ')}`);
  if (rejected > 0) failures.push(`near-cache ${label}: ${rejected} rejected call(s) or unhandled rejection(s)`);
}
if (results.length < RUNS.length) failures.push('a run did not complete');
console.log('');
if (failures.length > 0) {
  console.log('FAILED:');
  for (const failure of failures) console.log(`- ${failure}`);
  process.exitCode = 1;
} else {
  console.log(
    `PASSED: with the near-cache, no late read started after its process had heard of the change, and every one started within ${WINDOW_ALLOWANCE_MS} ms of the acknowledgement beyond its thread's own wake delay (the trust bound, ${2 * HEARTBEAT_MS} ms, for saturated or chained callers); no process served a value older than its own acknowledged invalidation.`,
  );
}
