/**
 * Early refresh (`earlyRefresh`, XFetch) under load: 4 forked processes hammer one hot key on a
 * redis-server started for the run, across the key's expiry, with and without early refresh.
 * The key's function takes 100 ms and counts its computations with a Redis INCR.
 *
 * One round: 4 processes start, each with 50 callers (a service's concurrent requests) that
 * call the key every 20 ms; the parent computes the key once (its entry fresh for `TTL` s),
 * reads the fresh-until time from the entry's header, and has the callers run from 1.5 s before
 * that time to 1 s after it. Reported per setting (median over rounds, interleaved):
 * computations during the load, calls that missed or waited, and the p50 / p99 / max latency of
 * the calls started within ±250 ms of the expiry.
 *
 *   npm run bench -- early
 */

import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { freshUntilOf } from '../../src/codec.js';
import { Hermes } from '../../src/index.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import type { EarlyReport } from './early-worker.js';
import { fmt, median, percentile } from './measure.js';

const WORKER = fileURLToPath(new URL('./early-worker.ts', import.meta.url));
const PROCESSES = 4;
const LOOPS = 50;
const PAUSE_MS = 20;
const TTL_S = 5;
const COMPUTE_MS = 100;
const ROUNDS = 3;
const BEFORE_MS = 1500;
const AFTER_MS = 1000;
const WINDOW_MS = 250;
const SETTINGS = ['off', '1', '2'] as const;

/** The figures of one round. */
interface Round {
  readonly computations: number;
  readonly calls: number;
  readonly windowCalls: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** Calls (started within the window) that took over 50 ms: they waited for a computation. */
  readonly slow: number;
  readonly misses: number;
  readonly lockWaits: number;
  readonly earlyRefreshes: number;
  /** How long before the expiry the first early refresh started, ms; NaN without one. */
  readonly aheadMs: number;
  readonly fallbacks: number;
  readonly failures: number;
}

function waitFor<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string }): void => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      resolve(message as T);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => {
      reject(new Error(`early worker exited with ${String(code)} before '${type}'`));
    });
  });
}

async function round(port: number, admin: Redis, setting: string, id: number): Promise<Round> {
  const prefix = `earlybench${id}`;
  // The processes first (forking them takes a while on a busy machine), connected and ready.
  const children = Array.from({ length: PROCESSES }, () =>
    fork(WORKER, [String(port), prefix, setting, String(TTL_S), String(COMPUTE_MS), String(LOOPS), String(PAUSE_MS)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const done = children.map((child) => waitFor<EarlyReport>(child, 'done'));
  for (const report of done) report.catch(() => undefined); // awaited below, unless the round fails first
  try {
    await Promise.all(children.map((child) => waitFor(child, 'ready')));
    // Then the parent warms the key: its entry, with the compute time in its header.
    const warm = new Hermes(RedisBackend, { host: '127.0.0.1', port, prefix, ttl: TTL_S, jitter: 0 });
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    const hot = warm.wrap(async function hot() {
      await sleep(COMPUTE_MS);
      return 'hot value';
    }, { name: 'hot' });
    await hot();
    const bytes = await admin.getBuffer(hot.key());
    await warm.close();
    const freshUntil = bytes === null ? undefined : freshUntilOf(bytes);
    if (freshUntil === undefined) throw new Error('the warmed entry is missing');
    const startAt = freshUntil - BEFORE_MS;
    if (startAt < Date.now()) throw new Error('the workers started too late: raise TTL_S');
    for (const child of children) child.send({ type: 'go', startAt, endAt: freshUntil + AFTER_MS });
    const reports = await Promise.all(done);
    const latencies: number[] = [];
    let calls = 0;
    for (const report of reports) {
      const s = report.samples;
      for (let i = 0; i < s.length; i += 2) {
        calls++;
        if (Math.abs((s[i] as number) - freshUntil) <= WINDOW_MS) latencies.push(s[i + 1] as number);
      }
    }
    const sum = (pick: (r: EarlyReport) => number): number => reports.reduce((n, r) => n + pick(r), 0);
    return {
      computations: Number(await admin.get(`${prefix}:computations`)),
      calls,
      windowCalls: latencies.length,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: Math.max(...latencies),
      slow: latencies.filter((ms) => ms > 50).length,
      misses: sum((r) => r.misses),
      lockWaits: sum((r) => r.lockWaits),
      earlyRefreshes: sum((r) => r.earlyRefreshes),
      aheadMs: reports.some((r) => r.freshForMs.length > 0) ? Math.max(...reports.flatMap((r) => r.freshForMs)) : Number.NaN,
      fallbacks: sum((r) => r.fallbacks),
      failures: sum((r) => r.failures),
    };
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Runs the rounds and prints the table. */
export async function printEarlyBench(command: string): Promise<void> {
  const server = await startRedisServer();
  const admin = new Redis(server.port, '127.0.0.1');
  const results = new Map<string, Round[]>(SETTINGS.map((s) => [s, []]));
  try {
    let id = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (const setting of SETTINGS) results.get(setting)?.push(await round(server.port, admin, setting, ++id));
    }
  } finally {
    admin.disconnect();
    await server.stop();
  }
  console.log(`## Early refresh: one hot key across its expiry, ${PROCESSES} processes (redis-server, loopback)\n`);
  console.log(
    `${PROCESSES} processes × ${LOOPS} callers each call one key every ${PAUSE_MS} ms, from ${BEFORE_MS / 1000} s before its expiry to ${AFTER_MS / 1000} s after; ` +
      `the function takes ${COMPUTE_MS} ms; ttl ${TTL_S} s, no jitter. Medians of ${ROUNDS} interleaved rounds. Computations, misses, lock waits and early refreshes: during the whole load; ` +
      `latencies: of the calls started within ±${WINDOW_MS} ms of the expiry ("slow": over 50 ms, i.e. waited for a computation).\n`,
  );
  console.log(`| earlyRefresh | computations | misses | lock waits | early refreshes | refreshed ahead, ms | calls (±${WINDOW_MS} ms) | slow | p50 ms | p99 ms | max ms | fallbacks | failures |`);
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const setting of SETTINGS) {
    const rounds = results.get(setting) ?? [];
    const m = (pick: (r: Round) => number): number => median(rounds.map(pick));
    const label = setting === 'off' ? 'off' : `{ beta: ${setting} }`;
    console.log(
      `| ${label} | ${m((r) => r.computations)} | ${m((r) => r.misses)} | ${m((r) => r.lockWaits)} | ${m((r) => r.earlyRefreshes)} | ${setting === 'off' ? '—' : fmt(m((r) => r.aheadMs))} | ${fmt(m((r) => r.windowCalls))} | ${m((r) => r.slow)} | ${fmt(m((r) => r.p50), 2)} | ${fmt(m((r) => r.p99), 1)} | ${fmt(m((r) => r.max), 1)} | ${m((r) => r.fallbacks)} | ${m((r) => r.failures)} |`,
    );
  }
  console.log(`\ncommand: \`${command}\` · node ${process.version} · ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}\n`);
}
