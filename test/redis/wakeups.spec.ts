import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { EntryCodec } from '../../src/codec.js';
import { type EntryRef, Keyspace } from '../../src/keys.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const LOCK_TTL_MS = 30_000;
const LONG_WAIT_MS = 10_000;

let prefixCounter = 0;

/**
 * Lock wake-ups on one server: a release reaches only the processes waiting for that lock, on
 * the lock's own channel, and a release nobody waits for publishes nothing.
 */
describe('RedisBackend lock wake-ups (per-lock channels)', function () {
  this.timeout(30_000);
  let server: RedisServer;
  let admin: Redis;
  let keys: Keyspace;
  const opened: RedisBackend[] = [];

  before(async function () {
    server = await startRedisServer();
    admin = new Redis({ host: server.host, port: server.port });
  });

  after(async function () {
    admin.disconnect();
    await server.stop();
  });

  beforeEach(function () {
    keys = new Keyspace(`wakeups${process.pid}x${++prefixCounter}`);
  });

  afterEach(async function () {
    for (const backend of opened.splice(0)) await backend.close();
  });

  function open(options: { nearCache?: boolean } = {}): RedisBackend {
    const backend = new RedisBackend({ host: server.host, port: server.port, ...options });
    backend.attach({ prefix: keys.prefix, codec: new EntryCodec() });
    opened.push(backend);
    return backend;
  }

  async function take(backend: RedisBackend, ref: EntryRef, token: string): Promise<boolean> {
    const reply = await backend.read({ ref, tagKeys: [], lockToken: token, lockTtlMs: LOCK_TTL_MS });
    return reply.locked;
  }

  /** The server's count of PUBLISH calls (scripts' included) so far. */
  async function publishCalls(): Promise<number> {
    const stats = await admin.info('commandstats');
    return Number(/^cmdstat_publish:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
  }

  it('waiters on many locks are each woken by their own release and not by the others', async function () {
    const holder = open();
    const waiter = open();
    const refs = Array.from({ length: 40 }, (_, i) => keys.entryRef('fn', `k${i}`));
    for (const ref of refs) expect(await take(holder, ref, 'h')).to.equal(true);
    for (const ref of refs) expect(await take(waiter, ref, 'w')).to.equal(false);
    const ended = new Map<number, number>();
    const waits = refs.map((ref, i) => waiter.waitForRelease(ref, LONG_WAIT_MS).then((woken) => {
      ended.set(i, Date.now());
      return woken;
    }));
    await sleep(100); // every wait subscribed
    const numsub = (await admin.call('PUBSUB', 'NUMSUB', ...refs.map((ref) => ref.lockKey))) as (string | number)[];
    for (let i = 0; i < refs.length; i++) expect(Number(numsub[2 * i + 1]), `subscribers of lock ${i}`).to.equal(1);
    // Release the even locks only: the odd waits must go on.
    const releasedAt = new Map<number, number>();
    for (let i = 0; i < refs.length; i += 2) {
      releasedAt.set(i, Date.now());
      await holder.release(refs[i] as EntryRef, 'h');
      await sleep(5);
    }
    await sleep(200);
    for (let i = 0; i < refs.length; i++) {
      if (i % 2 === 0) {
        expect(ended.has(i), `wait ${i} ended by its release`).to.equal(true);
        expect((ended.get(i) ?? 0) - (releasedAt.get(i) ?? 0), `ms from release ${i} to its wake-up`).to.be.below(100);
      } else {
        expect(ended.has(i), `wait ${i} still waiting: its lock is held`).to.equal(false);
      }
    }
    for (let i = 1; i < refs.length; i += 2) await holder.release(refs[i] as EntryRef, 'h');
    expect(await Promise.all(waits)).to.deep.equal(refs.map(() => true));
    // The last waiter of each lock unsubscribed.
    await sleep(50);
    const after = (await admin.call('PUBSUB', 'NUMSUB', ...refs.map((ref) => ref.lockKey))) as (string | number)[];
    for (let i = 0; i < refs.length; i++) expect(Number(after[2 * i + 1]), `subscribers of lock ${i} after`).to.equal(0);
  });

  it('a process hears only the releases of the locks it waits for', async function () {
    const holder = open();
    const waiter = open();
    const waited = keys.entryRef('fn', 'waited');
    const other = keys.entryRef('fn', 'other');
    expect(await take(holder, waited, 'h')).to.equal(true);
    expect(await take(waiter, waited, 'w')).to.equal(false);
    const waiting = waiter.waitForRelease(waited, LONG_WAIT_MS);
    await sleep(50);
    // A sniffer on the waiter's side: every channel the server sends the waiter's process.
    const channels = (await admin.call('PUBSUB', 'CHANNELS', `${keys.prefix}:*`)) as string[];
    expect(channels).to.deep.equal([waited.lockKey]);
    for (let i = 0; i < 20; i++) {
      expect(await take(holder, other, 'h')).to.equal(true);
      await holder.release(other, 'h');
    }
    await holder.release(waited, 'h');
    expect(await waiting).to.equal(true);
  });

  it('an uncontended miss publishes nothing: its release, write and invalidation find no subscriber', async function () {
    const backend = open();
    const codec = new EntryCodec();
    const before = await publishCalls();
    for (let i = 0; i < 10; i++) {
      const ref = keys.entryRef('fn', `alone${i}`);
      const miss = await backend.read({ ref, tagKeys: [], lockToken: 't', lockTtlMs: LOCK_TTL_MS });
      expect(miss.locked).to.equal(true);
      if (i % 2 === 0) await backend.release(ref, 't');
      else {
        const entry = codec.encode({ tagHash: miss.tagHash, freshUntil: Date.now() + 60_000, value: i });
        expect(await backend.write({ ref, entry, ttlMs: 60_000, lockToken: 't' })).to.equal(true);
      }
      expect(await take(backend, ref, 'u')).to.equal(i % 2 === 0); // the odd ones are cached
      await backend.invalidate(ref);
    }
    expect(await publishCalls()).to.equal(before);
  });

  it('a release racing the subscription is not missed (the lock is checked once subscribed)', async function () {
    const holder = open();
    const waiter = open();
    for (let round = 0; round < 30; round++) {
      const ref = keys.entryRef('fn', `race${round}`);
      expect(await take(holder, ref, 'h')).to.equal(true);
      expect(await take(waiter, ref, 'w')).to.equal(false);
      // The release is sent in the same tick as the subscription: it may reach the server
      // before the SUBSCRIBE, when nobody listens yet, and publish nothing.
      const started = Date.now();
      const waiting = waiter.waitForRelease(ref, LONG_WAIT_MS);
      const released = holder.release(ref, 'h');
      await released;
      expect(await waiting, `round ${round}`).to.equal(true);
      expect(Date.now() - started, `ms of round ${round}`).to.be.below(500);
    }
  });

  for (const nearCache of [false, true]) {
    it(`a subscriber connection killed during a wait wakes its waiters, and later waits are woken again${nearCache ? ' (nearCache)' : ''}`, async function () {
      const holder = open();
      const waiter = open({ nearCache });
      const ref = keys.entryRef('fn', 'killed');
      expect(await take(holder, ref, 'h')).to.equal(true);
      expect(await take(waiter, ref, 'w')).to.equal(false);
      const started = Date.now();
      const waiting = waiter.waitForRelease(ref, LONG_WAIT_MS);
      await sleep(100);
      expect(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).to.be.at.least(1);
      expect(await waiting).to.equal(true); // woken with the lock still held: it reads again
      expect(Date.now() - started).to.be.below(3_000);
      // The new connection serves the next wait, for the same lock and another one.
      expect(await take(waiter, ref, 'w')).to.equal(false);
      const again = waiter.waitForRelease(ref, LONG_WAIT_MS);
      await sleep(300);
      const releasedAt = Date.now();
      await holder.release(ref, 'h');
      expect(await again).to.equal(true);
      expect(Date.now() - releasedAt).to.be.below(200);
    });
  }

  it('with the near-cache, waits started while the subscriber reconnects do not keep tracking off (no SUBSCRIBE before its CLIENT ID)', async function () {
    this.timeout(20_000);
    const holder = open();
    const waiter = open({ nearCache: true });
    /** Whether the waiter's data connection tracks with its redirect on a live subscriber. */
    const tracked = async (): Promise<boolean> => {
      const clients = String(await admin.call('CLIENT', 'LIST'))
        .trim()
        .split('\n')
        .map((line) => Object.fromEntries(line.split(' ').map((field) => field.split('=') as [string, string])));
      const ids = new Set(clients.map((client) => client.id));
      return clients.some((client) => (client.flags ?? '').includes('t') && client.redir !== undefined && client.redir !== '-1' && ids.has(client.redir));
    };
    /** A read of the waiter's, which sets tracking up again once a session is there (a read that fails meanwhile is retried). */
    const readAll = async (): Promise<void> => {
      await waiter.read({ ref: keys.entryRef('fn', 'probe'), tagKeys: [], lockToken: undefined, lockTtlMs: 1 }).catch(() => undefined);
    };
    const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 8000;
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`not within 8 s: ${what}`);
        await readAll();
        await sleep(20);
      }
    };
    await until('tracking on at first', tracked);
    let n = 0;
    for (let round = 0; round < 3; round++) {
      expect(Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).to.be.at.least(1);
      // Waits on fresh locks all through the reconnection: each subscribes a new channel.
      // (A wait may end by a rejection while the connection is down: the core then computes.)
      const flood: Promise<unknown>[] = [];
      const floodUntil = Date.now() + 400;
      while (Date.now() < floodUntil) {
        const ref = keys.entryRef('fn', `flood${n++}`);
        expect(await take(holder, ref, 'h')).to.equal(true);
        flood.push(waiter.waitForRelease(ref, 30).catch(() => undefined));
        await sleep(1);
      }
      await Promise.all(flood);
      await until(`tracking on again after kill ${round + 1}`, tracked);
    }
  });

  it('with the near-cache, invalidations and per-lock wake-ups share the subscriber', async function () {
    const holder = open();
    const waiter = open({ nearCache: true });
    const ref = keys.entryRef('fn', 'near');
    expect(await take(holder, ref, 'h')).to.equal(true);
    expect(await take(waiter, ref, 'w')).to.equal(false);
    const waiting = waiter.waitForRelease(ref, LONG_WAIT_MS);
    await sleep(100);
    const numsub = (await admin.call('PUBSUB', 'NUMSUB', ref.lockKey, '__redis__:invalidate')) as (string | number)[];
    expect(Number(numsub[1]), 'the lock channel').to.equal(1);
    expect(Number(numsub[3]), 'the invalidation channel').to.be.at.least(1);
    await holder.release(ref, 'h');
    expect(await waiting).to.equal(true);
  });

  it('a new waiter right after the last one left subscribes again (the unsubscription does not undo it)', async function () {
    const holder = open();
    const waiter = open();
    const ref = keys.entryRef('fn', 'again');
    for (let round = 0; round < 10; round++) {
      await sleep(5); // the last round's release is remembered to the millisecond: read after it
      expect(await take(holder, ref, 'h')).to.equal(true);
      expect(await take(waiter, ref, 'w')).to.equal(false);
      const first = waiter.waitForRelease(ref, 20); // ends by timeout: unsubscribes
      expect(await first).to.equal(false);
      const second = waiter.waitForRelease(ref, LONG_WAIT_MS); // subscribes at once
      await sleep(50);
      const releasedAt = Date.now();
      await holder.release(ref, 'h');
      expect(await second, `round ${round}`).to.equal(true);
      expect(Date.now() - releasedAt, `ms of round ${round}`).to.be.below(200);
    }
  });

  it('under the ACL of earlier versions (no pubsub|numsub, no unsubscribe) releases are published always, and waiters woken', async function () {
    const user = `old-acl-${keys.prefix}`;
    await admin.call(
      'ACL', 'SETUSER', user, 'reset', 'on', '>secret', `~${keys.prefix}:*`, `&${keys.prefix}:*`,
      '+eval', '+evalsha', '+scan', '+unlink', '+get', '+exists', '+publish', '+subscribe',
      '+set', '+del', '+pttl', '+time', '+ping', '+hello', '+info',
    );
    const options = { host: server.host, port: server.port, username: user, password: 'secret' };
    const holder = new RedisBackend(options);
    const waiter = new RedisBackend(options);
    for (const backend of [holder, waiter]) {
      backend.attach({ prefix: keys.prefix, codec: new EntryCodec() });
      opened.push(backend);
    }
    const before = await publishCalls();
    for (let round = 0; round < 3; round++) {
      const ref = keys.entryRef('fn', `old${round}`);
      expect(await take(holder, ref, 'h')).to.equal(true);
      expect(await take(waiter, ref, 'w')).to.equal(false);
      const waiting = waiter.waitForRelease(ref, LONG_WAIT_MS);
      await sleep(50);
      const releasedAt = Date.now();
      await holder.release(ref, 'h');
      expect(await waiting, `round ${round}`).to.equal(true);
      expect(Date.now() - releasedAt).to.be.below(200);
    }
    // An uncontended release publishes too: the count is refused.
    const alone = keys.entryRef('fn', 'old-alone');
    expect(await take(holder, alone, 'h')).to.equal(true);
    await holder.release(alone, 'h');
    expect(await publishCalls()).to.equal(before + 4);
  });
});

