/**
 * Redis Cluster benchmarks, against a 3-master cluster and a standalone redis-server started on
 * free loopback ports (both stopped at the end):
 *
 * 1. **Hits**: a hit through `wrap` (untagged and with 3 tags) beside a raw ioredis GET of the
 *    same stored entry key and a raw EVALSHA of hermes' read script with the same keys, on the
 *    standalone server and on the cluster (default 64 buckets), interleaved in one measurement
 *    per concurrency so that the cluster's figures read as shares of the single node's.
 * 2. **Buckets**: for each bucket count, `clean(['t1'])` latency (median and p99 of many calls,
 *    the tag's copy restored in every bucket before each call, outside the timing), the socket
 *    reads and UNLINK commands each master gets per clean (server counters: `INFO stats`
 *    `total_reads_processed`, `INFO commandstats`), how 10,000 entries spread over the masters
 *    (counted per master with SCAN), and the 3-tag hit throughput at concurrency 64.
 *
 * On a small machine the cluster's servers share the cores with the client: the cluster figures
 * show what spreading the keys over masters costs or saves per call, not what more machines add.
 *
 * `npx tsx scripts/bench/cluster.ts` prints the tables (`npm run bench -- cluster` too) and writes
 * them to `bench/cluster-results.md`, with the chart `bench/cluster.svg` (from
 * `bench/cluster-data.json`; `npx tsx scripts/bench/cluster-chart.ts` redraws it).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { Cluster, Redis } from 'ioredis';
import { Hermes } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/backend/redis/index.js';
import { slotOf } from '../../src/backend/redis/buckets.js';
import { redisScripts } from '../../src/backend/redis/scripts.js';
import { startRedisCluster, storedKeyOf } from '../../test/helpers/redis-cluster.js';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import { fmt, interleavedThroughput, median, percentile } from './measure.js';
import { countPerCall, payload } from './redis.js';
import { renderClusterChart, type ClusterChartData } from './cluster-chart.js';
import { machineLine } from './vega.js';

const MASTERS = 3;
const KEYS = 1000;
const TAGS = ['a', 'b', 'c'];
const SINGLE = 'single node';
const CLUSTER = `${MASTERS}-master cluster`;
/** RedisBackend's default bucket count on a cluster, the one the hits are measured with. */
const DEFAULT_BUCKETS = 64;
const NO_COALESCING = 'hermes wrap hit, 3 tags, writeBatch 1 (no write coalescing)';

/** One row of the hit table. */
export interface ClusterHitRow {
  /** What was measured. */
  readonly case: string;
  /** `single node` or the cluster. */
  readonly server: string;
  /** Concurrent callers, on one client (one connection per node). */
  readonly concurrency: number;
  /** Median calls per second. */
  readonly opsPerSecond: number;
  /** Requests sent per call (top-level commands, all masters together). */
  readonly requestsPerCall: number;
  /** Commands the servers executed per call, those run inside scripts included. */
  readonly commandsPerCall: number;
}

/** One row of the bucket table. */
export interface BucketRow {
  readonly buckets: number;
  /** Buckets whose slot each master holds. */
  readonly bucketsPerMaster: readonly number[];
  /** Entries stored on each master, of {@link BucketBench.entries}. */
  readonly entriesPerMaster: readonly number[];
  /** `clean(['t1'])` latency, ms. */
  readonly cleanMedianMs: number;
  readonly cleanP99Ms: number;
  /** Socket reads (request writes the server read) each master got per clean. */
  readonly readsPerMaster: readonly number[];
  /** UNLINK commands each master ran per clean. */
  readonly unlinksPerMaster: readonly number[];
  /** Median 3-tag hits per second at concurrency 64. */
  readonly hitsPerSecond: number;
}

/** The bucket measurements and what they were measured with. */
export interface BucketBench {
  readonly entries: number;
  readonly cleans: number;
  readonly rows: readonly BucketRow[];
}

/** Where the hits are measured: a standalone server or the cluster. */
interface Target {
  readonly server: string;
  readonly options: RedisBackendOptions;
  /** One plain connection per master, for counters and script loading. */
  readonly admins: readonly Redis[];
  /** A new raw ioredis client of the target. */
  raw(): Redis | Cluster;
}

interface Subject {
  readonly case: string;
  readonly target: Target;
  run(i: number): Promise<unknown>;
  close(): Promise<void>;
}

