/**
 * Batches: `wrapped.many(argsList)` of 100 keys, 10 of them missing (invalidated just before
 * each batch), on a redis-server started on a free loopback port. For each way of reading the
 * batch: the calls of the function, the requests Redis received (top-level commands, from
 * `INFO commandstats` deltas) and the commands it executed (those run inside scripts
 * included), and the median time of a batch.
 *
 * - `many()`, one script call: the default, `readMany.lua` reads the 100 entries in one call;
 * - `many()`, pipeline of `read.lua`: the same core with the backend's `readMany` hidden, so
 *   the core sends one `read.lua` EVALSHA per entry, all in one tick (written together);
 * - 100 calls at once: `Promise.all(ids.map((id) => fn(id)))`;
 * - 100 calls one by one: `for (const id of ids) await fn(id)`.
 *
 * Below, the raw cost of the two read forms without the cache: one ioredis pipeline of 100
 * `read.lua` EVALSHAs against one EVALSHA of `readMany.lua`, all hits.
 *
 * `npm run bench -- batch` prints the tables.
 */
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { Hermes } from '../../src/index.js';
import type { CachedFunction } from '../../src/decorate.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { redisScripts } from '../../src/backend/redis/scripts.js';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import { fmt, median } from './measure.js';
import { commandCalls, payload } from './redis.js';

const KEYS = 100;
const MISSES = 10;
const TAGS = ['a', 'b', 'c'];

/** One row of the batch table. */
export interface BatchRow {
  readonly case: string;
  /** Calls of the function per batch. */
  readonly calls: number;
  /** Requests Redis received per batch (EVALSHA / EVAL, the invalidations excluded). */
  readonly requests: number;
  /** Commands Redis executed per batch, inside scripts included. */
  readonly commands: number;
  /** Median time of a batch, ms. */
  readonly ms: number;
}

type Batch = (fn: CachedFunction<[number], unknown>, ids: number[]) => Promise<unknown>;

const CASES: readonly (readonly [string, Batch, { pipeline?: boolean }])[] = [
  ['`many()`, one `readMany.lua` call', (fn, ids) => fn.many(ids.map((id) => [id])), {}],
  ['`many()`, pipeline of 100 `read.lua`', (fn, ids) => fn.many(ids.map((id) => [id])), { pipeline: true }],
  ['100 calls at once (`Promise.all`)', (fn, ids) => Promise.all(ids.map((id) => fn(id))), {}],
  ['100 calls one by one', async (fn, ids) => {
    for (const id of ids) await fn(id);
  }, {}],
];

/** Runs the batch benchmark: `rounds` batches per case, interleaved. */
export async function benchBatch(rounds = 41): Promise<{ rows: BatchRow[]; raw: BatchRow[] }> {
  const server = await startRedisServer();
  const admin = new Redis(server.port, '127.0.0.1');
  const caches: Hermes<object>[] = [];
  try {
    const subjects = CASES.map(([title, batch, { pipeline }], c) => {
      const cache = new Hermes(RedisBackend, { host: '127.0.0.1', port: server.port, prefix: `batch${c}`, ttl: 3600 });
      caches.push(cache);
      if (pipeline === true) Object.defineProperty(cache.backend, 'readMany', { value: undefined });
      let calls = 0;
      const fn = cache.wrap(async (id: number) => {
        calls++;
        return payload(id);
      }, { name: 'user', tags: TAGS });
      return { title, batch, fn, calls: () => calls };
    });
    const ids = Array.from({ length: KEYS }, (_, i) => i);
    for (const s of subjects) await s.batch(s.fn, ids); // fill, load the scripts
    const times = subjects.map(() => [] as number[]);
    const counts = subjects.map(() => ({ calls: 0, requests: 0, commands: 0 }));
    for (let round = 0; round < rounds; round++) {
      for (let c = 0; c < subjects.length; c++) {
        const s = subjects[c] as (typeof subjects)[number];
        // 10% misses: a different tenth each round.
        for (let k = 0; k < MISSES; k++) await s.fn.invalidate((round * MISSES + k) % KEYS);
        const counted = round < 5;
        const before = counted ? await commandCalls([admin]) : undefined;
        const callsBefore = s.calls();
        const started = process.hrtime.bigint();
        await s.batch(s.fn, ids);
        const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
        (times[c] as number[]).push(elapsed);
        const count = counts[c] as { calls: number; requests: number; commands: number };
        if (before !== undefined) {
          const delta = requestsAndCommands(before, await commandCalls([admin]));
          count.calls += s.calls() - callsBefore;
          count.requests += delta.requests;
          count.commands += delta.commands;
        }
      }
    }
    const rows = subjects.map((s, c): BatchRow => {
      const count = counts[c] as { calls: number; requests: number; commands: number };
      return { case: s.title, calls: count.calls / 5, requests: count.requests / 5, commands: count.commands / 5, ms: median(times[c] as number[]) };
    });
    return { rows, raw: await rawReads(admin, server.port, rounds) };
  } finally {
    for (const cache of caches) await cache.close();
    admin.disconnect();
    await server.stop();
  }
}

