/**
 * Redis hit throughput: a hit through `wrap` on the RedisBackend (untagged, untagged without
 * write coalescing — `writeBatch: 1` — and with 3 tags) beside raw ioredis GET of the same entry key and a raw EVALSHA of hermes' own read script
 * with the same keys, at concurrency 1 and 64, each on one connection, against a redis-server
 * started on a free loopback port. Figures are medians of interleaved rounds after a warm-up;
 * requests and commands per hit are counted by the server (`INFO commandstats` deltas).
 *
 * `npx tsx scripts/bench/redis.ts` prints the table.
 */
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { Hermes } from '../../src/index.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { redisScripts } from '../../src/backend/redis/scripts.js';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import { fmt, interleavedThroughput } from './measure.js';

/** One row of the Redis table. */
export interface RedisRow {
  /** What was measured. */
  readonly case: string;
  /** Concurrent callers, all on one connection. */
  readonly concurrency: number;
  /** Median calls per second. */
  readonly opsPerSecond: number;
  /** Requests sent to Redis per call (top-level commands: GET or EVALSHA). */
  readonly requestsPerCall: number;
  /** Commands Redis executed per call, those run inside scripts included. */
  readonly commandsPerCall: number;
}

const KEYS = 1000;
const TAGS = ['a', 'b', 'c'];


/** `INFO commandstats` as command → calls, summed over the given servers (a cluster's masters). */
export async function commandCalls(admins: readonly Redis[]): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const admin of admins) {
    const info = await admin.info('commandstats');
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      calls.set(match[1] as string, (calls.get(match[1] as string) ?? 0) + Number(match[2]));
    }
  }
  return calls;
}

/**
 * Requests and commands per call of `run`, counted by the servers (`INFO commandstats` deltas
 * over `sample` sequential calls, summed over `admins`, outside the timed runs). Requests are
 * the top-level commands: EVALSHA (and SCRIPT LOAD, EVAL), or GET for a raw-GET `title`;
 * commands run inside a script count as commands only.
 */
export async function countPerCall(
  admins: readonly Redis[],
  title: string,
  run: (i: number) => Promise<unknown>,
  sample = 500,
): Promise<{ requests: number; commands: number }> {
  await run(0); // connect, load scripts
  const before = await commandCalls(admins);
  for (let i = 0; i < sample; i++) await run(i);
  const after = await commandCalls(admins);
  let requests = 0;
  let commands = 0;
  for (const [command, n] of after) {
    const delta = n - (before.get(command) ?? 0) - (command === 'info' ? admins.length : 0);
    if (delta <= 0) continue;
    commands += delta;
    if (command === 'get' && !title.includes('EVALSHA') && !title.includes('hermes')) requests += delta;
    if (command === 'evalsha' || command === 'script|load' || command === 'eval') requests += delta;
  }
  return { requests: requests / sample, commands: commands / sample };
}

interface Subject {
  run(i: number): Promise<unknown>;
  close(): Promise<void>;
}

type Case = readonly [title: string, make: (port: number) => Subject];

export const payload = (id: number): { id: number; name: string; text: string } => ({ id, name: `user ${id}`, text: 'x'.repeat(60) });

/**
 * Runs the benchmark: `rounds` rounds of `ms` milliseconds per case and concurrency, after a
 * warm-up round, interleaved so that drift hits every case alike.
 */