/** `INFO all` counters of one server: total socket reads and UNLINK calls. */
async function counters(admin: Redis): Promise<{ reads: number; unlinks: number }> {
  const info = await admin.info('all');
  const reads = Number(/^total_reads_processed:(\d+)/m.exec(info)?.[1] ?? NaN);
  const unlinks = Number(/^cmdstat_unlink:calls=(\d+)/m.exec(info)?.[1] ?? 0);
  return { reads, unlinks };
}

/** Fills `count` entries through `fn`, `concurrency` at a time. */
async function fill(fn: (id: number) => Promise<unknown>, count: number, concurrency = 64): Promise<void> {
  for (let start = 0; start < count; start += concurrency) {
    await Promise.all(Array.from({ length: Math.min(concurrency, count - start) }, (_, j) => fn(start + j)));
  }
}

/** The master (index into `ports`) holding each slot-keyed item, from the cluster client's slot map. */
function masterOf(cluster: Cluster, ports: readonly number[], key: string): number {
  const node = cluster.slots[slotOf(key)]?.[0] ?? '';
  return ports.findIndex((port) => node.endsWith(`:${port}`));
}

/** The hit subjects of one target: raw GET, raw EVALSHA and wrap, untagged and with 3 tags. */
async function hitSubjects(target: Target): Promise<Subject[]> {
  const options = { ...target.options, prefix: 'bench', ttl: 3600 };
  const mapper = new RedisBackend(target.options); // never connects: maps keys to stored keys
  const names = new Hermes(undefined, { prefix: 'bench' });
  const storedKeys = (name: string, tags: readonly string[]): string[][] => {
    const fn = names.wrap(async (id: number) => id, { name });
    return Array.from({ length: KEYS }, (_, i) => {
      const entry = fn.key(i);
      return [entry, entry.replace(':entry:', ':lock:'), ...tags.map((t) => `bench:tag:${t}`)].map((key) => storedKeyOf(mapper, key, entry));
    });
  };
  const keySets = { untagged: storedKeys('untagged', []), tagged: storedKeys('tagged', TAGS) };
  await mapper.close();
  const read = redisScripts().read;
  for (const admin of target.admins) await admin.script('LOAD', read.source);
  const raw = (title: string, run: (client: Redis | Cluster, i: number) => Promise<unknown>): Subject => {
    const client = target.raw();
    return { case: title, target, run: (i) => run(client, i), close: async () => { client.disconnect(); } };
  };
  const evalsha = (keys: readonly string[]): (string | number)[] => [read.sha, keys.length, ...keys, '', 10_000, 'seed'];
  const wrap = (title: string, name: 'untagged' | 'tagged', tags: readonly string[], writeBatch?: number): Subject => {
    const cache = new Hermes(RedisBackend, writeBatch === undefined ? options : { ...options, writeBatch });
    const fn = cache.wrap(async (id: number) => payload(id), { name, tags: [...tags] });
    return { case: title, target, run: (i) => fn(i % KEYS), close: () => cache.close() };
  };
  return [
    raw('raw ioredis GET (the entry)', (c, i) => c.getBuffer(keySets.untagged[i % KEYS]?.[0] as string)),
    raw('raw EVALSHA read script, untagged', (c, i) => c.callBuffer('EVALSHA', evalsha(keySets.untagged[i % KEYS] as string[]))),
    wrap('hermes wrap hit, untagged', 'untagged', []),
    raw('raw EVALSHA read script, 3 tags', (c, i) => c.callBuffer('EVALSHA', evalsha(keySets.tagged[i % KEYS] as string[]))),
    wrap('hermes wrap hit, 3 tags', 'tagged', TAGS),
    // The backend coalesces the socket writes of one tick (on every master of a cluster): the
    // same hit without it, for reference.
    wrap(NO_COALESCING, 'tagged', TAGS, 1),
  ];
}

/**
 * Hits on a standalone server and on a cluster with `nodes`, interleaved per concurrency.
 */
