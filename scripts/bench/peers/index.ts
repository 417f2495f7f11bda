/**
 * `npm run bench:peers`: hermes beside bentocache, cache-manager and cacheable, and beside the
 * raw limit (ioredis GET, EVALSHA of hermes' read script, memcached get / multi-get, a
 * hand-written LRU), in one run, on a redis-server and a memcached it starts on free loopback
 * ports. Writes `bench/results.md` and `bench/chart.svg`.
 *
 *   npm run bench:peers                  # everything (about 7–8 minutes on 2 cores)
 *   npm run bench:peers -- --rounds 3    # fewer rounds (default 25) of --ms 130 each
 *
 * Every figure is the median of interleaved rounds after a warm-up round: within a scenario,
 * round r of every library runs before round r+1 of any, so machine noise hits all alike.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { redisScripts } from '../../../src/backend/redis/scripts.js';
import { startRedisServer } from '../../../test/helpers/redis-server.js';
import { startMemcached } from '../../../test/helpers/memcached-server.js';
import { startCountingProxy } from '../../../test/memcached/counting-proxy.js';
import { renderChart, type ChartBar, type ChartData } from './chart.js';
import { machineLine } from '../vega.js';
import {
  HIT_KEYS,
  MEMORY_LIBRARIES,
  NETWORK_LIBRARIES,
  STAMPEDE_LIBRARIES,
  TAGS,
  cacheManagerRedis,
  cacheableRedis,
  bentoRedis,
  bentoTiered,
  hermesNear,
  hermesRedis,
  lruCacheFloor,
  HandLru,
  value,
  type Feature,
  type Library,
} from './libraries.js';
import {
  commandsBetween,
  median,
  memcachedCommandsBetween,
  memcachedStats,
  nsPerAwaitedCall,
  nsPerSyncCall,
  redisCommandStats,
  redisCpuSeconds,
  throughput,
} from './measure.js';
import { memoryOf, type MemoryRow } from './memory.js';
import { startRespCountingProxy } from './resp-proxy.js';
import { stampede, type StampedeRow } from './stampede.js';

const argValue = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const ROUNDS = argValue('--rounds', 25);
const ROUND_MS = argValue('--ms', 130);
const COUNT_SAMPLE = 500;
const IN_PROCESS_CALLS = 50_000;

/** A scenario: one operation, a concurrency, the feature it needs. */
interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly feature: Feature;
  readonly concurrency: number;
  /** Runs one operation; `i` is the loop's running index, `fresh()` a never-used key. */
  op(library: Library, i: number, fresh: () => number): Promise<unknown>;
}

const SCENARIOS: readonly Scenario[] = [
  { id: 'hit1', title: 'hit, concurrency 1', feature: 'hit', concurrency: 1, op: (l, i) => l.get(i % HIT_KEYS, false) },
  { id: 'hit64', title: 'hit, concurrency 64', feature: 'hit', concurrency: 64, op: (l, i) => l.get(i % HIT_KEYS, false) },
  { id: 'thit1', title: '3-tag hit, concurrency 1', feature: 'taggedHit', concurrency: 1, op: (l, i) => l.get(i % HIT_KEYS, true) },
  { id: 'thit64', title: '3-tag hit, concurrency 64', feature: 'taggedHit', concurrency: 64, op: (l, i) => l.get(i % HIT_KEYS, true) },
  { id: 'miss', title: 'miss (read, compute, write), concurrency 64', feature: 'miss', concurrency: 64, op: (l, _i, fresh) => l.get(fresh(), false) },
  { id: 'tmiss', title: '3-tag miss, concurrency 64', feature: 'taggedMiss', concurrency: 64, op: (l, _i, fresh) => l.get(fresh(), true) },
  { id: 'inv', title: 'invalidate one entry, concurrency 64', feature: 'invalidate', concurrency: 64, op: (l, i) => l.invalidate(i % HIT_KEYS, false) },
  { id: 'invtag', title: 'invalidate by tag, concurrency 64', feature: 'invalidateTag', concurrency: 64, op: (l, i) => l.invalidateTag(TAGS[i % TAGS.length] as string) },
];

