/**
 * Tick batching (the `batch` option, on by default): the reads, and the writes, that concurrent
 * calls issue in one tick go to Redis as `readMany.lua` / `writeMany.lua` calls of at most
 * {@link TICK_BATCH_SIZE} entries, each entry answered exactly as its own `read.lua` /
 * `write-2.lua` call would answer it. Counted with MONITOR on a real server.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { TICK_BATCH_SIZE } from '../../src/backend/redis/backend.js';
import { TickBatch } from '../../src/backend/redis/batch.js';
import type { ReadReply, ReadRequest } from '../../src/backend/backend.js';
import { EntryCodec, Hermes, OptionError } from '../../src/index.js';
import { UNTAGGED_HASH } from '../../src/codec.js';
import type { RedisBackendOptions } from '../../src/backend/redis/index.js';
import { type EntryRef, Keyspace } from '../../src/keys.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import { CommandLog, scriptOf } from './command-log.js';

const LOCK_TTL_MS = 30_000;
const idle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));
let prefixCounter = 0;

describe('RedisBackend tick batching', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let admin: Redis;
  let log: CommandLog;
  let keys: Keyspace;
  const codec = new EntryCodec();
  const opened: { close(): Promise<void> }[] = [];

  before(async function () {
    server = await startRedisServer();
    admin = new Redis({ host: server.host, port: server.port });
    log = await CommandLog.open(server);
  });

  after(async function () {
    await log.close();
    admin.disconnect();
    await server.stop();
  });

  beforeEach(function () {
    keys = new Keyspace(`batch${process.pid}x${++prefixCounter}`);
  });

  afterEach(async function () {
    for (const backend of opened.splice(0)) await backend.close();
  });

  function open(options: { batch?: boolean; nearCache?: boolean } = {}): RedisBackend {
    const backend = new RedisBackend({ host: server.host, port: server.port, ...options });
    backend.attach({ prefix: keys.prefix, codec });
    opened.push(backend);
    return backend;
  }

  const refOf = (n: number): EntryRef => keys.entryRef('f', String(n));
  const read = (backend: RedisBackend, n: number, token?: string): Promise<ReadReply> =>
    backend.read({ ref: refOf(n), tagKeys: [], lockToken: token, lockTtlMs: LOCK_TTL_MS } satisfies ReadRequest);
  const entryOf = (value: unknown): Uint8Array => codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: Date.now() + 60_000, value });
  /** The scripts of the recorded commands, by name, with how many entries each call carried. */
  const scripts = (commands: Awaited<ReturnType<CommandLog['record']>>): string[] =>
    commands.filter((c) => scriptOf(c) !== undefined).map((c) => {
      const name = scriptOf(c) ?? c.name;
      if (name === 'readMany') return `readMany×${c.args[2 + Number(c.args[1])] ?? '?'}`;
      if (name === 'writeMany') return `writeMany×${Number(c.args[1]) / 2}`;
      return name;
    });

  it(`the reads of one tick go as readMany.lua calls of at most ${TICK_BATCH_SIZE}, each answered as read.lua answers it alone`, async function () {
    const batched = open();
    const plain = open({ batch: false });
    // 0–29 hits, 30–59 misses this read locks, 60–79 misses whose lock another caller holds.
    for (let n = 0; n < 30; n++) expect(await plain.write({ ref: refOf(n), entry: entryOf(`v${n}`), ttlMs: 60_000, lockToken: undefined })).to.equal(true);
    for (let n = 60; n < 80; n++) expect((await read(plain, n, `other${n}`)).locked).to.equal(true);
    await idle();
    let replies: ReadReply[] = [];
    const commands = await log.record(async () => {
      replies = await Promise.all(Array.from({ length: 80 }, (_, n) => read(batched, n, `mine${n}`)));
    });
    // The tick's first read goes out at once (the reads before were no crowd), the other 79
    // in calls of at most 32 entries, in the order they came.
    expect(scripts(commands)).to.deep.equal(['read', `readMany×${TICK_BATCH_SIZE}`, `readMany×${TICK_BATCH_SIZE}`, `readMany×${79 - 2 * TICK_BATCH_SIZE}`]);
    replies.forEach((reply, n) => {
      if (n < 30) {
        expect(reply.stale, `${n}`).to.equal(false);
        expect(codec.decode(reply.entry as Uint8Array).value, `${n}`).to.equal(`v${n}`);
      } else {
        expect(reply.entry, `${n}`).to.equal(undefined);
        expect(reply.tagHash, `${n}`).to.equal(UNTAGGED_HASH);
        expect(reply.locked, `${n}`).to.equal(n < 60);
      }
    });
    for (let n = 30; n < 80; n++) expect(await admin.get(refOf(n).lockKey), `lock ${n}`).to.equal(n < 60 ? `mine${n}` : `other${n}`);
  });

  it('the writes of one tick go as writeMany.lua calls: each stored only while its lock is still held, its lock released', async function () {
    const backend = open();
    for (let n = 0; n < 40; n++) expect((await read(backend, n, `t${n}`)).locked).to.equal(true);
    // Five locks are gone (an invalidation while their holders computed): those writes are dropped.
    for (let n = 0; n < 5; n++) await backend.invalidate(refOf(n));
    await idle();
    let stored: boolean[] = [];
    const commands = await log.record(async () => {
      stored = await Promise.all(Array.from({ length: 40 }, (_, n) => backend.write({ ref: refOf(n), entry: entryOf(n), ttlMs: 60_000, lockToken: `t${n}` })));
    });
    expect(scripts(commands)).to.deep.equal(['write', `writeMany×${TICK_BATCH_SIZE}`, `writeMany×${39 - TICK_BATCH_SIZE}`]);
    expect(stored).to.deep.equal(Array.from({ length: 40 }, (_, n) => n >= 5));
    for (let n = 0; n < 40; n++) {
      const bytes = await admin.getBuffer(refOf(n).entryKey);
      if (n < 5) expect(bytes, `${n}`).to.equal(null);
      else expect(codec.decode(bytes as Buffer).value, `${n}`).to.equal(n);
      expect(await admin.exists(refOf(n).lockKey), `lock ${n}`).to.equal(0);
    }
    // A batched write stores the same bytes a lone write-2.lua stores, and the same TTL.
    expect(await admin.pttl(refOf(7).entryKey)).to.be.within(59_000, 60_000);
  });

  it('a lone read or write (nothing else in its tick, no crowd in the tick before) is its own read.lua / write-2.lua call', async function () {
    const backend = open();
    await read(backend, 0, 'warm');
    await idle();
    const commands = await log.record(async () => {
      expect((await read(backend, 1, 'a')).locked).to.equal(true);
      expect(await backend.write({ ref: refOf(1), entry: entryOf(1), ttlMs: 60_000, lockToken: 'a' })).to.equal(true);
    });
    expect(scripts(commands)).to.deep.equal(['read', 'write']);
  });

  it('batch: false sends every read and write of a crowd as its own script call', async function () {
    const backend = open({ batch: false });
    const commands = await log.record(async () => {
      await Promise.all(Array.from({ length: 10 }, (_, n) => read(backend, n, `t${n}`)));
      await Promise.all(Array.from({ length: 10 }, (_, n) => backend.write({ ref: refOf(n), entry: entryOf(n), ttlMs: 60_000, lockToken: `t${n}` })));
    });
    expect(scripts(commands)).to.deep.equal([...Array<string>(10).fill('read'), ...Array<string>(10).fill('write')]);
  });

  it('with the near-cache, off unless asked for (batch: true): a crowd of reads is one read.lua each; asked for, readMany.lua with the lock read back', async function () {
    const near = open({ nearCache: true });
    await read(near, 0, 'warm');
    const plain = await log.record(() => Promise.all(Array.from({ length: 10 }, (_, n) => read(near, n + 1, `t${n}`))));
    expect(scripts(plain)).to.deep.equal(Array<string>(10).fill('read'));
    // read.lua's ARGV[6]: '1', the lock a read takes is read back (PTTL) on the tracked connection.
    expect(plain.filter((c) => scriptOf(c) === 'read').every((c) => c.args.at(-1) === '1')).to.equal(true);
    const asked = open({ nearCache: true, batch: true });
    await read(asked, 50, 'warm');
    await idle();
    let replies: ReadReply[] = [];
    const batched = await log.record(async () => {
      replies = await Promise.all(Array.from({ length: 10 }, (_, n) => read(asked, n + 20, `u${n}`)));
    });
    expect(scripts(batched)).to.deep.equal(['read', 'readMany×9']);
    expect(replies.map((r) => r.locked)).to.deep.equal(Array<boolean>(10).fill(true));
    const many = batched.find((c) => scriptOf(c) === 'readMany');
    expect(many?.args[2 + Number(many.args[1]) + 2], 'readMany.lua ARGV[3]').to.equal('1');
    // Without the near-cache nothing is read back: the TTL of a lock just taken is its own.
    const untracked = open();
    expect((await read(untracked, 70, 'v')).locked).to.equal(true);
    const lone = await log.record(() => read(untracked, 71, 'w'), { withLua: true });
    expect(lone.map((c) => c.name)).to.include('set');
    expect(lone.map((c) => c.name)).to.not.include('pttl');
  });

  it('writeMany.lua wakes the waiters of the locks it releases, and publishes for no other lock', async function () {
    const holder = open();
    const waiter = open();
    for (let n = 0; n < 20; n++) expect((await read(holder, n, `h${n}`)).locked).to.equal(true);
    const found = await read(waiter, 7, 'w');
    expect(found.locked).to.equal(false);
    const woken = waiter.waitForRelease(refOf(7), 10_000);
    // The waiter subscribes to lock 7's channel: wait until the server has it.
    for (let i = 0; i < 200 && Number((await admin.call('PUBSUB', 'NUMSUB', refOf(7).lockKey) as unknown[])[1]) === 0; i++) await idle();
    const publishedBefore = await publishCalls();
    const started = Date.now();
    const commands = await log.record(async () => {
      await Promise.all(Array.from({ length: 20 }, (_, n) => holder.write({ ref: refOf(n), entry: entryOf(n), ttlMs: 60_000, lockToken: `h${n}` })));
    });
    expect(scripts(commands).filter((s) => s.startsWith('writeMany'))).to.not.be.empty;
    expect(await woken).to.equal(true);
    expect(Date.now() - started).to.be.below(5000);
    expect(await publishCalls()).to.equal(publishedBefore + 1);
    expect(codec.decode((await read(waiter, 7)).entry as Uint8Array).value).to.equal(7);
  });

  it('reads and writes queued in the tick close() is called in go out before the connection closes, nothing lost', async function () {
    const backend = open();
    const other = open();
    for (let n = 0; n < 5; n++) expect((await read(backend, n, `t${n}`)).locked).to.equal(true);
    await idle();
    const writes = Array.from({ length: 5 }, (_, n) => backend.write({ ref: refOf(n), entry: entryOf(n), ttlMs: 60_000, lockToken: `t${n}` }));
    const reads = Array.from({ length: 5 }, (_, n) => read(backend, n + 10, `r${n}`));
    await backend.close();
    expect(await Promise.all(writes)).to.deep.equal(Array<boolean>(5).fill(true));
    expect((await Promise.all(reads)).map((r) => r.locked)).to.deep.equal(Array<boolean>(5).fill(true));
    for (let n = 0; n < 5; n++) expect(codec.decode((await read(other, n)).entry as Uint8Array).value).to.equal(n);
    // Calls made after close() are refused.
    await read(backend, 99).then(
      () => expect.fail('a read after close()'),
      (error: unknown) => expect(error).to.have.property('name', 'RedisBackendClosedError'),
    );
  });

  it('64 concurrent misses through Hermes in two processes: every value right, each key computed once, all cached', async function () {
    const make = (): Hermes<RedisBackendOptions> => {
      const cache = new Hermes(RedisBackend, { host: server.host, port: server.port, prefix: keys.prefix });
      opened.push(cache);
      return cache;
    };
    let computed = 0;
    const fns = [make(), make()].map((cache) =>
      cache.wrap(async function square(n: number) {
        computed++;
        await idle();
        return n * n;
      }, { tags: ['squares'] }),
    );
    const ns = Array.from({ length: 64 }, (_, n) => n);
    const results = await Promise.all(fns.flatMap((f) => ns.map((n) => f(n))));
    expect(results).to.deep.equal([...ns.map((n) => n * n), ...ns.map((n) => n * n)]);
    expect(computed).to.equal(64);
    const again = await log.record(async () => {
      expect(await Promise.all(ns.map((n) => (fns[0] as (n: number) => Promise<number>)(n)))).to.deep.equal(ns.map((n) => n * n));
    });
    expect(computed).to.equal(64);
    // Hits, read in batches: a readMany.lua call or more, nothing written.
    const scriptsRun = again.map(scriptOf).filter((s) => s !== undefined);
    expect(scriptsRun).to.include('readMany');
    expect(scriptsRun.every((s) => s === 'read' || s === 'readMany'), scriptsRun.join(', ')).to.equal(true);
  });

  it('TickBatch: a crowd is queued to the end of its tick and sent in order, a full batch at once; a send that throws rejects every call it carried', async function () {
    const sent: number[][] = [];
    const batch = new TickBatch<number, number>((pending) => {
      sent.push(pending.map((p) => p.request));
      for (const p of pending) p.resolve(p.request * 10);
    }, 3);
    expect(batch.add(1), 'the first call of a quiet tick goes at once').to.equal(undefined);
    const queued = [2, 3, 4, 5].map((n) => batch.add(n) ?? Promise.reject(new Error(`call ${n} was not queued`)));
    expect(sent, 'the third queued call filled a batch of 3').to.deep.equal([[2, 3, 4]]);
    expect(await Promise.all(queued)).to.deep.equal([20, 30, 40, 50]);
    expect(sent).to.deep.equal([[2, 3, 4], [5]]);
    // After a crowd, the next tick's first call is queued too.
    const after = batch.add(6);
    expect(after).to.be.a('promise');
    expect(await after).to.equal(60);

    const failing = new TickBatch<number, number>(() => {
      throw new Error('send refused');
    }, 32);
    expect(failing.add(1)).to.equal(undefined);
    const refused = [2, 3].map((n) => failing.add(n) ?? Promise.reject(new Error(`call ${n} was not queued`)));
    const settled = await Promise.allSettled(refused);
    expect(settled.map((s) => (s.status === 'rejected' ? (s.reason as Error).message : 'fulfilled'))).to.deep.equal(['send refused', 'send refused']);
  });

  it('batch must be a boolean: anything else is an OptionError naming it', function () {
    expect(() => new RedisBackend({ batch: 'yes' as unknown as boolean })).to.throw(OptionError).with.property('option', 'batch');
    expect(() => new RedisBackend({ batch: 1 as unknown as boolean })).to.throw(OptionError, /batch must be true or false, got 1/);
  });

  async function publishCalls(): Promise<number> {
    return Number(/^cmdstat_publish:calls=(\d+)/m.exec(await admin.info('commandstats'))?.[1] ?? 0);
  }
});
