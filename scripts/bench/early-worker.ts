/**
 * One process of the early-refresh benchmark, forked by `early.ts`:
 * `early-worker.ts <redis port> <prefix> <beta|off> <ttl s> <compute ms> <loops> <pause ms>`.
 *
 * It builds a cache on the redis-server with the prefix the parent warmed, opens its
 * connections with one call on another key, says `ready`, and on `go` runs `loops` loops that
 * call the hot key back to back (`pause` ms apart) from `startAt` to `endAt` (ms since the
 * epoch). Each computation of the hot key counts itself with a Redis INCR. It reports every
 * call's start and latency, and its cache's counters.
 */

import { Redis } from 'ioredis';
import { Hermes } from '../../src/index.js';
import { RedisBackend } from '../../src/backend/redis/index.js';

/** What a worker sends its parent once its loops are done. */
export interface EarlyReport {
  readonly type: 'done';
  /** Each call's start, ms since the epoch, and its latency, ms: `[start, latency, start, latency, …]`. */
  readonly samples: number[];
  /** Calls that got a wrong value or an error. */
  readonly failures: number;
  readonly misses: number;
  readonly lockWaits: number;
  readonly earlyRefreshes: number;
  /** Calls that ran the function without the cache (a read past backendTimeout on the busy machine). */
  readonly fallbacks: number;
  /** For each early refresh this process started: how long the value had left to be fresh, ms. */
  readonly freshForMs: number[];
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

const [portText, prefix = '', betaText, ttlText, computeText, loopsText, pauseText] = process.argv.slice(2);
if (process.send === undefined) throw new Error('early-worker: no IPC');
const send = process.send.bind(process);
const port = Number(portText);
const computeMs = Number(computeText);
const loops = Number(loopsText);
const pauseMs = Number(pauseText);

const counter = new Redis(port, '127.0.0.1');
const cache = new Hermes(RedisBackend, {
  host: '127.0.0.1',
  port,
  prefix,
  ttl: Number(ttlText),
  jitter: 0,
  earlyRefresh: betaText === 'off' ? false : { beta: Number(betaText) },
});
const hot = cache.wrap(
  async function hot(): Promise<string> {
    await counter.incr(`${prefix}:computations`);
    await sleep(computeMs);
    return 'hot value';
  },
  { name: 'hot' },
);
// Absorbed errors (a read past backendTimeout while 4 processes start) are counted as fallbacks.
cache.on('error', () => undefined);
const freshForMs: number[] = [];
cache.on('earlyRefresh', (event) => freshForMs.push(event.freshForMs));
const other = cache.wrap(async function warm(n: number) { return n; });

await other(process.pid); // connect
await counter.ping();
send({ type: 'ready' });

process.on('message', (message: { type: string; startAt: number; endAt: number }) => {
  if (message.type !== 'go') return;
  void (async () => {
    const samples: number[] = [];
    let failures = 0;
    const before = cache.stats(); // the counters of the load only (not of the warm-up call)
    const wait = message.startAt - now();
    if (wait > 0) await sleep(wait);
    await Promise.all(
      Array.from({ length: loops }, async () => {
        while (now() < message.endAt) {
          const start = now();
          try {
            if ((await hot()) !== 'hot value') failures++;
          } catch {
            failures++;
          }
          samples.push(start, now() - start);
          if (pauseMs > 0) await sleep(pauseMs);
        }
      }),
    );
    const stats = cache.stats();
    const report: EarlyReport = {
      type: 'done',
      samples,
      failures,
      misses: stats.misses - before.misses,
      lockWaits: stats.lockWaits - before.lockWaits,
      earlyRefreshes: stats.earlyRefreshes - before.earlyRefreshes,
      fallbacks: stats.fallbacks - before.fallbacks,
      freshForMs,
    };
    send(report);
    await cache.close();
    counter.disconnect();
  })();
});
