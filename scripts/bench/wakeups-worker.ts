/**
 * One process of the wake-ups benchmark (`wakeups.ts`): a Hermes on its own RedisBackend,
 * imported from the source tree given as `root` (this one, or the "before" tree), driven by
 * its parent over IPC. It counts the pub/sub messages its connections receive.
 *
 * Commands: `wait` (become a waiter once: read a lock the parent holds and wait for its
 * release, as every process that ever waited has done), `misses` (a steady rate of misses
 * on keys nobody else reads, for `ms`), `stampede` (every worker calls one slow function at
 * once), `close`.
 */

import { Redis } from 'ioredis';

interface Start { root: string; port: number; prefix: string }
type Command =
  | { cmd: 'hold' }
  | { cmd: 'release' }
  | { cmd: 'wait' }
  | { cmd: 'misses'; rate: number; ms: number; start: number }
  | { cmd: 'stampede'; key: string; at: number }
  | { cmd: 'close' };

const start = JSON.parse(process.argv[2] ?? '{}') as Start;

// Every message event of every ioredis connection of this process (the subscriber included).
let messages = 0;
const emit: (this: Redis, event: string | symbol, ...args: unknown[]) => boolean = Redis.prototype.emit; // eslint-disable-line @typescript-eslint/unbound-method -- called with its `this` below
Redis.prototype.emit = function countingEmit(this: Redis, event: string | symbol, ...args: unknown[]): boolean {
  if (event === 'message' || event === 'smessage') messages++;
  return emit.call(this, event, ...args);
};

const { Hermes } = (await import(`${start.root}/src/index.ts`)) as typeof import('../../src/index.js');
const { RedisBackend } = (await import(`${start.root}/src/backend/redis/index.ts`)) as typeof import('../../src/backend/redis/index.js');
const { Keyspace } = (await import(`${start.root}/src/keys.ts`)) as typeof import('../../src/keys.js');

const backend = new RedisBackend({ host: '127.0.0.1', port: start.port });
// 16 processes on 2 cores answer late: a generous backendTimeout keeps every miss a locked miss.
const cache = new Hermes(backend, { prefix: start.prefix, ttl: 600, lockWait: 5_000, backendTimeout: 10_000 });
const miss = cache.wrap(async function missed(key: string): Promise<number> {
  return key.length;
});
const slow = cache.wrap(async function slow(_key: string): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 100));
  return Date.now(); // when the computation ended: its waiters measure from it
});
// The lock every process waits for once, under the cache's prefix (its release channel).
const keys = new Keyspace(start.prefix);
const held = keys.entryRef('held', 'h');
let counter = 0;

const send = (message: unknown): void => {
  process.send?.(message);
};

process.on('message', (message: Command) => {
  void handle(message).catch((error: unknown) => {
    send({ error: String(error) });
  });
});
send({ ready: true });

async function handle(command: Command): Promise<void> {
  if (command.cmd === 'hold' || command.cmd === 'release') {
    if (command.cmd === 'release') await backend.release(held, 'holder');
    else await backend.read({ ref: held, tagKeys: [], lockToken: 'holder', lockTtlMs: 10_000 });
    send({ done: command.cmd });
    return;
  }
  if (command.cmd === 'wait') {
    const reply = await backend.read({ ref: held, tagKeys: [], lockToken: `w${process.pid}`, lockTtlMs: 10_000 });
    const waiting = backend.waitForRelease(held, 5_000);
    send({ waiting: !reply.locked });
    send({ woken: await waiting });
    return;
  }
  if (command.cmd === 'misses') {
    const before = messages;
    const interval = 1000 / command.rate;
    const calls: Promise<number>[] = [];
    const base = `${process.pid}:${++counter}:`; // keys nobody else reads
    let i = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = Date.now();
        // Catch up to the schedule: the rate is kept even when a tick comes late.
        while (i * interval <= now - command.start && i * interval < command.ms) calls.push(miss(`${base}${i++}`));
        if (i * interval >= command.ms) resolve();
        else setTimeout(tick, 5);
      };
      setTimeout(tick, Math.max(0, command.start - Date.now()));
    });
    await Promise.all(calls);
    await new Promise((resolve) => setTimeout(resolve, 100)); // late messages
    send({ misses: i, messages: messages - before, computations: cache.stats().computations });
    return;
  }
  if (command.cmd === 'stampede') {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, command.at - Date.now())));
    const computedBefore = cache.stats().computations;
    const value = await slow(command.key);
    send({ servedAfterMs: Date.now() - value, computed: cache.stats().computations - computedBefore, value });
    return;
  }
  await cache.close();
  send({ closed: true });
  process.exit(0);
}
