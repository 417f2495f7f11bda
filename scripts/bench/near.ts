/**
 * The Redis near-cache (`nearCache` option), in one run against a redis-server started on a
 * free loopback port:
 *
 * 1. the near-cache hit beside the in-process hit (MemoryBackend) and the plain Redis hit,
 *    untagged and with 3 tags, at concurrency 1 and 64 (medians of interleaved rounds);
 * 2. invalidation propagation: from `clean(tags)` resolving in one process to the near-cache of
 *    another process (a forked OS process, and a second Hermes in this process) dropping the
 *    entry, over 1,000 invalidations;
 * 3. the server's cost: redis-server CPU and commands per 1,000 hits with and without the
 *    near-cache, and the memory tracking takes per tracked key;
 * 4. a Zipf workload (100,000 keys, s = 1.1, 5% writes) with and without the near-cache.
 *
 * `npm run bench -- near` prints the tables (about a minute and a half).
 */

import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Hermes, MemoryBackend } from '../../src/index.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import { fmt, interleavedThroughput, median, percentile } from './measure.js';
import { NearObserver, OBSERVED_TAG } from './near-observer.js';
import { commandCalls, payload } from './redis.js';

const KEYS = 1000;
const TAGS = ['a', 'b', 'c'];
const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });
const log = (text: string): void => {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} near: ${text}\n`);
};

// ---------------------------------------------------------------------------------------------
// 1. Hits

/** One row of the hit table. */
export interface NearHitRow {
  /** What was measured. */
  readonly case: string;
  /** Whether the entries carry 3 tags. */
  readonly tagged: boolean;
  /** Concurrent callers. */
  readonly concurrency: number;
  /** Median hits per second. */
  readonly hitsPerSecond: number;
}

type Wrapped = (id: number) => Promise<unknown>;
/** A cache whatever its backend. */
type Cache = Hermes<unknown>;

/** Reads every key until each is served from the near-cache (or `passes` passes are done). */
async function warmNear(cache: Cache, fn: Wrapped, passes = 20): Promise<void> {
  for (let pass = 0; pass < passes; pass++) {
    for (let i = 0; i < KEYS; i++) await fn(i);
    if ((cache.stats().near?.entries ?? 0) >= KEYS) return;
    await sleep(20);
  }
  throw new Error(`the near-cache holds ${cache.stats().near?.entries ?? 0} of ${KEYS} entries after ${passes} passes`);
}

/** The hit table: in-process, near-cache and plain Redis hits, interleaved, at concurrency 1 and 64. */
export async function benchNearHits(port: number, rounds = 7, ms = 200): Promise<NearHitRow[]> {
  const redisOptions = { host: '127.0.0.1', port, prefix: 'nearhit', ttl: 3600 };
  const caches: Cache[] = [];
  const subjects: Array<{ title: string; tagged: boolean; fn: Wrapped }> = [];
  const add = async (title: string, cache: Cache, tagged: boolean, near: boolean): Promise<void> => {
    caches.push(cache);
    const fn = cache.wrap(async (id: number) => payload(id), { name: tagged ? 'tagged' : 'untagged', tags: tagged ? [...TAGS] : [] });
    if (near) await warmNear(cache, fn);
    else for (let i = 0; i < KEYS; i++) await fn(i);
    subjects.push({ title, tagged, fn: (i) => fn(i % KEYS) });
  };
  try {
    for (const tagged of [false, true]) {
      await add('in-process (MemoryBackend, live values)', new Hermes(new MemoryBackend({ maxEntries: 10_000 })), tagged, false);
      await add('in-process (MemoryBackend, serialize: true)', new Hermes(new MemoryBackend({ maxEntries: 10_000, serialize: true })), tagged, false);
      await add('Redis + near-cache (nearCache: true)', new Hermes(RedisBackend, { ...redisOptions, nearCache: true }) as Cache, tagged, true);
      await add(
        'Redis + near-cache (liveValues: true)',
        new Hermes(RedisBackend, { ...redisOptions, prefix: 'nearhitlive', nearCache: { liveValues: true } }) as Cache,
        tagged,
        true,
      );
      await add('Redis, no near-cache', new Hermes(RedisBackend, redisOptions) as Cache, tagged, false);
    }
    const rows: NearHitRow[] = [];
    for (const concurrency of [1, 64]) {
      log(`hits at concurrency ${concurrency}`);
      const medians = await interleavedThroughput(subjects.map((s) => s.fn), concurrency, ms, rounds);
      for (const [index, s] of subjects.entries()) rows.push({ case: s.title, tagged: s.tagged, concurrency, hitsPerSecond: medians[index] ?? NaN });
    }
    // Every near-cache hit of the timed rounds must have been served from memory.
    for (const cache of caches) {
      const near = cache.stats().near;
      if (near !== undefined && near.bypassed > 0) log(`warning: ${near.bypassed} near-cache reads bypassed`);
    }
    return rows;
  } finally {
    for (const cache of caches) await cache.close();
  }
}

/** The hit table as markdown, with µs per hit and the near-cache against the in-process hit. */
export function formatNearHits(rows: readonly NearHitRow[]): string {
  const lines = [
    '| case | tags | concurrency | hits/s | µs per hit | near-cache time ÷ this time |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    const near = rows.find((r) => r.concurrency === row.concurrency && r.tagged === row.tagged && r.case === 'Redis + near-cache (nearCache: true)');
    const ratio = near ? row.hitsPerSecond / near.hitsPerSecond : NaN;
    lines.push(`| ${row.case} | ${row.tagged ? 3 : 0} | ${row.concurrency} | ${fmt(row.hitsPerSecond)} | ${fmt(1e6 / row.hitsPerSecond, 2)} | ${fmt(ratio, 2)} |`);
  }
  return lines.join('\n');
}

/**
 * One line per near-cache row (tags, concurrency, value semantics): its hit's time against the
 * in-process hit's, target ≤ 2× — like for like (shared live values against the in-process
 * backend's live values, a fresh copy per hit against its `serialize: true`), and against the
 * in-process default (live values).
 */
export function nearHitVerdicts(rows: readonly NearHitRow[]): string[] {
  return rows
    .filter((r) => r.case.startsWith('Redis + near'))
    .map((near) => {
      const same = (r: NearHitRow): boolean => r.concurrency === near.concurrency && r.tagged === near.tagged;
      const live = near.case.includes('liveValues');
      const memory = rows.find((r) => same(r) && r.case.includes('live values'));
      const alike = rows.find((r) => same(r) && r.case.includes(live ? 'live values' : 'serialize: true'));
      const redis = rows.find((r) => same(r) && r.case.startsWith('Redis, no'));
      const times = alike ? alike.hitsPerSecond / near.hitsPerSecond : NaN;
      const timesDefault = memory ? memory.hitsPerSecond / near.hitsPerSecond : NaN;
      const faster = redis ? near.hitsPerSecond / redis.hitsPerSecond : NaN;
      const what = live ? 'shared values' : 'a fresh copy per hit';
      return `${near.tagged ? '3 tags' : 'untagged'}, concurrency ${near.concurrency}, ${what}: ${fmt(times, 2)}× the in-process hit's time (${live ? 'live values' : 'serialize: true'}) — ${times <= 2 ? 'met' : 'NOT met'}; ${fmt(timesDefault, 2)}× the in-process default's; ${fmt(faster, 1)}× the plain Redis hit's rate`;
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Invalidation propagation

