/**
 * `npm run bench -- tick`: tick batching (the `batch` option) with and without the near-cache.
 * Four caches share one redis-server, each its own `RedisBackend` and prefix: `batch` on and off,
 * `nearCache` on and off. Each misses at concurrency 64 (fresh keys: a read, the function, a
 * write) in interleaved rounds; per cache the median misses per second, and, summed over its
 * rounds, the server's time in scripts per miss (`INFO commandstats`, EVALSHA and EVAL) and the
 * script calls per miss. Built package or not, the four run the same code: compare them as
 * ratios within the run. Then what building one script call costs in ioredis, with its
 * arguments given to the `Command` constructor (which flattens them with
 * `Array.prototype.flat`) and as `script-caller.ts` builds it (empty, then the arguments).
 */

import { Command, Redis } from 'ioredis';
import { Hermes } from '../../src/index.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import { fmt, median, throughput } from './measure.js';

const ROUNDS = 12;
const ROUND_MS = 250;
const CONCURRENCY = 64;

/** One configuration under test, with what its rounds measured. */
interface Subject {
  readonly name: string;
  readonly call: (n: number) => Promise<unknown>;
  readonly close: () => Promise<void>;
  readonly perSecond: number[];
  misses: number;
  scriptUsec: number;
  scriptCalls: number;
}

/** Calls and microseconds of EVALSHA + EVAL so far. */
async function scriptStats(admin: Redis): Promise<{ calls: number; usec: number }> {
  const stats = await admin.info('commandstats');
  let calls = 0;
  let usec = 0;
  for (const [, count, time] of stats.matchAll(/^cmdstat_eval(?:sha)?:calls=(\d+),usec=(\d+)/gm)) {
    calls += Number(count);
    usec += Number(time);
  }
  return { calls, usec };
}

/** Nanoseconds to build one EVALSHA `Command` of `args`, the two ways, median of 5 runs of 2,000. */
function commandBuildNs(args: readonly string[]): { flattened: number; given: number } {
  const time = (build: () => Command): number => {
    const runs: number[] = [];
    for (let run = 0; run < 5; run++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 2000; i++) build().promise.catch(() => undefined);
      runs.push(Number(process.hrtime.bigint() - start) / 2000);
    }
    return median(runs);
  };
  const flattened = time(() => new Command('evalsha', [...args], { replyEncoding: null }));
  const given = time(() => {
    const command = new Command('evalsha', [], { replyEncoding: null });
    command.args = [...args];
    command.stringifyArguments();
    return command;
  });
  return { flattened, given };
}

/** Runs the section and prints its tables. */
export async function printTickBench(): Promise<void> {
  const server = await startRedisServer();
  const admin = new Redis({ host: server.host, port: server.port });
  const subjects: Subject[] = [];
  try {
    for (const [name, options] of [
      ['batch (default)', {}],
      ['batch: false', { batch: false }],
      ['nearCache (batch off by default)', { nearCache: true }],
      ['nearCache, batch: true', { nearCache: true, batch: true }],
    ] as const) {
      const cache = new Hermes(RedisBackend, { host: server.host, port: server.port, prefix: `tick${subjects.length}`, ttl: 3600, ...options });
      const f = cache.wrap(async (n: number) => `value ${n} `.padEnd(100, '.'), { name: 'f' });
      subjects.push({ name, call: f, close: () => cache.close(), perSecond: [], misses: 0, scriptUsec: 0, scriptCalls: 0 });
    }
    let key = 0;
    for (const subject of subjects) await throughput(CONCURRENCY, ROUND_MS, () => subject.call(key++));
    for (let round = 0; round < ROUNDS; round++) {
      for (const subject of subjects) {
        const before = await scriptStats(admin);
        let misses = 0;
        subject.perSecond.push(
          await throughput(CONCURRENCY, ROUND_MS, () => {
            misses++;
            return subject.call(key++);
          }),
        );
        const after = await scriptStats(admin);
        subject.misses += misses;
        subject.scriptUsec += after.usec - before.usec;
        subject.scriptCalls += after.calls - before.calls;
      }
    }
  } finally {
    for (const subject of subjects) await subject.close();
    admin.disconnect();
    await server.stop();
  }
  console.log(`## Tick batching: misses at concurrency ${CONCURRENCY}, with and without the near-cache\n`);
  console.log(`Median of ${ROUNDS} interleaved rounds of ${ROUND_MS} ms; server script time and script calls summed over the rounds.\n`);
  console.log('| cache | misses per second | server time in scripts per miss (µs) | script calls per miss |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const s of subjects) {
    console.log(`| ${s.name} | ${fmt(median(s.perSecond))} | ${fmt(s.scriptUsec / s.misses, 1)} | ${fmt(s.scriptCalls / s.misses, 2)} |`);
  }
  console.log('');
  console.log('Building one EVALSHA command in ioredis (ns, median of 5 runs of 2,000), arguments given to the constructor (flattened) or set after it (as hermes does):\n');
  console.log('| arguments | flattened by the constructor | set after it | flattening per argument |');
  console.log('| ---: | ---: | ---: | ---: |');
  for (const count of [9, 230]) {
    const args = Array.from({ length: count }, (_, i) => `hermes:entry:f:${i.toString(16).padStart(16, '0')}`);
    const { flattened, given } = commandBuildNs(args);
    console.log(`| ${count} | ${fmt(flattened)} | ${fmt(given)} | ${fmt((flattened - given) / count)} |`);
  }
  console.log('');
}
