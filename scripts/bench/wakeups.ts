/**
 * `npm run bench -- wakeups`: what lock wake-ups cost a fleet. 1, 4 and 16 processes (each a
 * Hermes on its own RedisBackend) share one redis-server; each first waits once for a lock
 * (as every process that ever waited has), then misses at a steady rate on keys nobody else
 * reads. Measured: the pub/sub messages the processes receive (counted in each process, on
 * every ioredis connection), the server's CPU (INFO cpu) and its PUBLISH calls (INFO
 * commandstats) per miss; then a stampede of all the processes on one key: computations, and
 * how long after the computation ended its waiters were served.
 *
 * The same run measures the "before" tree too: the sources of `--before <git ref>` (default:
 * the merge base of HEAD and main), extracted with `git archive` to a temporary folder, run by
 * the same worker.
 *
 *   npm run bench -- wakeups                       # before and after, 1/4/16 processes
 *   npm run bench -- wakeups --before 4f30413      # another "before"
 *   npm run bench -- wakeups --rate 200 --ms 3000  # misses per second per process, duration
 */

import { execFileSync, fork, type ChildProcess, type Serializable } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startRedisServer } from '../../test/helpers/redis-server.js';
import { fmt } from './measure.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const WORKER = path.join(HERE, 'wakeups-worker.ts');

const argText = (name: string): string | undefined => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
};
const RATE = Number(argText('--rate') ?? 200);
const MS = Number(argText('--ms') ?? 3_000);
const FLEETS = [1, 4, 16];

/** One fleet size of one tree. */
export interface WakeupsRow {
  readonly tree: 'before' | 'after';
  readonly processes: number;
  readonly misses: number;
  /** Messages received by one process, per miss of the fleet (averaged over the processes). */
  readonly messagesPerProcessPerMiss: number;
  /** Messages received by all the processes together, per miss. */
  readonly messagesPerMiss: number;
  /** The server's PUBLISH calls (scripts' included) per miss. */
  readonly publishesPerMiss: number;
  /** The server's CPU (user + sys) per miss, in µs, less what it spends idle over the same time. */
  readonly serverCpuUsPerMiss: number;
  /** The time the server spent in the scripts (EVAL/EVALSHA, their PUBLISH included) per miss, in µs. */
  readonly scriptUsPerMiss: number;
  /** The server's socket reads and writes (INFO stats) per miss: how much the clients batch their requests. */
  readonly readsPerMiss: number;
  readonly writesPerMiss: number;
  /** Computations in the stampede of every process on one key (1 expected). */
  readonly stampedeComputations: number;
  /** How long after the computation ended the slowest waiter was served, in ms. */
  readonly stampedeServedAfterMs: number;
}

interface Worker {
  readonly child: ChildProcess;
  next(): Promise<Record<string, unknown>>;
  send(message: Serializable): void;
}