/** Propagation delays of one setup, in microseconds. */
export interface PropagationRow {
  /** Where the observer runs. */
  readonly setup: string;
  /** Cleans measured. */
  readonly count: number;
  /** From `clean()` resolving in the cleaner to the observer's near-cache dropping the entry (may be negative). */
  readonly sinceResolved: readonly number[];
  /** From `clean()` being called to the drop. */
  readonly sinceCalled: readonly number[];
}

/** How a cleaner reaches its observer. */
interface ObserverHandle {
  /** Resolves once the entry is served from the observer's near-cache; `dropped` with the drop time. */
  arm(): Promise<{ dropped: Promise<bigint> }>;
  close(): Promise<void>;
}

function inProcessObserver(port: number, prefix: string): ObserverHandle {
  const observer = new NearObserver(port, prefix);
  return {
    async arm() {
      let resolveDrop!: (at: bigint) => void;
      const dropped = new Promise<bigint>((resolve) => {
        resolveDrop = resolve;
      });
      await observer.arm(resolveDrop);
      return { dropped };
    },
    close: () => observer.close(),
  };
}

async function forkedObserver(port: number, prefix: string): Promise<ObserverHandle> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./near-observer.ts', import.meta.url)), [String(port), prefix], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (type: string): Promise<{ type: string; at?: string }> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: { type: string; at?: string }): void => {
        if (message.type !== type) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(message);
      };
      const onExit = (code: number | null): void => {
        reject(new Error(`near observer exited (${String(code)}) before '${type}'`));
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
  await next('ready');
  return {
    async arm() {
      const armed = next('armed');
      // Listened to before arming: the drop message may follow 'armed' closely.
      const dropped = next('dropped').then((m) => BigInt(m.at ?? '0'));
      dropped.catch(() => undefined);
      child.send({ type: 'arm' });
      await armed;
      return { dropped };
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ type: 'exit' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** `count` cleans of the observed tag by a cleaner (a Hermes without near-cache on its own connection). */
async function propagation(setup: string, port: number, prefix: string, observer: ObserverHandle, count: number): Promise<PropagationRow> {
  const cleaner = new Hermes(RedisBackend, { host: '127.0.0.1', port, prefix }) as Cache;
  const sinceResolved: number[] = [];
  const sinceCalled: number[] = [];
  try {
    await cleaner.clean(['warm-up']); // connects, loads the scripts
    for (let i = 0; i < count; i++) {
      const { dropped } = await observer.arm();
      // The observer's own write drew invalidations too, but of the entry and lock keys: only
      // a message naming the tag key counts as the drop.
      const calledAt = process.hrtime.bigint();
      await cleaner.clean([OBSERVED_TAG]);
      const resolvedAt = process.hrtime.bigint();
      const at = await dropped;
      sinceResolved.push(Number(at - resolvedAt) / 1000);
      sinceCalled.push(Number(at - calledAt) / 1000);
    }
  } finally {
    await cleaner.close();
  }
  return { setup, count, sinceResolved, sinceCalled };
}

/** The propagation rows: a forked OS process, then a second Hermes in this process. */
export async function benchPropagation(port: number, count = 1000): Promise<PropagationRow[]> {
  const rows: PropagationRow[] = [];
  log(`propagation to another OS process, ${count} cleans`);
  const forked = await forkedObserver(port, 'nearprop1');
  try {
    rows.push(await propagation('observer in another OS process (forked)', port, 'nearprop1', forked, count));
  } finally {
    await forked.close();
  }
  log(`propagation to another Hermes in this process, ${count} cleans`);
  const local = inProcessObserver(port, 'nearprop2');
  try {
    rows.push(await propagation('observer in this process (its own Hermes and connections)', port, 'nearprop2', local, count));
  } finally {
    await local.close();
  }
  return rows;
}

/** The propagation table as markdown (µs). */
export function formatPropagation(rows: readonly PropagationRow[]): string {
  const lines = [
    '| setup | cleans | from | p50 µs | p99 µs | max µs | min µs |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    for (const [from, xs] of [['clean() resolved', row.sinceResolved], ['clean() called', row.sinceCalled]] as const) {
      lines.push(`| ${row.setup} | ${fmt(row.count)} | ${from} | ${fmt(percentile(xs, 50), 1)} | ${fmt(percentile(xs, 99), 1)} | ${fmt(Math.max(...xs), 1)} | ${fmt(Math.min(...xs), 1)} |`);
    }
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// 3. The server's cost

/** redis-server CPU seconds (`INFO cpu`: user + sys, I/O included). */
async function cpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  return Number(/^used_cpu_user:([\d.]+)/m.exec(info)?.[1]) + Number(/^used_cpu_sys:([\d.]+)/m.exec(info)?.[1]);
}

/** A numeric field of `INFO <section>`. */
async function infoField(admin: Redis, section: string, field: string): Promise<number> {
  return Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(await admin.info(section))?.[1]);
}

/** Commands executed between two `INFO commandstats` snapshots, INFO itself excluded. */
function commandsBetween(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const [command, n] of after) if (command !== 'info') total += n - (before.get(command) ?? 0);
  return total;
}

/** One row of the CPU table. */
export interface CpuRow {
  /** What was measured. */
  readonly case: string;
  /** Hits per repetition. */
  readonly hits: number;
  /** redis-server CPU µs per 1,000 hits (median of the repetitions). */
  readonly cpuUsecPer1000: number;
  /** Commands executed per 1,000 hits (script-inner ones included). */
  readonly commandsPer1000: number;
  /** Wall time of the hits, ms (median). */
  readonly wallMs: number;
}

/** The tracking-memory figures. */
export interface TrackingMemory {
  /** Entries read by each reader. */
  readonly keysRead: number;
  /** `used_memory` growth from reading every key through a Hermes without near-cache (bytes). */
  readonly plainGrowth: number;
  /** The same through a Hermes with the near-cache. */
  readonly nearGrowth: number;
  /** `tracking_total_keys` growth over the near-cache read. */
  readonly trackedKeys: number;
  /** `tracking_total_items` growth over the near-cache read. */
  readonly trackedItems: number;
}

/** redis-server CPU and commands per 1,000 hits at concurrency 64, with and without the near-cache. */
export async function benchServerCpu(port: number, admin: Redis, hits = 20_000, repetitions = 5): Promise<CpuRow[]> {
  const rows: CpuRow[] = [];
  const redisOptions = { host: '127.0.0.1', port, prefix: 'nearcpu', ttl: 3600 };
  for (const tagged of [false, true]) {
    for (const near of [false, true]) {
      const cache = new Hermes(RedisBackend, { ...redisOptions, ...(near ? { nearCache: true } : {}) }) as Cache;
      const fn = cache.wrap(async (id: number) => payload(id), { name: tagged ? 'tagged' : 'untagged', tags: tagged ? [...TAGS] : [] });
      try {
        if (near) await warmNear(cache, fn);
        else for (let i = 0; i < KEYS; i++) await fn(i);
        const cpu: number[] = [];
        const commands: number[] = [];
        const wall: number[] = [];
        for (let r = 0; r < repetitions; r++) {
          await sleep(20);
          const commandsBefore = await commandCalls([admin]);
          const cpuBefore = await cpuSeconds(admin);
          const start = performance.now();
          let next = 0;
          await Promise.all(
            Array.from({ length: 64 }, async () => {
              while (next < hits) await fn(next++ % KEYS);
            }),
          );
          wall.push(performance.now() - start);
          await sleep(5); // coalesced writes, if any, land
          const cpuAfter = await cpuSeconds(admin);
          const commandsAfter = await commandCalls([admin]);
          cpu.push(((cpuAfter - cpuBefore) * 1e6 * 1000) / hits);
          commands.push((commandsBetween(commandsBefore, commandsAfter) * 1000) / hits);
        }
        rows.push({
          case: `${near ? 'Redis + near-cache' : 'Redis, no near-cache'}, ${tagged ? '3 tags' : 'untagged'}`,
          hits,
          cpuUsecPer1000: median(cpu),
          commandsPer1000: median(commands),
          wallMs: median(wall),
        });
      } finally {
        await cache.close();
      }
    }
  }
  return rows;
}

/** The memory redis-server spends on tracking: `keys` untagged entries read with and without the near-cache. */
export async function benchTrackingMemory(port: number, admin: Redis, keys = 20_000): Promise<TrackingMemory> {
  const redisOptions = { host: '127.0.0.1', port, prefix: 'neartrack', ttl: 3600 };
  const readAll = async (cache: Cache): Promise<void> => {
    const fn = cache.wrap(async (id: number) => payload(id), { name: 'tracked' });
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < keys) await fn(next++);
      }),
    );
  };
  const settledMemory = async (): Promise<number> => {
    await sleep(300); // client buffers shrink, lazy frees finish
    return infoField(admin, 'memory', 'used_memory');
  };
  const filler = new Hermes(RedisBackend, redisOptions) as Cache;
  await readAll(filler); // fills Redis (misses)
  await filler.close();

  const plain = new Hermes(RedisBackend, redisOptions) as Cache;
  await plain.clean(['connect']);
  const plainBefore = await settledMemory();
  await readAll(plain);
  const plainAfter = await settledMemory();
  await plain.close();

  const trackedBefore = await infoField(admin, 'stats', 'tracking_total_keys');
  const itemsBefore = await infoField(admin, 'stats', 'tracking_total_items');
  const near = new Hermes(RedisBackend, { ...redisOptions, nearCache: { maxEntries: keys * 2 } }) as Cache;
  await near.clean(['connect']);
  const nearBefore = await settledMemory();
  await readAll(near);
  const nearAfter = await settledMemory();
  const trackedKeys = (await infoField(admin, 'stats', 'tracking_total_keys')) - trackedBefore;
  const trackedItems = (await infoField(admin, 'stats', 'tracking_total_items')) - itemsBefore;
  await near.close();
  return { keysRead: keys, plainGrowth: plainAfter - plainBefore, nearGrowth: nearAfter - nearBefore, trackedKeys, trackedItems };
}

