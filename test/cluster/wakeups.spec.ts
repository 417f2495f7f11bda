/**
 * Lock wake-ups on a real 3-master Redis Cluster: sharded pub/sub on the lock's own channel, so
 * that a release is published on the shard of its entry only, and only when somebody waits.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { slotOf } from '../../src/backend/redis/buckets.js';
import { EntryCodec } from '../../src/codec.js';
import { type EntryRef, Keyspace } from '../../src/keys.js';
import { type RedisCluster, slotOwners, startRedisCluster } from '../helpers/redis-cluster.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const LOCK_TTL_MS = 30_000;
const LONG_WAIT_MS = 10_000;

describe('RedisBackend lock wake-ups on Redis Cluster (sharded pub/sub)', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  let owners: number[];
  const admins = new Map<number, Redis>();
  const opened: RedisBackend[] = [];
  let keys: Keyspace;
  let counter = 0;

  before(async function () {
    cluster = await startRedisCluster(3);
    owners = await slotOwners(cluster.nodes[0]?.port ?? 0);
    for (const { port } of cluster.nodes) admins.set(port, new Redis({ host: '127.0.0.1', port }));
  });

  after(async function () {
    for (const admin of admins.values()) admin.disconnect();
    await cluster.stop();
  });

  beforeEach(function () {
    keys = new Keyspace(`cwake${++counter}`);
  });

  afterEach(async function () {
    for (const backend of opened.splice(0)) await backend.close();
  });

  function open(): RedisBackend {
    const backend = new RedisBackend({ cluster: [...cluster.nodes] });
    backend.attach({ prefix: keys.prefix, codec: new EntryCodec() });
    opened.push(backend);
    return backend;
  }

  async function take(backend: RedisBackend, ref: EntryRef, token: string): Promise<boolean> {
    return (await backend.read({ ref, tagKeys: [], lockToken: token, lockTtlMs: LOCK_TTL_MS })).locked;
  }

  /** Per master port: its count of the publishing commands (scripts' included) so far. */
  async function publications(): Promise<Map<number, { publish: number; spublish: number }>> {
    const out = new Map<number, { publish: number; spublish: number }>();
    for (const [port, admin] of admins) {
      const stats = await admin.info('commandstats');
      const calls = (name: string): number => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
      out.set(port, { publish: calls('publish'), spublish: calls('spublish') });
    }
    return out;
  }

  /** A sharded subscriber's count on each master for `channel` (PUBSUB SHARDNUMSUB asked of each node). */
  async function shardSubscribers(channel: string): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const [port, admin] of admins) {
      const reply = (await admin.call('PUBSUB', 'SHARDNUMSUB', channel)) as (string | number)[];
      out.set(port, Number(reply[1]));
    }
    return out;
  }

  it("a waiter subscribes on its lock's shard only, and the release is SPUBLISHed there only", async function () {
    const holder = open();
    const waiter = open();
    // Entries on every master.
    const refs = Array.from({ length: 12 }, (_, i) => keys.entryRef('fn', `k${i}`));
    const lockKeys = refs.map((ref) => holder.storedKeys(ref)[1] as string);
    const masters = new Set(lockKeys.map((key) => owners[slotOf(key)]));
    expect(masters.size, 'masters holding the locks').to.equal(3);
    for (const ref of refs) expect(await take(holder, ref, 'h')).to.equal(true);
    for (const ref of refs) expect(await take(waiter, ref, 'w')).to.equal(false);
    const waits = refs.map((ref) => waiter.waitForRelease(ref, LONG_WAIT_MS));
    await sleep(300);
    for (const key of lockKeys) {
      const owner = owners[slotOf(key)] ?? -1;
      const counts = await shardSubscribers(key);
      for (const [port, count] of counts) expect(count, `subscribers of ${key} on ${port} (owner ${owner})`).to.equal(port === owner ? 1 : 0);
    }
    const before = await publications();
    for (const ref of refs) await holder.release(ref, 'h');
    expect(await Promise.all(waits)).to.deep.equal(refs.map(() => true));
    const after = await publications();
    const expected = new Map<number, number>();
    for (const key of lockKeys) {
      const owner = owners[slotOf(key)] ?? -1;
      expected.set(owner, (expected.get(owner) ?? 0) + 1);
    }
    for (const [port, now] of after) {
      const then = before.get(port) ?? now;
      expect(now.publish - then.publish, `classic PUBLISHes on ${port}`).to.equal(0);
      expect(now.spublish - then.spublish, `SPUBLISHes on ${port}`).to.equal(expected.get(port) ?? 0);
    }
    await sleep(100);
    for (const key of lockKeys) {
      for (const [port, count] of await shardSubscribers(key)) expect(count, `subscribers of ${key} on ${port} after`).to.equal(0);
    }
  });

  it('waiters on many locks are each woken by their own release, not by the others', async function () {
    const holder = open();
    const waiter = open();
    const refs = Array.from({ length: 20 }, (_, i) => keys.entryRef('fn', `m${i}`));
    for (const ref of refs) expect(await take(holder, ref, 'h')).to.equal(true);
    for (const ref of refs) expect(await take(waiter, ref, 'w')).to.equal(false);
    const ended = new Set<number>();
    const waits = refs.map((ref, i) => waiter.waitForRelease(ref, LONG_WAIT_MS).then((woken) => {
      ended.add(i);
      return woken;
    }));
    await sleep(300);
    for (let i = 0; i < refs.length; i += 2) await holder.release(refs[i] as EntryRef, 'h');
    await sleep(200);
    for (let i = 0; i < refs.length; i++) expect(ended.has(i), `wait ${i}`).to.equal(i % 2 === 0);
    for (let i = 1; i < refs.length; i += 2) await holder.release(refs[i] as EntryRef, 'h');
    expect(await Promise.all(waits)).to.deep.equal(refs.map(() => true));
  });

  it('an uncontended miss publishes nothing on any node', async function () {
    const backend = open();
    const codec = new EntryCodec();
    await take(backend, keys.entryRef('fn', 'warm'), 'x'); // connected
    const before = await publications();
    for (let i = 0; i < 12; i++) {
      const ref = keys.entryRef('fn', `alone${i}`);
      const miss = await backend.read({ ref, tagKeys: [], lockToken: 't', lockTtlMs: LOCK_TTL_MS });
      expect(miss.locked).to.equal(true);
      const entry = codec.encode({ tagHash: miss.tagHash, freshUntil: Date.now() + 60_000, value: i });
      expect(await backend.write({ ref, entry, ttlMs: 60_000, lockToken: 't' })).to.equal(true);
      await backend.invalidate(ref);
    }
    const after = await publications();
    for (const [port, now] of after) expect(now, `publications on ${port}`).to.deep.equal(before.get(port));
  });

  it('a release racing the subscription is not missed', async function () {
    const holder = open();
    const waiter = open();
    for (let round = 0; round < 15; round++) {
      const ref = keys.entryRef('fn', `race${round}`);
      expect(await take(holder, ref, 'h')).to.equal(true);
      expect(await take(waiter, ref, 'w')).to.equal(false);
      const started = Date.now();
      const waiting = waiter.waitForRelease(ref, LONG_WAIT_MS);
      await holder.release(ref, 'h');
      expect(await waiting, `round ${round}`).to.equal(true);
      expect(Date.now() - started, `ms of round ${round}`).to.be.below(1_000);
    }
  });

  it("a sharded subscriber connection killed during a wait wakes its waiters, and later waits are woken again", async function () {
    const holder = open();
    const waiter = open();
    const ref = keys.entryRef('fn', 'killed');
    const lockKey = holder.storedKeys(ref)[1] as string;
    const owner = admins.get(owners[slotOf(lockKey)] ?? -1) as Redis;
    expect(await take(holder, ref, 'h')).to.equal(true);
    expect(await take(waiter, ref, 'w')).to.equal(false);
    const started = Date.now();
    const waiting = waiter.waitForRelease(ref, LONG_WAIT_MS);
    await sleep(300);
    expect(Number(await owner.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).to.be.at.least(1);
    expect(await waiting).to.equal(true); // woken with the lock still held: it reads again
    expect(Date.now() - started).to.be.below(3_000);
    expect(await take(waiter, ref, 'w')).to.equal(false);
    const again = waiter.waitForRelease(ref, LONG_WAIT_MS);
    await sleep(1_000);
    const releasedAt = Date.now();
    await holder.release(ref, 'h');
    expect(await again).to.equal(true);
    expect(Date.now() - releasedAt).to.be.below(500);
  });
});