async function benchHits(nodes: ReadonlyArray<{ host: string; port: number }>, concurrencies: readonly number[], rounds: number, ms: number): Promise<ClusterHitRow[]> {
  const server = await startRedisServer();
  const targets: Target[] = [
    { server: SINGLE, options: { host: '127.0.0.1', port: server.port }, admins: [new Redis(server.port, '127.0.0.1')], raw: () => new Redis(server.port, '127.0.0.1') },
    { server: CLUSTER, options: { cluster: [...nodes] }, admins: nodes.map((n) => new Redis(n.port, n.host)), raw: () => new Cluster([...nodes]) },
  ];
  try {
    for (const target of targets) {
      const cache = new Hermes(RedisBackend, { ...target.options, prefix: 'bench', ttl: 3600 });
      for (const [name, tags] of [['untagged', []], ['tagged', TAGS]] as const) {
        const fn = cache.wrap(async (id: number) => payload(id), { name, tags: [...tags] });
        await fill(fn, KEYS);
      }
      await cache.close();
    }
    const counts = new Map<string, { requests: number; commands: number }>();
    for (const target of targets) {
      for (const subject of await hitSubjects(target)) {
        // A raw GET miss replies null, a read-script miss an array: every subject must hit.
        const reply = await subject.run(1);
        if (reply === null || reply === undefined || Array.isArray(reply)) throw new Error(`${subject.case} on ${target.server}: not a hit`);
        counts.set(`${subject.case}|${target.server}`, await countPerCall(target.admins, subject.case, (i) => subject.run(i)));
        await subject.close();
      }
    }
    const rows: ClusterHitRow[] = [];
    for (const concurrency of concurrencies) {
      const subjects = (await Promise.all(targets.map(hitSubjects))).flat();
      const medians = await interleavedThroughput(subjects.map((s) => (i: number) => s.run(i)), concurrency, ms, rounds);
      for (const [index, s] of subjects.entries()) {
        const count = counts.get(`${s.case}|${s.target.server}`);
        rows.push({
          case: s.case,
          server: s.target.server,
          concurrency,
          opsPerSecond: medians[index] ?? NaN,
          requestsPerCall: count?.requests ?? NaN,
          commandsPerCall: count?.commands ?? NaN,
        });
        await s.close();
      }
    }
    return rows;
  } finally {
    for (const target of targets) for (const admin of target.admins) admin.disconnect();
    await server.stop();
  }
}

/** The bucket measurements on the cluster with `nodes`, for each bucket count. */
async function benchBuckets(
  nodes: ReadonlyArray<{ host: string; port: number }>,
  bucketCounts: readonly number[],
  entries: number,
  cleans: number,
  rounds: number,
  ms: number,
): Promise<BucketBench> {
  const admins = nodes.map((n) => new Redis(n.port, n.host));
  const ports = nodes.map((n) => n.port);
  const setups = bucketCounts.map((buckets) => {
    const prefix = `b${buckets}`;
    const cache = new Hermes(RedisBackend, { cluster: [...nodes], buckets, prefix, ttl: 3600 });
    const fn = cache.wrap(async (id: number) => payload(id), { name: 'spread', tags: ['t1', 't2', 't3'] });
    const backend = cache.backend;
    if (!(backend instanceof RedisBackend)) throw new Error('expected a RedisBackend');
    return { buckets, prefix, cache, fn, backend };
  });
  try {
    const rows: BucketRow[] = [];
    for (const s of setups) await fill(s.fn, entries);
    // Spread: buckets and entries per master.
    const layouts = setups.map((s) => {
      const client = s.backend.client as Cluster;
      const layout = s.backend.buckets;
      if (layout === undefined) throw new Error('the backend is not on a cluster');
      const kindEnd = `${s.prefix}:tag:`.length;
      const copies = Array.from({ length: layout.count }, (_, b) => layout.place(`${s.prefix}:tag:t1`, kindEnd, b));
      const copiesByMaster = admins.map(() => [] as string[]);
      for (const key of copies) copiesByMaster[masterOf(client, ports, key)]?.push(key);
      return { copiesByMaster, bucketsPerMaster: copiesByMaster.map((keys) => keys.length) };
    });
    const entriesPerMaster = await Promise.all(
      setups.map((s) =>
        Promise.all(
          admins.map(async (admin) => {
            let cursor = '0';
            let count = 0;
            do {
              const [next, keys] = await admin.scan(cursor, 'MATCH', `${s.prefix}:entry:*`, 'COUNT', 1000);
              cursor = next;
              count += keys.length;
            } while (cursor !== '0');
            return count;
          }),
        ),
      ),
    );
    // Hits at concurrency 64, before any clean (a clean turns them into misses).
    const hits = await interleavedThroughput(setups.map((s) => (i: number) => s.fn(i % entries)), 64, ms, rounds);
    // Requests and UNLINKs per master per clean, from the servers' counters.
    const SAMPLE = 20;
    const perMaster: Array<{ reads: number[]; unlinks: number[] }> = [];
    for (const s of setups) {
      await s.cache.clean(['t1']); // connected, slots known
      const before = await Promise.all(admins.map(counters));
      for (let k = 0; k < SAMPLE; k++) await s.cache.clean(['t1']);
      const after = await Promise.all(admins.map(counters));
      perMaster.push({
        // The reading of the second INFO itself is counted once.
        reads: admins.map((_, m) => ((after[m]?.reads ?? NaN) - (before[m]?.reads ?? NaN) - 1) / SAMPLE),
        unlinks: admins.map((_, m) => ((after[m]?.unlinks ?? NaN) - (before[m]?.unlinks ?? NaN)) / SAMPLE),
      });
    }
    // Latency: the copies of t1 restored in every bucket (untimed), then one timed clean;
    // the bucket counts interleaved, call by call, after a warm-up.
    const restore = (copiesByMaster: readonly string[][]): Promise<unknown> =>
      Promise.all(
        copiesByMaster.map(async (keys, m) => {
          if (keys.length === 0) return;
          const pipeline = (admins[m] as Redis).pipeline();
          for (const key of keys) pipeline.set(key, 'restored');
          await pipeline.exec();
        }),
      );
    const latencies = setups.map(() => [] as number[]);
    for (let k = -10; k < cleans; k++) {
      for (const [i, s] of setups.entries()) {
        await restore(layouts[i]?.copiesByMaster ?? []);
        const start = performance.now();
        await s.cache.clean(['t1']);
        if (k >= 0) latencies[i]?.push(performance.now() - start);
      }
    }
    for (const [i, s] of setups.entries()) {
      const times = latencies[i] ?? [];
      rows.push({
        buckets: s.buckets,
        bucketsPerMaster: layouts[i]?.bucketsPerMaster ?? [],
        entriesPerMaster: entriesPerMaster[i] ?? [],
        cleanMedianMs: median(times),
        cleanP99Ms: percentile(times, 99),
        readsPerMaster: perMaster[i]?.reads ?? [],
        unlinksPerMaster: perMaster[i]?.unlinks ?? [],
        hitsPerSecond: hits[i] ?? NaN,
      });
    }
    return { entries, cleans, rows };
  } finally {
    for (const s of setups) await s.cache.close();
    for (const admin of admins) admin.disconnect();
  }
}