// ---------------------------------------------------------------------------------------------
// 4. Zipf workload

const ZIPF_KEYS = 100_000;
const ZIPF_S = 1.1;
const ZIPF_GROUPS = 1000;
const WRITE_SHARE = 0.05;
const ZIPF_CALLERS = 64;

/** A small seeded PRNG (mulberry32), so that every run draws the same workload. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One operation of the workload: read key `key`, or invalidate it, or clean its group's tag. */
interface ZipfOp {
  readonly kind: 0 | 1 | 2; // read, invalidate(key), clean([tag of key])
  readonly key: number;
}

/** `count` operations: keys of rank r drawn with weight 1 / r^s; 5% writes, half of them tag cleans. */
function zipfOps(count: number, seed = 42): ZipfOp[] {
  const cumulative = new Float64Array(ZIPF_KEYS);
  let sum = 0;
  for (let r = 0; r < ZIPF_KEYS; r++) cumulative[r] = sum += 1 / (r + 1) ** ZIPF_S;
  const rand = random(seed);
  const ops: ZipfOp[] = [];
  for (let n = 0; n < count; n++) {
    const target = rand() * sum;
    let lo = 0;
    let hi = ZIPF_KEYS - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cumulative[mid] as number) < target) lo = mid + 1;
      else hi = mid;
    }
    const write = rand() < WRITE_SHARE;
    ops.push({ kind: write ? (rand() < 0.5 ? 1 : 2) : 0, key: lo });
  }
  return ops;
}

