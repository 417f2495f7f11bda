/**
 * `npm run bench`: hermes' own benchmarks, printed as markdown tables with the command that
 * made them. Figures are medians of interleaved rounds; compare them as ratios within one run.
 * Servers are started on free loopback ports and stopped at the end.
 *
 *   npm run bench                 # every section
 *   npm run bench -- memory redis # only these sections (memory, redis, memcached, cluster, near)
 *   npm run bench -- near         # the Redis near-cache: hits, invalidation propagation, server cost, Zipf
 *   npm run bench -- batch        # many() of 100 keys, 10% misses: one script call vs a pipeline vs single calls
 *   npm run bench -- early        # early refresh: a hot key across its expiry, 4 processes, with and without
 *   npm run bench -- wakeups      # lock wake-ups: messages and server CPU per miss, 1/4/16 processes, before and after
 *   npm run bench -- tick         # tick batching: misses at 64, batch on and off, with and without the near-cache
 *
 * The cluster section also writes bench/cluster-results.md, bench/cluster.svg and its data.
 */
import os from 'node:os';
import { benchBatch, formatBatchTables } from './batch.js';
import { printClusterBench } from './cluster.js';
import { benchInProcess } from './inprocess.js';
import { benchMemcached, formatMemcachedTable } from './memcached.js';
import { benchRedis, formatRedisTable, redisVerdicts } from './redis.js';
import { printNearBench } from './near.js';
import { printEarlyBench } from './early.js';
import { fmt } from './measure.js';
import { printWakeupsBench } from './wakeups.js';
import { printTickBench } from './tick.js';

// Sections are the arguments before the first option (`--before`, `--rate`, … belong to a section).
const firstOption = process.argv.findIndex((arg, i) => i >= 2 && arg.startsWith('--'));
const wanted = new Set(process.argv.slice(2, firstOption < 0 ? undefined : firstOption));
const run = (section: string): boolean => wanted.size === 0 || wanted.has(section);

const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

console.log(`# hermes benchmark\n`);
console.log(
  `command: ${command} · node ${process.version} · ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} · ${new Date().toISOString()}\n`,
);

if (run('memory')) {
  console.log('## In-process hit (MemoryBackend), small arguments (a number and a string), 1,000 keys\n');
  const rows = await benchInProcess();
  console.log('| case | ns per call | × floor |');
  console.log('| --- | ---: | ---: |');
  for (const row of rows) console.log(`| ${row.case} | ${fmt(row.nsPerCall)} | ${fmt(row.ratio, 2)} |`);
  const hit = rows.find((r) => r.case === 'hermes wrap hit (live values)');
  if (hit) {
    console.log(`\nTarget: an untagged hit at most 2× the floor — ${hit.ratio <= 2 ? 'met' : 'NOT met'} (${fmt(hit.ratio, 2)}×).\n`);
  }
}

if (run('redis')) {
  console.log('## Redis hit throughput (RedisBackend through ioredis, one connection, loopback)\n');
  const rows = await benchRedis();
  console.log(formatRedisTable(rows));
  console.log(`\nTarget: ${redisVerdicts(rows).join('; ')}.\n`);
}

if (run('memcached')) {
  console.log('## Memcached hit throughput (MemcachedBackend through memcache-client, loopback)\n');
  const rows = await benchMemcached();
  console.log(formatMemcachedTable(rows));
  const verdicts = rows
    .filter((r) => r.case.startsWith('hermes'))
    .map((row) => {
      const raw = rows.find((r) => r.concurrency === row.concurrency && r.case.startsWith('raw client: multi-get'));
      const share = raw ? row.opsPerSecond / raw.opsPerSecond : 0;
      return `${row.case} at ${row.concurrency}: ${fmt(share * 100)}% ${share >= 0.85 ? 'met' : 'NOT met'}`;
    });
  console.log(`\nTarget: a wrap hit at least 85% of the raw multi-get — ${verdicts.join('; ')}.\n`);
}

if (run('near')) await printNearBench();

if (run('batch')) {
  console.log('## Batches: `wrapped.many(argsList)` on Redis\n');
  console.log(formatBatchTables(await benchBatch()));
  console.log('');
}
if (run('early')) await printEarlyBench(command);

if (run('wakeups')) await printWakeupsBench(command);

if (run('tick')) await printTickBench();

if (run('cluster')) await printClusterBench(command);