export async function benchRedis(rounds = 7, ms = 400): Promise<RedisRow[]> {
  const server = await startRedisServer();
  const admin = new Redis(server.port, '127.0.0.1');
  try {
    const options = { host: '127.0.0.1', port: server.port, prefix: 'bench', ttl: 3600 };
    // Fill: 1,000 entries per function and their tag versions, through the cache itself.
    for (const [name, tags] of [['untagged', []], ['tagged', TAGS]] as const) {
      const cache = new Hermes(RedisBackend, options);
      const fn = cache.wrap(async (id: number) => payload(id), { name, tags: [...tags] });
      for (let i = 0; i < KEYS; i++) await fn(i);
      await cache.close();
    }
    const keyOf = (name: string, i: number): string => {
      const fn = new Hermes(undefined, { prefix: 'bench' }).wrap(async (id: number) => id, { name });
      return fn.key(i);
    };
    const untaggedKeys = Array.from({ length: KEYS }, (_, i) => keyOf('untagged', i));
    const taggedKeys = Array.from({ length: KEYS }, (_, i) => keyOf('tagged', i));
    const read = redisScripts().read;
    await admin.script('LOAD', read.source);

    const raw = (run: (client: Redis, i: number) => Promise<unknown>) => (port: number): Subject => {
      const client = new Redis(port, '127.0.0.1');
      return {
        run: (i) => run(client, i),
        close: async () => {
          client.disconnect();
        },
      };
    };
    const evalshaArgs = (keys: readonly string[], i: number, tags: readonly string[]): (string | number)[] => {
      const entryKey = keys[i % KEYS] as string;
      return [read.sha, 2 + tags.length, entryKey, entryKey.replace(':entry:', ':lock:'), ...tags.map((t) => `bench:tag:${t}`), '', 10_000, 'seed', '', ''];
    };
    const wrapCase = (name: string, tags: readonly string[], backendOptions: Record<string, unknown> = {}) => (port: number): Subject => {
      const cache = new Hermes(RedisBackend, { ...options, ...backendOptions, port });
      const fn = cache.wrap(async (id: number) => payload(id), { name, tags: [...tags] });
      return { run: (i) => fn(i % KEYS), close: () => cache.close() };
    };
    const cases: Case[] = [
      ['raw ioredis GET (the entry)', raw((c, i) => c.getBuffer(untaggedKeys[i % KEYS] as string))],
      ['raw EVALSHA read script, untagged', raw((c, i) => c.callBuffer('EVALSHA', evalshaArgs(untaggedKeys, i, [])))],
      ['hermes wrap hit, untagged', wrapCase('untagged', [])],
      ['hermes wrap hit, untagged, writeBatch 1', wrapCase('untagged', [], { writeBatch: 1 })],
      ['raw EVALSHA read script, 3 tags', raw((c, i) => c.callBuffer('EVALSHA', evalshaArgs(taggedKeys, i, TAGS)))],
      ['hermes wrap hit, 3 tags', wrapCase('tagged', TAGS)],
    ];

    // Requests and commands per call, counted by the server outside the timed runs.
    const counts = new Map<string, { requests: number; commands: number }>();
    for (const [title, make] of cases) {
      const subject = make(server.port);
      counts.set(title, await countPerCall([admin], title, (i) => subject.run(i)));
      await subject.close();
    }

    const rows: RedisRow[] = [];
    for (const concurrency of [1, 64]) {
      const subjects = cases.map(([title, make]) => ({ title, subject: make(server.port) }));
      const medians = await interleavedThroughput(subjects.map((s) => (i: number) => s.subject.run(i)), concurrency, ms, rounds);
      for (const [index, s] of subjects.entries()) {
        const count = counts.get(s.title);
        rows.push({
          case: s.title,
          concurrency,
          opsPerSecond: medians[index] ?? NaN,
          requestsPerCall: count?.requests ?? NaN,
          commandsPerCall: count?.commands ?? NaN,
        });
        await s.subject.close();
      }
    }
    return rows;
  } finally {
    admin.disconnect();
    await server.stop();
  }
}

/** The rows as a markdown table; each row also as a share of the comparable raw EVALSHA. */
export function formatRedisTable(rows: readonly RedisRow[]): string {
  const lines = [
    '| case | concurrency | hits/s | requests per hit | commands per hit | % of raw EVALSHA | % of raw GET |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    const tagged = row.case.includes('3 tags');
    const evalsha = rows.find((r) => r.concurrency === row.concurrency && r.case === `raw EVALSHA read script, ${tagged ? '3 tags' : 'untagged'}`);
    const get = rows.find((r) => r.concurrency === row.concurrency && r.case.startsWith('raw ioredis GET'));
    const share = (base: RedisRow | undefined): string => (base ? `${fmt((100 * row.opsPerSecond) / base.opsPerSecond)}%` : '');
    lines.push(
      `| ${row.case} | ${row.concurrency} | ${fmt(row.opsPerSecond)} | ${fmt(row.requestsPerCall, 2)} | ${fmt(row.commandsPerCall, 1)} | ${share(evalsha)} | ${share(get)} |`,
    );
  }
  return lines.join('\n');
}

/** One line per target: the wrap hit against the raw EVALSHA of the same script (≥ 85%). */
export function redisVerdicts(rows: readonly RedisRow[]): string[] {
  return rows
    .filter((r) => r.case.startsWith('hermes'))
    .map((row) => {
      const tagged = row.case.includes('3 tags');
      const base = rows.find((r) => r.concurrency === row.concurrency && r.case === `raw EVALSHA read script, ${tagged ? '3 tags' : 'untagged'}`);
      const share = base ? row.opsPerSecond / base.opsPerSecond : 0;
      return `${row.case} at concurrency ${row.concurrency}: ${(share * 100).toFixed(0)}% of raw EVALSHA — ${share >= 0.85 ? 'met' : 'NOT met'}`;
    });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log('## Redis hit throughput (RedisBackend through ioredis, one connection, loopback)\n');
  console.log(
    `command: npx tsx scripts/bench/redis.ts · node ${process.version} · ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} · ${new Date().toISOString()}\n`,
  );
  const rows = await benchRedis();
  console.log(formatRedisTable(rows));
  console.log(`\nTarget: ${redisVerdicts(rows).join('; ')}.`);
}