function startWorker(root: string, port: number, prefix: string): Worker {
  const child = fork(WORKER, [JSON.stringify({ root, port, prefix })], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const inbox: Record<string, unknown>[] = [];
  const waiting: ((message: Record<string, unknown>) => void)[] = [];
  child.on('message', (message: Record<string, unknown>) => {
    if (typeof message.error === 'string') console.error(`worker ${String(child.pid)}: ${message.error}`);
    const taker = waiting.shift();
    if (taker) taker(message);
    else inbox.push(message);
  });
  return {
    child,
    next: () => {
      const message = inbox.shift();
      return message ? Promise.resolve(message) : new Promise((resolve) => waiting.push(resolve));
    },
    send: (message) => {
      child.send(message);
    },
  };
}

async function serverCounters(admin: Redis): Promise<{ cpu: number; publishes: number; scriptUs: number; reads: number; writes: number }> {
  const cpu = await admin.info('cpu');
  const io = await admin.info('stats');
  const stats = await admin.info('commandstats');
  const number = (text: string, re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
  return {
    cpu: number(cpu, /^used_cpu_user:([\d.]+)/m) + number(cpu, /^used_cpu_sys:([\d.]+)/m),
    publishes: number(stats, /^cmdstat_publish:calls=(\d+)/m) + number(stats, /^cmdstat_spublish:calls=(\d+)/m),
    scriptUs: number(stats, /^cmdstat_evalsha:calls=\d+,usec=(\d+)/m) + number(stats, /^cmdstat_eval:calls=\d+,usec=(\d+)/m),
    reads: number(io, /^total_reads_processed:(\d+)/m),
    writes: number(io, /^total_writes_processed:(\d+)/m),
  };
}

async function measureFleet(tree: 'before' | 'after', root: string, processes: number): Promise<WakeupsRow> {
  const server = await startRedisServer();
  const admin = new Redis({ host: server.host, port: server.port });
  const prefix = `wk${processes}`;
  const workers = Array.from({ length: processes }, () => startWorker(root, server.port, prefix));
  try {
    for (const worker of workers) await worker.next(); // ready
    // Every process waits once for a lock another process holds, and is woken by its release.
    const holder = startWorker(root, server.port, prefix);
    await holder.next();
    holder.send({ cmd: 'hold' });
    await holder.next();
    for (const worker of workers) worker.send({ cmd: 'wait' });
    for (const worker of workers) await worker.next(); // waiting
    await new Promise((resolve) => setTimeout(resolve, 200));
    holder.send({ cmd: 'release' });
    await holder.next();
    const woken = await Promise.all(workers.map((w) => w.next()));
    if (!woken.every((m) => m.woken === true)) console.error(`not every warm-up wait was woken: ${JSON.stringify(woken)}`);
    holder.send({ cmd: 'close' });
    await holder.next();
    // The server's own CPU while nobody sends anything (its cron), over as long as the misses run.
    const idleFrom = await serverCounters(admin);
    const idleStarted = Date.now();
    await new Promise((resolve) => setTimeout(resolve, MS));
    const idle = ((await serverCounters(admin)).cpu - idleFrom.cpu) / (Date.now() - idleStarted);
    const before = await serverCounters(admin);
    const measuredFrom = Date.now();
    const start = Date.now() + 300;
    for (const worker of workers) worker.send({ cmd: 'misses', rate: RATE, ms: MS, start });
    const results = await Promise.all(workers.map((w) => w.next()));
    const after = await serverCounters(admin);
    const busyCpu = after.cpu - before.cpu - idle * (Date.now() - measuredFrom);
    const misses = results.reduce((n, r) => n + Number(r.misses), 0);
    const messages = results.reduce((n, r) => n + Number(r.messages), 0);
    // The stampede: every process calls one slow function at the same moment.
    const at = Date.now() + 200;
    for (const worker of workers) worker.send({ cmd: 'stampede', key: 'hot', at });
    const stampede = await Promise.all(workers.map((w) => w.next()));
    return {
      tree,
      processes,
      misses,
      messagesPerProcessPerMiss: messages / processes / misses,
      messagesPerMiss: messages / misses,
      publishesPerMiss: (after.publishes - before.publishes) / misses,
      serverCpuUsPerMiss: (busyCpu * 1e6) / misses,
      scriptUsPerMiss: (after.scriptUs - before.scriptUs) / misses,
      readsPerMiss: (after.reads - before.reads) / misses,
      writesPerMiss: (after.writes - before.writes) / misses,
      stampedeComputations: stampede.reduce((n, r) => n + Number(r.computed), 0),
      stampedeServedAfterMs: Math.max(...stampede.map((r) => Number(r.servedAfterMs))),
    };
  } finally {
    for (const worker of workers) worker.send({ cmd: 'close' });
    const exited = (w: Worker): Promise<void> =>
      new Promise((resolve) => {
        if (w.child.exitCode !== null) resolve();
        else w.child.once('exit', () => {
          resolve();
        });
      });
    await Promise.all(workers.map(exited));
    admin.disconnect();
    await server.stop();
  }
}

/** The sources of a git ref in a temporary folder (node_modules linked), removed by the returned function. */
function extractTree(ref: string): { root: string; remove: () => void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'hermes-before-'));
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive "${ref}" src lua package.json | tar -x -C "${root}"`]);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'));
  return { root, remove: () => { rmSync(root, { recursive: true, force: true }); } };
}

/** Measures both trees, every fleet size; the rows in order before/after per fleet size. */
export async function benchWakeups(): Promise<{ rows: WakeupsRow[]; beforeRef: string }> {
  const beforeRef = argText('--before') ?? execFileSync('git', ['-C', ROOT, 'merge-base', 'HEAD', 'main']).toString().trim();
  const before = extractTree(beforeRef);
  const rows: WakeupsRow[] = [];
  try {
    for (const processes of FLEETS) {
      rows.push(await measureFleet('before', before.root, processes));
      rows.push(await measureFleet('after', ROOT, processes));
    }
  } finally {
    before.remove();
  }
  return { rows, beforeRef };
}

/** Prints the section: the table with its command. */
export async function printWakeupsBench(command: string): Promise<void> {
  console.log(`## Lock wake-ups across a fleet: 1, 4 and 16 processes on one redis-server\n`);
  const { rows, beforeRef } = await benchWakeups();
  console.log(
    `Each process waits once for a lock, then misses ${RATE}/s for ${MS} ms on keys nobody else reads; then all of them call one slow (100 ms) function at once. ` +
      `"before" is \`${beforeRef.slice(0, 12)}\` (git archive), "after" this tree. Command: \`${command}\`.\n`,
  );
  console.log('| tree | processes | misses | messages per process per miss | messages per miss (all processes) | PUBLISH per miss | server CPU per miss (µs) | script time per miss (µs) | socket reads / writes per miss | stampede: computations | stampede: slowest waiter served after the computation (ms) |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.tree} | ${r.processes} | ${r.misses} | ${fmt(r.messagesPerProcessPerMiss, 3)} | ${fmt(r.messagesPerMiss, 2)} | ${fmt(r.publishesPerMiss, 2)} | ${fmt(r.serverCpuUsPerMiss, 1)} | ${fmt(r.scriptUsPerMiss, 1)} | ${fmt(r.readsPerMiss, 2)} / ${fmt(r.writesPerMiss, 2)} | ${r.stampedeComputations} | ${fmt(r.stampedeServedAfterMs, 0)} |`,
    );
  }
  console.log('');
}