/** Options of {@link benchCluster}; the defaults keep the whole run under ~3 minutes on 2 cores. */
export interface ClusterBenchOptions {
  readonly concurrencies?: readonly number[];
  readonly bucketCounts?: readonly number[];
  readonly entries?: number;
  readonly cleans?: number;
  readonly rounds?: number;
  readonly ms?: number;
}

/** Starts the cluster (and, for the hits, a standalone server), runs both parts, stops them. */
export async function benchCluster(options: ClusterBenchOptions = {}): Promise<{ hits: ClusterHitRow[]; buckets: BucketBench }> {
  const { concurrencies = [1, 64, 256], bucketCounts = [1, 4, 16, 64, 256, 1024], entries = 10_000, cleans = 300, rounds = 5, ms = 300 } = options;
  const cluster = await startRedisCluster(MASTERS);
  try {
    const hits = await benchHits(cluster.nodes, concurrencies, rounds, ms);
    // Six subjects only: more rounds for the same time, the differences between them being small.
    const buckets = await benchBuckets(cluster.nodes, bucketCounts, entries, cleans, rounds + 2, ms);
    return { hits, buckets };
  } finally {
    await cluster.stop();
  }
}

/** The hit rows as a markdown table, each cluster row also as a share of the single node's. */
export function formatClusterHitTable(rows: readonly ClusterHitRow[]): string {
  const lines = [
    '| case | server | concurrency | hits/s | requests per hit | commands per hit | % of single node |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const concurrency of [...new Set(rows.map((r) => r.concurrency))]) {
    const atConcurrency = rows.filter((r) => r.concurrency === concurrency);
    for (const title of [...new Set(atConcurrency.map((r) => r.case))]) {
      // The single node's row of this case (for a variant, of the case it varies).
      const single = atConcurrency
        .filter((r) => r.server === SINGLE && title.startsWith(r.case))
        .sort((a, b) => a.case.length - b.case.length)[0];
      for (const row of atConcurrency.filter((r) => r.case === title)) {
        const share = single ? `${fmt((100 * row.opsPerSecond) / single.opsPerSecond)}%` : '';
        lines.push(
          `| ${row.case} | ${row.server} | ${row.concurrency} | ${fmt(row.opsPerSecond)} | ${fmt(row.requestsPerCall, 2)} | ${fmt(row.commandsPerCall, 1)} | ${share} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

/** The bucket rows as a markdown table; hits also as a share of the default count's (64). */
export function formatBucketTable(bench: BucketBench): string {
  const list = (xs: readonly number[], digits = 0): string => xs.map((x) => fmt(x, digits)).join(' / ');
  const base = bench.rows.find((r) => r.buckets === DEFAULT_BUCKETS) ?? bench.rows[0];
  const lines = [
    `| buckets | buckets per master | entries per master (of ${fmt(bench.entries)}) | largest master's share | clean(['t1']) median ms | p99 ms | socket reads per master per clean | UNLINKs per master per clean | 3-tag hits/s at c64 | hits vs ${fmt(base?.buckets ?? 0)} buckets |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of bench.rows) {
    const largest = Math.max(...row.entriesPerMaster) / bench.entries;
    const share = base ? `${fmt((100 * row.hitsPerSecond) / base.hitsPerSecond)}%` : '';
    lines.push(
      `| ${row.buckets} | ${list(row.bucketsPerMaster)} | ${list(row.entriesPerMaster)} | ${fmt(100 * largest)}% | ${fmt(row.cleanMedianMs, 2)} | ${fmt(row.cleanP99Ms, 2)} | ${list(row.readsPerMaster, 2)} | ${list(row.unlinksPerMaster, 1)} | ${fmt(row.hitsPerSecond)} | ${share} |`,
    );
  }
  return lines.join('\n');
}

/**
 * Runs the benchmark, prints both sections (used by `npm run bench -- cluster` and by running this
 * file) and writes them with the run's command, date and machine to `bench/cluster-results.md`,
 * the chart to `bench/cluster.svg` and its data to `bench/cluster-data.json`.
 */
export async function printClusterBench(command = 'npx tsx scripts/bench/cluster.ts'): Promise<void> {
  const started = Date.now();
  const { hits, buckets } = await benchCluster();
  const sections = [
    `## Redis Cluster hit throughput (${CLUSTER}, ${DEFAULT_BUCKETS} buckets, vs a single redis-server; loopback)\n`,
    formatClusterHitTable(hits),
    `\nAll ${MASTERS + 1} servers and the client share this machine's ${os.cpus().length} cores: the cluster figures show what spreading the keys over masters costs per call (routing by slot, one connection per master), not what more machines would add.\n`,
    `## Redis Cluster: invalidation and spread versus the bucket count (${CLUSTER})\n`,
    formatBucketTable(buckets),
    `\nclean(['t1']) latency over ${fmt(buckets.cleans)} calls per count, interleaved, the tag's copy restored in every bucket before each call (untimed); socket reads and UNLINKs are server counters over 20 cleans; entries counted per master with SCAN.\n`,
  ];
  for (const section of sections) console.log(section);
  const date = new Date().toISOString();
  const machine = machineLine();
  const page = [
    '# hermes on Redis Cluster: hits and the buckets option',
    '',
    `- command: \`${command}\``,
    `- date: ${date} · run time ${fmt((Date.now() - started) / 60_000, 1)} min`,
    `- machine: ${machine}; node ${process.version}; the ${MASTERS + 1} redis-servers and the client share the cores`,
    '',
    ...sections,
    '![chart](cluster.svg)',
    '',
  ];
  const data: ClusterChartData = { hits, buckets, masters: MASTERS, defaultBuckets: DEFAULT_BUCKETS, subtitle: [`${command} · ${date.slice(0, 10)}`, `${machine} · node ${process.version}`] };
  const file = (name: string): URL => new URL(`../../bench/${name}`, import.meta.url);
  await mkdir(file(''), { recursive: true });
  await writeFile(file('cluster-results.md'), page.join('\n'));
  await writeFile(file('cluster-data.json'), `${JSON.stringify(data, null, 1)}\n`);
  await writeFile(file('cluster.svg'), await renderClusterChart(data));
  console.log('wrote bench/cluster-results.md, bench/cluster.svg and bench/cluster-data.json\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(`command: npx tsx scripts/bench/cluster.ts · node ${process.version} · ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} · ${new Date().toISOString()}\n`);
  await printClusterBench();
}