let freshKey = 1_000_000;
const fresh = (): number => freshKey++;

/** What one operation costs on the wire and on the server, counted at concurrency 1. */
interface Cost {
  readonly requests: number;
  readonly roundTrips: number | undefined;
  readonly executed: number;
  /** redis-server CPU microseconds per operation (`INFO cpu`), I/O included. */
  readonly serverUsec: number | undefined;
}

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined || Number.isNaN(n) ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });
const log = (text: string): void => {
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${text}\n`);
};

async function fillKeys(library: Library, tagged: boolean): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < HIT_KEYS) await library.get(next++, tagged);
    }),
  );
}

const version = (pkg: string): string => {
  const text = readFileSync(new URL(`../../../node_modules/${pkg}/package.json`, import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
};

const started = Date.now();
const loadAtStart = os.loadavg().map((x) => x.toFixed(2)).join(' ');
log('starting redis-server and memcached');
const redis = await startRedisServer();
const memcached = await startMemcached();
const admin = new Redis(redis.port, '127.0.0.1');
const respProxy = await startRespCountingProxy(redis.port);
const mcProxy = await startCountingProxy(memcached.port);
// Round trips to memcached: a protocol-blind burst counter in front of the command counter.
const mcBurstProxy = await startRespCountingProxy(mcProxy.port, { parseResp: false });
// Ctrl-C or a kill stops the servers this run started before exiting.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.allSettled([redis.stop(), memcached.stop()]).finally(() => process.exit(130));
  });
}
const direct = { redisPort: redis.port, memcachedPort: memcached.port };
const counted = { redisPort: respProxy.port, memcachedPort: mcBurstProxy.port };

const costs = new Map<string, Cost>(); // `${library}|${scenario.id}`
const ops = new Map<string, number>();
const inProcessNs = new Map<string, number>();
let stampedeRows: StampedeRow[] = [];
let memoryRows: MemoryRow[] = [];
let redisVersion = '';
let memcachedVersion = '';

try {
  redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? '?';
  memcachedVersion = (await memcachedStats(memcached.port)).size > 0 ? execFileSync('memcached', ['-V']).toString().trim() : '?';
  await admin.script('LOAD', redisScripts().read.source);

  // --- Fill the hit key spaces through each library itself.
  log('filling 1,000 untagged and 1,000 tagged entries per library');
  for (const factory of NETWORK_LIBRARIES) {
    const library = factory.make(direct);
    if (library.lacks.miss === undefined) {
      await fillKeys(library, false);
      if (library.lacks.taggedMiss === undefined) await fillKeys(library, true);
    }
    await library.close();
  }

  // --- Requests, round trips and commands per operation, counted at concurrency 1.
  log('counting requests and commands per operation');
  for (const factory of NETWORK_LIBRARIES) {
    const library = factory.make(counted);
    for (const scenario of SCENARIOS) {
      if (scenario.concurrency !== 1 && scenario.feature.endsWith('it')) continue; // hits: counted once
      if (library.lacks[scenario.feature] !== undefined) continue;
      const run = async (): Promise<void> => {
        for (let i = 0; i < COUNT_SAMPLE; i++) await scenario.op(library, i, fresh);
      };
      await run(); // warm: connections, scripts, an L1 filled for the hit scenarios
      await sleep(30);
      const redisBefore = await redisCommandStats(admin);
      const cpuBefore = await redisCpuSeconds(admin);
      const mcBefore = await memcachedStats(memcached.port);
      respProxy.reset();
      mcProxy.reset();
      mcBurstProxy.reset();
      await run();
      await sleep(30); // background writes and bus messages land
      const onRedis = factory.server === 'redis';
      const cpuAfter = await redisCpuSeconds(admin);
      const redisAfter = await redisCommandStats(admin);
      const cost: Cost = {
        serverUsec: onRedis ? ((cpuAfter - cpuBefore) * 1e6) / COUNT_SAMPLE : undefined,
        requests: (onRedis ? respProxy.commands() : mcProxy.total()) / COUNT_SAMPLE,
        roundTrips: (onRedis ? respProxy.counts.roundTrips : mcBurstProxy.counts.roundTrips) / COUNT_SAMPLE,
        executed: onRedis
          ? commandsBetween(redisBefore, redisAfter) / COUNT_SAMPLE
          : memcachedCommandsBetween(mcBefore, await memcachedStats(memcached.port)) / COUNT_SAMPLE,
      };
      for (const s of SCENARIOS.filter((x) => x.feature === scenario.feature)) costs.set(`${factory.name}|${s.id}`, cost);
    }
    await library.close();
  }

  // --- Throughput, interleaved rounds per scenario.
  const libraries = NETWORK_LIBRARIES.map((factory) => factory.make(direct));
  for (const scenario of SCENARIOS) {
    log(`throughput: ${scenario.title}`);
    const runnable = libraries.filter((l) => l.lacks[scenario.feature] === undefined);
    const samples = new Map<string, number[]>(runnable.map((l) => [l.name, []]));
    for (const library of runnable) await throughput(scenario.concurrency, ROUND_MS, (i) => scenario.op(library, i, fresh));
    for (let round = 0; round < ROUNDS; round++) {
      for (const library of runnable) {
        samples.get(library.name)?.push(await throughput(scenario.concurrency, ROUND_MS, (i) => scenario.op(library, i, fresh)));
      }
    }
    for (const [name, xs] of samples) ops.set(`${name}|${scenario.id}`, median(xs));
  }
  for (const library of libraries) await library.close();

  // --- In-process hit: ns per sequential awaited call.
  log('in-process hit');
  const floorLru = new HandLru<string>(100_000);
  for (let i = 0; i < HIT_KEYS; i++) floorLru.set(JSON.stringify(['p', i]), value(i));
  const floor = (i: number): unknown => floorLru.get(JSON.stringify(['p', i % HIT_KEYS]));
  const lruCacheGet = lruCacheFloor();
  const memoryLibraries = MEMORY_LIBRARIES.map((factory) => factory.make(direct));
  for (const library of memoryLibraries) await fillKeys(library, false);
  const inProcessSamples = new Map<string, number[]>();
  const record = (name: string, ns: number): void => {
    inProcessSamples.set(name, [...(inProcessSamples.get(name) ?? []), ns]);
  };
  const FLOOR = 'limit: hand-written LRU get, sync';
  const LRU_CACHE = 'limit: lru-cache get, sync';
  for (let round = -1; round < ROUNDS; round++) {
    const floorNs = nsPerSyncCall(IN_PROCESS_CALLS, floor);
    const lruNs = nsPerSyncCall(IN_PROCESS_CALLS, lruCacheGet);
    const libraryNs: [string, number][] = [];
    for (const library of memoryLibraries) {
      libraryNs.push([library.name === 'limit: hand-written LRU get' ? 'limit: hand-written LRU get, awaited' : library.name, await nsPerAwaitedCall(IN_PROCESS_CALLS, (i) => library.get(i % HIT_KEYS, false))]);
    }
    if (round < 0) continue; // warm-up
    record(FLOOR, floorNs);
    record(LRU_CACHE, lruNs);
    for (const [name, ns] of libraryNs) record(name, ns);
  }
  for (const [name, xs] of inProcessSamples) inProcessNs.set(name, median(xs));
  for (const library of memoryLibraries) await library.close();

  // --- Stampede across processes.
  stampedeRows = [];
  for (const [index, factory] of STAMPEDE_LIBRARIES.entries()) {
    log(`stampede: ${factory.name}`);
    stampedeRows.push(await stampede(factory, redis.port, admin, index));
  }

  // --- Memory per entry on the server.
  memoryRows = [];
  for (const factory of [hermesRedis, bentoRedis, cacheManagerRedis, cacheableRedis]) {
    log(`memory: ${factory.name}`);
    memoryRows.push(await memoryOf(factory, redis.port, admin));
  }
} finally {
  admin.disconnect();
  await respProxy.close();
  await mcBurstProxy.close();
  await mcProxy.close();
  await redis.stop();
  await memcached.stop();
}

// ---------------------------------------------------------------------------------------------
// Report

const names = NETWORK_LIBRARIES.map((f) => f.name);
const opsOf = (library: string, scenario: string): number | undefined => ops.get(`${library}|${scenario}`);
const costOf = (library: string, scenario: string): Cost | undefined => costs.get(`${library}|${scenario}`);

// Why a cell is empty: ask a throwaway instance of the library (no connection is opened).
const missingWhy = new Map<string, string>();
{
  for (const factory of NETWORK_LIBRARIES) {
    for (const scenario of SCENARIOS) {
      if (opsOf(factory.name, scenario.id) === undefined) {
        const why = { hit: '', taggedHit: 'no tags', miss: 'hit-only floor', taggedMiss: 'no tags', invalidate: 'hit-only floor', invalidateTag: 'no tags', stampede: '' }[scenario.feature];
        missingWhy.set(`${factory.name}|${scenario.id}`, factory.name.includes('EVALSHA') ? 'a hit-only floor' : why || 'not supported');
      }
    }
  }
}

const lines: string[] = [];
const command = `npm run bench:peers${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const machine = machineLine();
const versions = [
  `node ${process.version}`,
  `redis-server ${redisVersion}`,
  memcachedVersion,
  `ioredis ${version('ioredis')}`,
  `memcache-client ${version('memcache-client')}`,
  `hermes-cache ${version('..')} (this tree)`,
  `bentocache ${version('bentocache')}`,
  `cache-manager ${version('cache-manager')}`,
  `keyv ${version('keyv')}`,
  `@keyv/redis ${version('@keyv/redis')}`,
  `cacheable ${version('cacheable')}`,
  `lru-cache ${version('lru-cache')}`,
].join(', ');
lines.push('# hermes beside its peers and the raw limit');
lines.push('');
lines.push(`- command: \`${command}\` (${ROUNDS} interleaved rounds of ${ROUND_MS} ms after a warm-up round; medians)`);
lines.push(`- date: ${new Date().toISOString()} · run time ${fmt((Date.now() - started) / 60_000, 1)} min`);
lines.push(`- machine: ${machine}; client and servers share the cores; load average ${loadAtStart} at the start, ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the end`);
lines.push(`- versions: ${versions}`);
lines.push(`- workload: a 100-byte string value, ${fmt(HIT_KEYS)} keys per key space, tagged entries carry 3 tags, TTL 1 h; one library instance (its own connections) per row; all on 127.0.0.1`);
lines.push('');
lines.push('## Throughput (operations per second, median)');
lines.push('');
lines.push(`| library | ${SCENARIOS.map((s) => s.title).join(' | ')} |`);
lines.push(`| --- | ${SCENARIOS.map(() => '---:').join(' | ')} |`);
for (const name of names) {
  lines.push(`| ${name} | ${SCENARIOS.map((s) => { const v = opsOf(name, s.id); return v === undefined ? `n/a (${missingWhy.get(`${name}|${s.id}`) ?? ''})` : fmt(v); }).join(' | ')} |`);
}
lines.push('');
lines.push('## Cost per operation: requests sent · round trips · commands executed · redis-server CPU µs');
lines.push('');
lines.push(`Counted at concurrency 1 over ${COUNT_SAMPLE} operations after a warm pass over the same keys, through a`);
lines.push('counting proxy in front of the server (requests: top-level commands the client sent, pipelined');
lines.push('ones counted one each; round trips: bursts the client wrote after the server last wrote on that');
lines.push('connection) and by the server itself (Redis `INFO commandstats` deltas, commands run inside Lua');
lines.push('scripts included; memcached `stats`: every key of a get counts, plus sets and deletes); redis-server CPU:');
lines.push('`INFO cpu` (user + sys) growth per operation, network I/O included, at concurrency 1 (not measured for');
lines.push('memcached: —).');
lines.push('');
const costScenarios = SCENARIOS.filter((s) => s.concurrency !== 64 || !s.feature.endsWith('it'));
lines.push(`| library | ${costScenarios.map((s) => s.title.replace(', concurrency 1', '').replace(', concurrency 64', '')).join(' | ')} |`);
lines.push(`| --- | ${costScenarios.map(() => '---:').join(' | ')} |`);
for (const name of names) {
  lines.push(`| ${name} | ${costScenarios.map((s) => { const c = costOf(name, s.id); return c === undefined ? 'n/a' : `${fmt(c.requests, 2)} · ${fmt(c.roundTrips, 2)} · ${fmt(c.executed, 2)} · ${fmt(c.serverUsec, 1)}`; }).join(' | ')} |`);
}
lines.push('');
lines.push(`## In-process hit (nanoseconds per call, ${fmt(IN_PROCESS_CALLS)} sequential calls a round)`);
lines.push('');
const floorNs = inProcessNs.get('limit: hand-written LRU get, sync') ?? NaN;
lines.push('| library | ns per call | × floor |');
lines.push('| --- | ---: | ---: |');
for (const [name, ns] of inProcessNs) lines.push(`| ${name} | ${fmt(ns)} | ${fmt(ns / floorNs, 2)} |`);
lines.push('');
lines.push('## Stampede across processes (4 processes × 50 concurrent callers, one cold key, a 50 ms function)');
lines.push('');
lines.push('| library | computations | time to the last value (ms) | last value after the first computation ended (ms) | failed callers |');
lines.push('| --- | ---: | ---: | ---: | ---: |');
for (const row of stampedeRows) {
  lines.push(`| ${row.library} | ${row.computations} | ${fmt(row.lastValueMs, 1)} | ${fmt(row.lagAfterFirstComputationMs, 1)} | ${row.failures} |`);
}
lines.push('');
lines.push('## Memory on the server');
lines.push('');
lines.push('One entry (a 100-byte value, with 3 tags where the library has tags) on an empty Redis, each key with `MEMORY USAGE`;');
lines.push('then keys and `used_memory` growth per entry after 1,000 and 10,000 entries sharing the same 3 tags.');
lines.push('');
lines.push('| library | tagged | keys of one entry (bytes each) | bytes, one entry | keys at 1,000 | keys at 10,000 | bytes per entry at 1,000 | bytes per entry at 10,000 |');
lines.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const row of memoryRows) {
  const keys = row.oneEntryKeys.map((k) => `\`${k.key.length > 48 ? `${k.key.slice(0, 45)}…` : k.key}\` (${k.bytes})`).join('<br>');
  lines.push(
    `| ${row.library} | ${row.tagged ? 'yes' : 'no (no tags)'} | ${keys} | ${fmt(row.oneEntryBytes)} | ${fmt(row.keysAt[1000])} | ${fmt(row.keysAt[10_000])} | ${fmt(row.bytesPerEntryAt[1000])} | ${fmt(row.bytesPerEntryAt[10_000])} |`,
  );
}

// --- Targets.
const share = (a: number | undefined, b: number | undefined): number => (a === undefined || b === undefined ? NaN : a / b);
const verdict = (ok: boolean): string => (ok ? '**met**' : '**NOT met**');
const H = hermesRedis.name;
const targets: string[] = [];
const evalshaShare = share(opsOf(H, 'thit64'), opsOf('limit: raw EVALSHA of the read script', 'thit64'));
targets.push(`3-tag hit at concurrency 64 ≥ 85% of raw EVALSHA: ${fmt(evalshaShare * 100)}% — ${verdict(evalshaShare >= 0.85)}`);
const bentoShare = share(opsOf(H, 'thit64'), opsOf(bentoRedis.name, 'thit64'));
targets.push(`3-tag hit at concurrency 64 ≥ 4× bentocache (Redis): ${fmt(bentoShare, 2)}× — ${verdict(bentoShare >= 4)}`);
const cacheableShare = share(opsOf(H, 'thit64'), opsOf(cacheableRedis.name, 'thit64'));
targets.push(`3-tag hit at concurrency 64 ≥ 2× cacheable (Redis): ${fmt(cacheableShare, 2)}× — ${verdict(cacheableShare >= 2)}`);
for (const id of ['hit1', 'hit64']) {
  const s = share(opsOf(H, id), opsOf('limit: raw ioredis GET / MGET', id));
  targets.push(`untagged hit at concurrency ${id.slice(3)} ≥ 85% of raw GET: ${fmt(s * 100)}% — ${verdict(s >= 0.85)}`);
}
const missShare = share(opsOf(H, 'miss'), opsOf(cacheManagerRedis.name, 'miss'));
targets.push(`miss at concurrency 64 ≥ 80% of cache-manager (Keyv Redis, no lock): ${fmt(missShare * 100)}% — ${verdict(missShare >= 0.8)}`);
for (const [id, want, what] of [['hit1', 1, 'requests per hit'], ['thit1', 1, 'requests per 3-tag hit'], ['miss', 2, 'requests per miss'], ['tmiss', 2, 'requests per 3-tag miss'], ['invtag', 1, 'requests per invalidation by tag']] as const) {
  const c = costOf(H, id);
  targets.push(`${what} = ${want}: ${fmt(c?.requests, 2)} (round trips ${fmt(c?.roundTrips, 2)}) — ${verdict(c !== undefined && c.requests <= want)}`);
}
for (const id of ['thit1', 'thit64']) {
  const s = share(opsOf(hermesNear.name, id), opsOf(bentoTiered.name, id));
  targets.push(`near-cache 3-tag hit at concurrency ${id.slice(4)} ≥ 10× bentocache (memory + Redis + bus): ${fmt(s, 2)}× — ${verdict(s >= 10)} (requests per hit: hermes ${fmt(costOf(hermesNear.name, 'thit1')?.requests, 2)}, bentocache ${fmt(costOf(bentoTiered.name, 'thit1')?.requests, 2)})`);
}
const hermesNs = inProcessNs.get('hermes (memory)');
const cmNs = inProcessNs.get('cache-manager (memory)');
targets.push(`in-process hit no slower than cache-manager (memory): ${fmt(hermesNs)} ns vs ${fmt(cmNs)} ns — ${verdict(hermesNs !== undefined && cmNs !== undefined && hermesNs <= cmNs)}`);
targets.push(`in-process hit ≤ 2× the LRU floor: ${fmt(share(hermesNs, floorNs), 2)}× — ${verdict(share(hermesNs, floorNs) <= 2)}`);
const hermesStampede = stampedeRows.find((r) => r.library === H);
targets.push(`stampede: 1 computation across 4 processes: ${hermesStampede?.computations ?? '—'} — ${verdict(hermesStampede?.computations === 1)}`);
lines.push('');
lines.push('## Targets (hermes on Redis unless said otherwise; ratios within this run)');
lines.push('');
for (const t of targets) lines.push(`- ${t}`);
lines.push('');
lines.push('![chart](chart.svg)');
lines.push('');

await mkdir(new URL('../../../bench/', import.meta.url), { recursive: true });
await writeFile(new URL('../../../bench/results.md', import.meta.url), lines.join('\n'));

const bars: ChartBar[] = [];
for (const scenario of SCENARIOS) {
  for (const name of names) {
    if (name.includes('EVALSHA') && !scenario.feature.endsWith('it')) continue;
    const o = opsOf(name, scenario.id);
    bars.push({ scenario: scenario.title, library: name, opsPerSecond: o, requestsPerOp: costOf(name, scenario.id)?.requests, missing: missingWhy.get(`${name}|${scenario.id}`) });
  }
}
const chartData: ChartData = {
  bars,
  inProcess: [...inProcessNs].map(([library, nsPerCall]) => ({ library, nsPerCall })),
  subtitle: `${command} · ${new Date().toISOString().slice(0, 10)} · ${machine} · node ${process.version}, redis ${redisVersion}`,
};
await writeFile(new URL('../../../bench/chart-data.json', import.meta.url), `${JSON.stringify(chartData, null, 1)}\n`);
await writeFile(new URL('../../../bench/chart.svg', import.meta.url), await renderChart(chartData));
console.log(lines.join('\n'));
log('wrote bench/results.md and bench/chart.svg');
