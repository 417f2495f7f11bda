/**
 * Memcached hit throughput: a hit through `wrap` on the MemcachedBackend (untagged and with 3
 * tags) beside the client's own raw single get and raw multi-get of the same keys (the entry
 * and 3 tag keys), at concurrency 1 and 64, against a memcached started on a free loopback
 * port. Figures are medians of interleaved rounds after a warm-up; requests per hit are counted
 * on the wire by a proxy that parses the protocol.
 *
 * `npx tsx scripts/bench/memcached.ts` prints the table.
 */
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { MemcacheClient } from 'memcache-client';
import { Hermes } from '../../src/index.js';
import { MemcachedBackend } from '../../src/backend/memcached/index.js';
import { startMemcached } from '../../test/helpers/memcached-server.js';
import { startCountingProxy } from '../../test/memcached/counting-proxy.js';
import { fmt, interleavedThroughput } from './measure.js';

/** One row of the Memcached table. */
export interface MemcachedRow {
  /** What was measured. */
  readonly case: string;
  /** Concurrent callers. */
  readonly concurrency: number;
  /** Median calls per second. */
  readonly opsPerSecond: number;
  /** Requests sent to memcached per call, counted on the wire. */
  readonly requestsPerCall: number;
}

const KEYS = 1000;


type Case = readonly [title: string, call: (port: number) => { run(i: number): Promise<unknown>; close(): Promise<void> }];

/**
 * Runs the benchmark: `rounds` rounds of `ms` milliseconds per case and concurrency, after one
 * warm-up round, interleaved so that drift hits every case alike.
 */
export async function benchMemcached(rounds = 7, ms = 400): Promise<MemcachedRow[]> {
  const server = await startMemcached();
  try {
    // Fill: 1,000 entries per function and their tag versions, through the cache itself.
    const fill = async (port: number, tags: string[], name: string): Promise<void> => {
      const backend = new MemcachedBackend({ servers: `127.0.0.1:${port}` });
      const cache = new Hermes(backend, { prefix: 'bench', ttl: 3600 });
      const fn = cache.wrap(async (id: number) => ({ id, name: `user ${id}` }), { tags, name });
      for (let i = 0; i < KEYS; i++) await fn(i);
      await backend.close();
    };
    await fill(server.port, [], 'untagged');
    await fill(server.port, ['a', 'b', 'c'], 'tagged');
    const rawKeys = Array.from({ length: KEYS }, (_, i) => {
      const cache = new Hermes(undefined, { prefix: 'bench' });
      const fn = cache.wrap(async (id: number) => id, { name: 'tagged' });
      return [fn.key(i), 'bench:tag:a', 'bench:tag:b', 'bench:tag:c'];
    });

    const rawClient = (port: number): MemcacheClient =>
      new MemcacheClient({ server: { server: `127.0.0.1:${port}`, maxConnections: 1 }, noDelay: true, cmdTimeout: 5000 });
    const wrapCase = (tags: string[], name: string) => (port: number) => {
      const backend = new MemcachedBackend({ servers: `127.0.0.1:${port}`, timeout: 5000 });
      const cache = new Hermes(backend, { prefix: 'bench', ttl: 3600 });
      const fn = cache.wrap(async (id: number) => ({ id, name: `user ${id}` }), { tags, name });
      return { run: (i: number) => fn(i % KEYS), close: () => backend.close() };
    };
    const cases: Case[] = [
      [
        'raw client: single get (the entry)',
        (port) => {
          const client = rawClient(port);
          return { run: (i) => client.get((rawKeys[i % KEYS] as string[])[0] as string), close: async () => { client.shutdown(); } };
        },
      ],
      [
        'raw client: multi-get (entry + 3 tag keys)',
        (port) => {
          const client = rawClient(port);
          return { run: (i) => client.get(rawKeys[i % KEYS] as string[]), close: async () => { client.shutdown(); } };
        },
      ],
      ['hermes wrap hit, untagged', wrapCase([], 'untagged')],
      ['hermes wrap hit, 3 tags', wrapCase(['a', 'b', 'c'], 'tagged')],
    ];

    // Requests per call, counted on the wire (through a proxy, outside the timed runs).
    const proxy = await startCountingProxy(server.port);
    const requests = new Map<string, number>();
    for (const [title, make] of cases) {
      const subject = make(proxy.port);
      await subject.run(0); // connect
      proxy.reset();
      for (let i = 0; i < 200; i++) await subject.run(i);
      requests.set(title, proxy.total() / 200);
      await subject.close();
    }
    await proxy.close();

    const rows: MemcachedRow[] = [];
    for (const concurrency of [1, 64]) {
      const subjects = cases.map(([title, make]) => ({ title, subject: make(server.port) }));
      const medians = await interleavedThroughput(subjects.map((s) => (i: number) => s.subject.run(i)), concurrency, ms, rounds);
      for (const [index, s] of subjects.entries()) {
        rows.push({ case: s.title, concurrency, opsPerSecond: medians[index] ?? NaN, requestsPerCall: requests.get(s.title) ?? NaN });
        await s.subject.close();
      }
    }
    return rows;
  } finally {
    await server.stop();
  }
}

/** Prints the rows as a markdown table, with each wrap row as a share of the raw multi-get. */
export function formatMemcachedTable(rows: readonly MemcachedRow[]): string {
  const lines = ['| case | concurrency | hits/s | requests per call | % of raw multi-get |', '| --- | ---: | ---: | ---: | ---: |'];
  for (const row of rows) {
    const raw = rows.find((r) => r.concurrency === row.concurrency && r.case.startsWith('raw client: multi-get'));
    const share = raw ? `${fmt((100 * row.opsPerSecond) / raw.opsPerSecond)}%` : '';
    lines.push(`| ${row.case} | ${row.concurrency} | ${fmt(row.opsPerSecond)} | ${fmt(row.requestsPerCall, 2)} | ${share} |`);
  }
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log('## Memcached hit throughput (MemcachedBackend through memcache-client, loopback)\n');
  console.log(
    `command: npx tsx scripts/bench/memcached.ts · node ${process.version} · ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} · ${new Date().toISOString()}\n`,
  );
  const rows = await benchMemcached();
  console.log(formatMemcachedTable(rows));
  const target = rows.filter((r) => r.case.startsWith('hermes'));
  const verdicts = target.map((row) => {
    const raw = rows.find((r) => r.concurrency === row.concurrency && r.case.startsWith('raw client: multi-get'));
    const share = raw ? row.opsPerSecond / raw.opsPerSecond : 0;
    return `${row.case} at ${row.concurrency}: ${(share * 100).toFixed(0)}% ${share >= 0.85 ? 'met' : 'NOT met'}`;
  });
  console.log(`\nTarget: a wrap hit at least 85% of the raw multi-get — ${verdicts.join('; ')}.`);
}