/** One row of the Zipf table. */
export interface ZipfRow {
  /** What was measured. */
  readonly case: string;
  /** Median calls (reads and writes) per second, counting the calls that ended within each round. */
  readonly callsPerSecond: number;
  /** The slowest and the fastest round's calls per second. */
  readonly range: readonly [number, number];
  /** Calls made in the measured rounds, those that ended after a round's end included. */
  readonly calls: number;
  /** The reads among them (the rest are writes). */
  readonly reads: number;
  /** Near-cache hits over reads. */
  readonly nearHitRatio: number;
  /** Computations (runs of the wrapped functions) over reads: the misses that recomputed. */
  readonly computeRatio: number;
  /** Commands Redis executed per call (script-inner ones included). */
  readonly commandsPerCall: number;
  /** Requests per call: the scripts the client sent, and the near-cache's PINGs and tracking commands. */
  readonly requestsPerCall: number;
  /** Lock waits (a read found another caller computing). */
  readonly lockWaits: number;
  /** Calls that took at least 90% of `lockWait`: a wait that no release ended. */
  readonly waitedOut: number;
}

/** `lockWait` of the Zipf caches, in ms (the default is 10 s; see the report on waits no release ends). */
const ZIPF_LOCK_WAIT_MS = 1000;

/** The Zipf workload with and without the near-cache: interleaved rounds of `ms`, 64 callers. */
export async function benchZipf(port: number, admin: Redis, rounds = 5, ms = 1000): Promise<ZipfRow[]> {
  const ops = zipfOps(1 << 20);
  const subjects = [false, true].map((near) => {
    const cache = new Hermes(RedisBackend, {
      host: '127.0.0.1',
      port,
      prefix: near ? 'zipfnear' : 'zipfplain',
      ttl: 3600,
      lockWait: ZIPF_LOCK_WAIT_MS,
      ...(near ? { nearCache: true } : {}),
    }) as Cache;
    const groups = Array.from({ length: ZIPF_GROUPS }, (_, g) => cache.wrap(async (id: number) => payload(id), { name: `zipf${g}`, tags: [`g${g}`] }));
    let cursor = 0;
    const totals = { calls: 0, reads: 0, computations: 0, nearHits: 0, commands: 0, requests: 0, rates: [] as number[], lockWaits: 0, waitedOut: 0 };
    const run = async (duration: number, record: boolean): Promise<void> => {
      const statsBefore = cache.stats();
      const commandsBefore = await commandCalls([admin]);
      let calls = 0;
      let inWindow = 0;
      let reads = 0;
      let waitedOut = 0;
      const end = performance.now() + duration;
      await Promise.all(
        Array.from({ length: ZIPF_CALLERS }, async () => {
          while (performance.now() < end) {
            const op = ops[cursor++ & (ops.length - 1)] as ZipfOp;
            const fn = groups[op.key % ZIPF_GROUPS] as (typeof groups)[number];
            const callStart = performance.now();
            if (op.kind === 0) {
              await fn(op.key);
              reads++;
            } else if (op.kind === 1) await fn.invalidate(op.key);
            else await cache.clean([`g${op.key % ZIPF_GROUPS}`]);
            const now = performance.now();
            calls++;
            if (now <= end) inWindow++;
            if (now - callStart >= 0.9 * ZIPF_LOCK_WAIT_MS) waitedOut++;
          }
        }),
      );
      await sleep(10); // coalesced writes land
      const commandsAfter = await commandCalls([admin]);
      const statsAfter = cache.stats();
      if (!record) return;
      totals.calls += calls;
      totals.reads += reads;
      totals.computations += statsAfter.computations - statsBefore.computations;
      totals.nearHits += (statsAfter.near?.hits ?? 0) - (statsBefore.near?.hits ?? 0);
      totals.commands += commandsBetween(commandsBefore, commandsAfter);
      // Requests: what the client sent (hermes sends scripts, and the near-cache's heartbeat and
      // tracking commands); the commands run inside scripts are counted under their own names.
      totals.requests += ['evalsha', 'eval', 'script|load', 'ping', 'client|tracking'].reduce(
        (sum, command) => sum + (commandsAfter.get(command) ?? 0) - (commandsBefore.get(command) ?? 0),
        0,
      );
      totals.rates.push((inWindow * 1000) / duration);
      totals.lockWaits += statsAfter.lockWaits - statsBefore.lockWaits;
      totals.waitedOut += waitedOut;
    };
    return { near, cache, run, totals };
  });
  try {
    for (const s of subjects) {
      log(`zipf warm-up, ${s.near ? 'near-cache' : 'no near-cache'}`);
      await s.run(1500, false);
    }
    for (let round = 0; round < rounds; round++) {
      for (const s of subjects) {
        log(`zipf round ${round + 1}/${rounds}, ${s.near ? 'near-cache' : 'no near-cache'}`);
        await s.run(ms, true);
      }
    }
    return subjects.map(({ near, totals }) => ({
      case: near ? 'Redis + near-cache (nearCache: true, 10,000 entries)' : 'Redis, no near-cache',
      callsPerSecond: median(totals.rates),
      range: [Math.min(...totals.rates), Math.max(...totals.rates)],
      calls: totals.calls,
      reads: totals.reads,
      nearHitRatio: totals.nearHits / totals.reads,
      computeRatio: totals.computations / totals.reads,
      commandsPerCall: totals.commands / totals.calls,
      requestsPerCall: totals.requests / totals.calls,
      lockWaits: totals.lockWaits,
      waitedOut: totals.waitedOut,
    }));
  } finally {
    for (const s of subjects) await s.cache.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The section

/** Runs the four parts and prints their tables (the caller prints the command line). */
export async function printNearBench(): Promise<void> {
  const started = performance.now();
  const server = await startRedisServer();
  const admin = new Redis(server.port, '127.0.0.1');
  try {
    const redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? '?';
    console.log(`## Redis near-cache (redis-server ${redisVersion}, loopback)\n`);
    console.log(`Load average at the start: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (${os.cpus().length} cores, shared by the client, the server and the observer process).\n`);

    console.log('### Hit: near-cache beside the in-process and the plain Redis hit\n');
    console.log(`${KEYS} keys, a small object (~90 bytes of JSON); medians of 7 interleaved rounds of 200 ms after a warm-up; µs per hit = 1 / rate (at concurrency 64, the inverse of throughput).\n`);
    const hits = await benchNearHits(server.port);
    console.log(formatNearHits(hits));
    console.log(`\nTarget (near-cache hit ≤ 2× the in-process hit's time, live values): ${nearHitVerdicts(hits).join('; ')}.\n`);

    console.log('### Invalidation propagation: clean(tags) in one process → the near-cache of another drops the entry\n');
    console.log('The cleaner is a Hermes without near-cache on its own connection, in this process; the observer holds the entry in its near-cache and takes the time (`process.hrtime`, a clock every process shares) right after its near-cache applied the invalidation message (a wrapper around `NearCache.prototype.invalidated`); one clean at a time, the observer re-armed between cleans. A negative figure: the message arrived before the cleaner had its reply.\n');
    const propagation = await benchPropagation(server.port);
    console.log(formatPropagation(propagation));
    const forked = propagation[0];
    if (forked !== undefined) {
      const p99 = percentile(forked.sinceResolved, 99);
      console.log(`\nTarget (p99 < 1 ms on loopback, another OS process, from clean() resolved): ${fmt(p99, 1)} µs — ${p99 < 1000 ? 'met' : 'NOT met'}.\n`);
    }

    console.log("### The server's cost\n");
    log('server CPU per 1,000 hits');
    const cpu = await benchServerCpu(server.port, admin);
    console.log('redis-server CPU (`INFO cpu` used_cpu_user + used_cpu_sys growth, network I/O included) and commands executed (`INFO commandstats`, script-inner ones included) over 20,000 hits at concurrency 64 on 1,000 warm keys; medians of 5 repetitions.\n');
    console.log('| case | CPU µs per 1,000 hits | commands per 1,000 hits | wall ms for 20,000 hits |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const row of cpu) console.log(`| ${row.case} | ${fmt(row.cpuUsecPer1000)} | ${fmt(row.commandsPer1000, 1)} | ${fmt(row.wallMs, 1)} |`);
    log('tracking memory');
    const memory = await benchTrackingMemory(server.port, admin);
    const perKey = (memory.nearGrowth - memory.plainGrowth) / memory.trackedKeys;
    console.log(`\nTracking memory: ${fmt(memory.keysRead)} untagged entries read once (hits) by a Hermes without near-cache, then by one with it (\`INFO memory\` used_memory, 300 ms after each pass):\n`);
    console.log('| reader | used_memory growth (bytes) | tracking_total_keys | tracking_total_items | bytes per tracked key |');
    console.log('| --- | ---: | ---: | ---: | ---: |');
    console.log(`| Redis, no near-cache | ${fmt(memory.plainGrowth)} | 0 | 0 | |`);
    console.log(`| Redis + near-cache | ${fmt(memory.nearGrowth)} | ${fmt(memory.trackedKeys)} | ${fmt(memory.trackedItems)} | ${fmt(perKey)} (growth beyond the plain reader's ÷ tracked keys) |`);

    console.log(`\n### Zipf workload (${fmt(ZIPF_KEYS)} keys, s = ${ZIPF_S}, ${WRITE_SHARE * 100}% writes)\n`);
    console.log(`${ZIPF_CALLERS} concurrent callers on one Hermes; each call draws a key by Zipf rank; 95% read it (a miss recomputes and writes), 2.5% \`invalidate(key)\`, 2.5% \`clean([tag of its group])\` (${ZIPF_GROUPS} groups of ${ZIPF_KEYS / ZIPF_GROUPS} keys, one wrapped function and tag each); the same seeded sequence for both; \`lockWait: ${ZIPF_LOCK_WAIT_MS}\` (default 10 s: a wait that no release ends would stall a round); calls/s: median of 5 interleaved rounds of 1 s after a warm-up round of 1.5 s each (from an empty cache), counting the calls that ended within the round; ratios and counts over the 5 rounds.\n`);
    const zipf = await benchZipf(server.port, admin);
    console.log('| case | calls/s | rounds (calls/s) | calls | reads | near-cache hits ÷ reads | computations ÷ reads | Redis commands per call | requests per call | lock waits | calls ≥ 0.9 s |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of zipf) {
      console.log(
        `| ${row.case} | ${fmt(row.callsPerSecond)} | ${fmt(row.range[0])}–${fmt(row.range[1])} | ${fmt(row.calls)} | ${fmt(row.reads)} | ${fmt(row.nearHitRatio * 100, 1)}% | ${fmt(row.computeRatio * 100, 1)}% | ${fmt(row.commandsPerCall, 2)} | ${fmt(row.requestsPerCall, 2)} | ${fmt(row.lockWaits)} | ${fmt(row.waitedOut)} |`,
      );
    }
    const [plainZipf, nearZipf] = zipf;
    if (plainZipf && nearZipf) console.log(`\nThe near-cache: ${fmt(nearZipf.callsPerSecond / plainZipf.callsPerSecond, 2)}× the calls/s, ${fmt(nearZipf.commandsPerCall / plainZipf.commandsPerCall, 2)}× the Redis commands per call.`);
    console.log(`\nSection time: ${fmt((performance.now() - started) / 1000, 1)} s; load average at the end: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}.\n`);
  } finally {
    admin.disconnect();
    await server.stop();
  }
}
