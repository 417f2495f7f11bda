/**
 * Timing and counting primitives of the peer benchmark: throughput of concurrent loops,
 * nanoseconds per sequential call, medians, and server-side command counts.
 */

import net from 'node:net';
import type { Redis } from 'ioredis';

/** The median of `xs` (the upper one for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/**
 * Calls per second of `body` run by `concurrency` loops for `ms` milliseconds. Each loop
 * passes its own running index (loop number × 97, then +1 per call) to `body`.
 */
export async function throughput(concurrency: number, ms: number, body: (i: number) => Promise<unknown>): Promise<number> {
  let calls = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      let i = loop * 97;
      while (performance.now() < end) {
        await body(i++);
        calls++;
      }
    }),
  );
  return (calls * 1000) / (performance.now() - start);
}

/** Nanoseconds per call of `body` awaited `calls` times in sequence. */
export async function nsPerAwaitedCall(calls: number, body: (i: number) => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await body(i);
  return Number(process.hrtime.bigint() - start) / calls;
}

/** Nanoseconds per call of a synchronous `body` called `calls` times. */
export function nsPerSyncCall(calls: number, body: (i: number) => unknown): number {
  let sink = 0;
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) if (body(i) !== undefined) sink++;
  const ns = Number(process.hrtime.bigint() - start) / calls;
  if (sink < 0) console.log(sink); // keeps the calls observable
  return ns;
}

/** `INFO commandstats`: calls by command (commands run inside scripts included). */
export interface RedisCommandStats {
  readonly calls: ReadonlyMap<string, number>;
}

/** Reads `INFO commandstats`. */
export async function redisCommandStats(admin: Redis): Promise<RedisCommandStats> {
  const info = await admin.info('commandstats');
  const calls = new Map<string, number>();
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1] as string, Number(match[2]));
  return { calls };
}

/** Commands executed between two snapshots, the INFO commands themselves excluded. */
export function commandsBetween(before: RedisCommandStats, after: RedisCommandStats): number {
  let total = 0;
  for (const [command, n] of after.calls) if (command !== 'info') total += n - (before.calls.get(command) ?? 0);
  return total;
}

/**
 * CPU seconds redis-server has used (`INFO cpu`: used_cpu_user + used_cpu_sys), network I/O
 * and protocol parsing included. (`INFO commandstats` usec would count a script's inner
 * commands twice: once in the script's own time and again under their own names.)
 */
export async function redisCpuSeconds(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  return Number(/^used_cpu_user:([\d.]+)/m.exec(info)?.[1]) + Number(/^used_cpu_sys:([\d.]+)/m.exec(info)?.[1]);
}

/** Memcached `stats` counters, read on a fresh connection. */
export function memcachedStats(port: number): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.endsWith('END\r\n')) {
        socket.destroy();
        const stats = new Map<string, number>();
        for (const match of text.matchAll(/^STAT (\S+) (\S+)\r$/gm)) stats.set(match[1] as string, Number(match[2]));
        resolve(stats);
      }
    });
    socket.on('error', reject);
    socket.write('stats\r\n');
  });
}

/** Memcached commands executed between two `stats` snapshots (each key of a get counts). */
export function memcachedCommandsBetween(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): number {
  const counters = ['cmd_get', 'cmd_set', 'cmd_touch', 'delete_hits', 'delete_misses', 'incr_hits', 'incr_misses', 'decr_hits', 'decr_misses'];
  return counters.reduce((sum, name) => sum + (after.get(name) ?? 0) - (before.get(name) ?? 0), 0);
}