/** Raw: an ioredis pipeline of 100 `read.lua` vs one `readMany.lua`, all hits, without the cache. */
async function rawReads(admin: Redis, port: number, rounds: number): Promise<BatchRow[]> {
  const client = new Redis(port, '127.0.0.1');
  try {
    const { read, readMany } = redisScripts();
    await client.script('LOAD', read.source);
    await client.script('LOAD', readMany.source);
    // The entries and tags filled by the first case, prefix batch0.
    const keyCache = new Hermes(undefined, { prefix: 'batch0' });
    const keyFn = keyCache.wrap(async (id: number) => id, { name: 'user' });
    const entryKeys = Array.from({ length: KEYS }, (_, i) => keyFn.key(i));
    const lockKeys = entryKeys.map((key) => key.replace(':entry:', ':lock:'));
    const tagKeys = TAGS.map((tag) => keyCache.keyspace.tagKey(tag));
    const pipelined = async (): Promise<void> => {
      const pipeline = client.pipeline();
      for (let i = 0; i < KEYS; i++) {
        pipeline.evalsha(read.sha, 2 + tagKeys.length, entryKeys[i] as string, lockKeys[i] as string, ...tagKeys, 'tok', 5000, 'seed');
      }
      await pipeline.exec();
    };
    const manyKeys: string[] = [];
    const manyArgv: (string | number)[] = [KEYS, 'seed'];
    for (let i = 0; i < KEYS; i++) {
      manyKeys.push(entryKeys[i] as string, lockKeys[i] as string);
      manyArgv.push('tok', 5000, tagKeys.length, ...tagKeys.map((_, t) => t + 1));
    }
    manyKeys.push(...tagKeys);
    const oneCall = async (): Promise<void> => {
      await client.evalsha(readMany.sha, manyKeys.length, ...manyKeys, ...manyArgv);
    };
    const subjects = [
      ['raw pipeline of 100 `read.lua` (hits)', pipelined],
      ['raw one `readMany.lua` of 100 (hits)', oneCall],
    ] as const;
    const times = subjects.map(() => [] as number[]);
    const counted = subjects.map(() => ({ requests: 0, commands: 0 }));
    for (let round = 0; round < rounds * 5; round++) {
      for (let c = 0; c < subjects.length; c++) {
        const before = round < 5 ? await commandCalls([admin]) : undefined;
        const started = process.hrtime.bigint();
        await subjects[c]?.[1]();
        (times[c] as number[]).push(Number(process.hrtime.bigint() - started) / 1e6);
        if (before !== undefined) {
          const delta = requestsAndCommands(before, await commandCalls([admin]));
          (counted[c] as { requests: number }).requests += delta.requests;
          (counted[c] as { commands: number }).commands += delta.commands;
        }
      }
    }
    return subjects.map(([title], c) => ({
      case: title,
      calls: 0,
      requests: (counted[c] as { requests: number }).requests / 5,
      commands: (counted[c] as { commands: number }).commands / 5,
      ms: median(times[c] as number[]),
    }));
  } finally {
    client.disconnect();
  }
}

/** Requests (top-level EVALSHA / EVAL / SCRIPT LOAD) and commands between two `INFO commandstats`. */
function requestsAndCommands(before: Map<string, number>, after: Map<string, number>): { requests: number; commands: number } {
  let requests = 0;
  let commands = 0;
  for (const [command, n] of after) {
    const delta = n - (before.get(command) ?? 0) - (command === 'info' ? 1 : 0);
    if (delta <= 0) continue;
    commands += delta;
    if (command === 'evalsha' || command === 'eval' || command === 'script|load') requests += delta;
  }
  return { requests, commands };
}

/** The tables, as markdown. */
export function formatBatchTables({ rows, raw }: { rows: BatchRow[]; raw: BatchRow[] }): string {
  const lines = [
    `${KEYS} keys with ${MISSES} misses per batch (3 tags), one redis-server on loopback; calls, requests and commands per batch, median time per batch.\n`,
    '| case | calls of the function | requests | commands run by Redis | ms per batch |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows.map((r) => `| ${r.case} | ${fmt(r.calls)} | ${fmt(r.requests)} | ${fmt(r.commands)} | ${fmt(r.ms, 2)} |`),
    '',
    'The two read forms alone, without the cache (all hits):\n',
    '| case | requests | commands run by Redis | ms per batch |',
    '| --- | ---: | ---: | ---: |',
    ...raw.map((r) => `| ${r.case} | ${fmt(r.requests)} | ${fmt(r.commands)} | ${fmt(r.ms, 3)} |`),
  ];
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(formatBatchTables(await benchBatch()));
}
