/**
 * Profiles one library in one scenario of the peer benchmark, for finding where a missed
 * target's time goes. Run under the V8 profiler, then summarise the profile:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx scripts/bench/peers/profile.ts 'hermes (Redis)' thit64 5000
 *   npx tsx scripts/bench/peers/profile.ts --summary /tmp/prof/<file>.cpuprofile
 *
 * `taskset -c 0 node …` with `PIN_SERVER_CPU=0` (one shared core) or `PIN_SERVER_CPU=1` (a core
 * each) shows how much the figures depend on where the scheduler puts the client and the server.
 *
 * Arguments: the library name (as in the table), the scenario id (hit1, hit64, thit1, thit64,
 * miss64, tmiss64: a miss reads, computes and writes a key never used before) and the
 * milliseconds to run. Prints the throughput reached and the server time per call.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { redisScripts } from '../../../src/backend/redis/scripts.js';
import { startRedisServer } from '../../../test/helpers/redis-server.js';
import { HIT_KEYS, NETWORK_LIBRARIES } from './libraries.js';
import { redisCpuSeconds, throughput } from './measure.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}

/** Self time by function (top 25), from a `.cpuprofile`, as percentages of the samples. */
function summarise(path: string): void {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as { nodes: ProfileNode[] };
  const total = profile.nodes.reduce((sum, n) => sum + n.hitCount, 0);
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '');
    const name = `${functionName || '(anonymous)'} ${where}:${lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + node.hitCount);
    const pkg = url === '' ? `(${functionName})` : url.includes('node_modules/') ? (where.split('/')[0] ?? where) : url.startsWith('node:') ? 'node internals' : where.split('/').slice(0, 2).join('/');
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + node.hitCount);
  }
  const top = (map: Map<string, number>, n: number): string[] =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, hits]) => `${((100 * hits) / total).toFixed(1).padStart(5)}%  ${name}`);
  console.log(`samples: ${total}\n\nby package or folder:\n${top(byPackage, 15).join('\n')}\n\nby function (self):\n${top(byFunction, 25).join('\n')}`);
}

if (process.argv[2] === '--summary') {
  summarise(process.argv[3] ?? '');
} else {
  const [name = 'hermes (Redis)', scenario = 'thit64', msText = '5000'] = process.argv.slice(2);
  const factory = NETWORK_LIBRARIES.find((f) => f.name === name);
  if (factory === undefined) throw new Error(`unknown library ${name}`);
  const tagged = scenario.startsWith('t');
  const misses = /^t?miss/.test(scenario);
  const concurrency = Number(scenario.replace(/^t?(hit|miss)/, ''));
  let freshKey = 1_000_000;
  /** The key of call `i`: one of the warm keys, or for misses a key never used before. */
  const keyOf = (i: number): number => (misses ? freshKey++ : i % HIT_KEYS);
  const server = await startRedisServer();
  const admin = new Redis(server.port, '127.0.0.1');
  try {
    await admin.script('LOAD', redisScripts().read.source);
    // PIN_SERVER_CPU=n pins redis-server to CPU n (taskset), to compare a shared core with two.
    if (process.env.PIN_SERVER_CPU !== undefined) {
      const pid = /process_id:(\d+)/.exec(await admin.info('server'))?.[1] ?? '';
      execFileSync('taskset', ['-p', '-c', process.env.PIN_SERVER_CPU, pid], { stdio: 'ignore' });
    }
    const servers = { redisPort: server.port, memcachedPort: 0 };
    for (const fill of [factory.name.startsWith('limit') ? NETWORK_LIBRARIES.find((f) => f.name === 'hermes (Redis)') : factory]) {
      const library = fill?.make(servers);
      if (library === undefined) continue;
      for (let i = 0; i < HIT_KEYS; i++) await library.get(i, tagged);
      await library.close();
    }
    const library = factory.make(servers);
    await throughput(concurrency, 1000, (i) => library.get(keyOf(i), tagged)); // warm-up
    const cpuBefore = await redisCpuSeconds(admin);
    const clientBefore = process.cpuUsage();
    const start = performance.now();
    let calls = 0;
    const perSecond = await throughput(concurrency, Number(msText), async (i) => {
      calls++;
      return library.get(keyOf(i), tagged);
    });
    const elapsed = performance.now() - start;
    const client = process.cpuUsage(clientBefore);
    const cpuAfter = await redisCpuSeconds(admin);
    console.log(
      `${name} ${scenario}: ${perSecond.toFixed(0)} calls/s; per call: client CPU ${((client.user + client.system) / calls).toFixed(1)} µs, ` +
        `redis-server CPU ${(((cpuAfter - cpuBefore) * 1e6) / calls).toFixed(1)} µs; ` +
        `client busy ${((client.user + client.system) / 10 / elapsed).toFixed(0)}%, server busy ${(((cpuAfter - cpuBefore) * 1e5) / elapsed).toFixed(0)}% of the wall time`,
    );
    await library.close();
  } finally {
    admin.disconnect();
    await server.stop();
  }
}
