import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { BackendError, CorruptEntryError, EntryCodec, type EntryRef, Hermes, type HermesError, OptionError } from '../../src/index.js';
import { Keyspace } from '../../src/backend/index.js';
import { listRedisScripts, RedisBackend, RedisBackendClosedError, type RedisBackendOptions, redisScripts } from '../../src/backend/redis/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import { CommandLog, scriptOf, unescapeMonitor } from './command-log.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let prefixCounter = 0;
const newPrefix = (name: string): string => `${name}${process.pid}x${++prefixCounter}`;

describe('RedisBackend', function () {
  let server: RedisServer;
  let admin: Redis;
  let log: CommandLog;
  const closers: (() => Promise<unknown>)[] = [];

  before(async function () {
    server = await startRedisServer();
    admin = new Redis({ host: server.host, port: server.port, lazyConnect: true });
    await admin.connect();
    log = await CommandLog.open(server);
  });

  after(async function () {
    await log.close();
    await admin.quit();
    await server.stop();
  });

  afterEach(async function () {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A cache on the shared server, closed after the test; errors collected. */
  function newCache(options: Partial<RedisBackendOptions> & Record<string, unknown> = {}): { cache: Hermes<RedisBackendOptions>; errors: HermesError[]; backend: RedisBackend } {
    const cache = new Hermes(RedisBackend, { host: server.host, port: server.port, prefix: newPrefix('rb'), ...options });
    const errors: HermesError[] = [];
    cache.on('error', (error) => errors.push(error));
    closers.push(() => cache.close());
    return { cache, errors, backend: cache.backend as RedisBackend };
  }

  describe('reads and writes', function () {
    it('misses, then hits, keeping binary and compressed payloads intact', async function () {
      const { cache, errors } = newCache();
      let calls = 0;
      const blob = randomBytes(5000);
      const text = 'hermes '.repeat(2000); // compressible: stored deflated
      const fetch = cache.wrap(async function fetch(kind: string) {
        calls++;
        return kind === 'blob' ? blob : kind === 'text' ? text : { kind, at: new Date(5) };
      }, { tags: ['t1', 't2'] });
      for (const kind of ['blob', 'text', 'obj']) {
        const first = await fetch(kind);
        expect(await fetch(kind)).to.deep.equal(first);
      }
      expect(calls).to.equal(3);
      expect(await fetch('blob')).to.deep.equal(blob);
      expect(await fetch('text')).to.equal(text);
      const stored = await admin.getBuffer(fetch.key('text'));
      expect(stored?.toString('latin1', 0, 4)).to.equal('h2jz');
      expect(stored?.length).to.be.below(text.length / 4);
      expect(errors).to.deep.equal([]);
    });

    it('computes the same tag hash as the codec: entries written by one backend hit in another', async function () {
      const { cache, backend } = newCache();
      const value = cache.wrap(async function value(n: number) {
        return n;
      }, { tags: ['a', 'b', 'c'] });
      await value(1);
      const dump = await backend.dump();
      const versions = ['a', 'b', 'c'].map((t) => dump[`${cache.keyspace.prefix}:tag:${t}`] as string);
      expect(new Set(versions).size).to.equal(3); // each created tag has its own version
      const { tagHash } = await import('../../src/codec.js');
      const reply = await backend.read({ ref: cache.keyspace.refOf(value.key(1)), tagKeys: ['a', 'b', 'c'].map((t) => cache.keyspace.tagKey(t)), lockToken: undefined, lockTtlMs: 1 });
      expect(reply.entry).to.be.instanceOf(Buffer);
      expect(reply.tagHash).to.equal(tagHash(versions));
    });

    it("works with ioredis' enableAutoPipelining (EVALSHA keeps its command name)", async function () {
      const { cache, errors } = newCache({ enableAutoPipelining: true });
      let calls = 0;
      const fn = cache.wrap(async function piped(n: number) {
        calls++;
        return n * 3;
      }, { tags: ['t'] });
      const first = await Promise.all(Array.from({ length: 20 }, (_, i) => fn(i % 5)));
      const second = await Promise.all(Array.from({ length: 20 }, (_, i) => fn(i % 5)));
      expect(second).to.deep.equal(first);
      expect(calls).to.equal(5);
      expect(errors).to.deep.equal([]);
    });

    it('opens no connection when constructed and attached; connects on first use', async function () {
      const before = ((await admin.client('LIST')) as string).trim().split('\n').length;
      const { cache, backend } = newCache();
      cache.wrap(async function idle() {
        return 1;
      });
      expect(backend.client.status).to.equal('wait');
      expect(((await admin.client('LIST')) as string).trim().split('\n').length).to.equal(before);
      await cache.clean(['nothing']);
      expect(backend.client.status).to.equal('ready');
    });

    it("rejects ioredis' keyPrefix and a bad commandTimeout with an OptionError naming the option", function () {
      expect(() => new RedisBackend({ keyPrefix: 'x:' })).to.throw(OptionError).with.property('option', 'keyPrefix');
      expect(() => new RedisBackend({ commandTimeout: -1 })).to.throw(OptionError).with.property('option', 'commandTimeout');
      expect(() => new RedisBackend({ writeBatch: 0 })).to.throw(OptionError).with.property('option', 'writeBatch');
    });

    for (const writeBatch of [1, 3, 16]) {
      it(`answers 200 concurrent reads of 50 keys each with its own value (writeBatch ${writeBatch})`, async function () {
        // Not a test of deadlines: a loaded machine must not time reads out into fallbacks.
        const { cache, errors } = newCache({ writeBatch, backendTimeout: 10_000 });
        let calls = 0;
        const square = cache.wrap(async function square(n: number) {
          calls++;
          return n * n;
        }, { tags: ['t'] });
        const inputs = Array.from({ length: 200 }, (_, i) => i % 50);
        expect(await Promise.all(inputs.map((n) => square(n)))).to.deep.equal(inputs.map((n) => n * n));
        expect(await Promise.all(inputs.map((n) => square(n)))).to.deep.equal(inputs.map((n) => n * n));
        expect(calls).to.equal(50);
        expect(errors).to.deep.equal([]);
      });
    }

    it('connects with a url', async function () {
      const cache = new Hermes(RedisBackend, { url: server.url, prefix: newPrefix('url') });
      closers.push(() => cache.close());
      let calls = 0;
      const f = cache.wrap(async function f() {
        return ++calls;
      });
      expect(await f()).to.equal(1);
      expect(await f()).to.equal(1);
    });

    it('uses a given client and leaves it open on close()', async function () {
      const client = new Redis({ host: server.host, port: server.port, lazyConnect: true });
      closers.push(() => client.quit());
      const backend = new RedisBackend({ client });
      const cache = new Hermes(backend, { prefix: newPrefix('given') });
      const f = cache.wrap(async function f() {
        return 'v';
      });
      expect(await f()).to.equal('v');
      expect(await f()).to.equal('v');
      await cache.close();
      expect(client.status).to.equal('ready');
      expect(await client.ping()).to.equal('PONG');
      await backend.close(); // idempotent
      await expectRejection(backend.read({ ref: new Keyspace('closed').entryRef('f', 'k'), tagKeys: [], lockToken: undefined, lockTtlMs: 1 }), RedisBackendClosedError);
    });

    it('dump() shows entries decoded, tags as versions, locks as tokens, corrupt entries as errors', async function () {
      const { cache, backend } = newCache();
      const prefix = cache.keyspace.prefix;
      const item = cache.wrap(async function item(n: number) {
        return { n };
      }, { tags: ['x'] });
      await item(1);
      await admin.set(`${prefix}:lock:item:held`, 'token-1', 'PX', 10_000);
      await admin.set(`${prefix}:entry:item:junk`, 'not an entry');
      const dump = await backend.dump();
      expect(dump[item.key(1)]).to.deep.equal({ n: 1 });
      expect(dump[`${prefix}:tag:x`]).to.be.a('string').with.length.above(8);
      expect(dump[`${prefix}:lock:item:held`]).to.equal('token-1');
      expect(dump[`${prefix}:entry:item:junk`]).to.be.instanceOf(CorruptEntryError);
      expect(Object.keys(dump)).to.have.length(4);
    });
  });

  describe('round trips, counted with MONITOR', function () {
    it('a hit, tagged or not, is 1 request; a miss 2; invalidate 1; clean(tags) 1', async function () {
      const { cache } = newCache();
      let calls = 0;
      const plain = cache.wrap(async function plain(n: number) {
        calls++;
        return n;
      });
      const tagged = cache.wrap(async function tagged(n: number) {
        calls++;
        return n;
      }, { tags: ['math', 'power', 'avg'] });
      // Warm-up: the connection and every script known to the server.
      await plain(0);
      await tagged(0);
      await plain.invalidate(0);
      await cache.clean(['math']);
      await tagged(0);

      const hit = await log.record(() => tagged(0));
      expect(hit.map(scriptOf)).to.deep.equal(['read']);
      const plainMiss = await log.record(() => plain(1));
      expect(plainMiss.map(scriptOf)).to.deep.equal(['read', 'write']);
      const plainHit = await log.record(() => plain(1));
      expect(plainHit.map(scriptOf)).to.deep.equal(['read']);
      const taggedMiss = await log.record(() => tagged(2));
      expect(taggedMiss.map(scriptOf)).to.deep.equal(['read', 'write']);
      const invalidation = await log.record(() => tagged.invalidate(2));
      expect(invalidation.map(scriptOf)).to.deep.equal(['invalidate']);
      const cleaning = await log.record(() => cache.clean(['math', 'power']));
      expect(cleaning.map(scriptOf)).to.deep.equal(['cleanTags']);
      expect(calls).to.equal(5); // 0 and 0 tagged, 0 tagged again after clean(['math']), 1, 2

      // The call sites agree with the scripts: fixed key counts as the file names say, as many
      // ARGV as the headers document.
      for (const command of [...hit, ...plainMiss, ...taggedMiss, ...invalidation, ...cleaning]) {
        const script = listRedisScripts().find((s) => s.sha === command.args[0]);
        if (!script) throw new Error(`unknown script ${command.args[0]}`);
        const numberOfKeys = Number(command.args[1]);
        if (script.numberOfKeys !== undefined) expect(numberOfKeys, script.file).to.equal(script.numberOfKeys);
        expect(command.args.length - 2 - numberOfKeys, script.file).to.equal(script.header.argv.length);
      }
    });

    it('peek is 1 request (a read without a lock token), set 1 (set.lua), refresh 2 (lock.lua, then the write)', async function () {
      const { cache, errors } = newCache();
      let calls = 0;
      const tagged = cache.wrap(async function controlled(n: number) {
        calls++;
        return `computed${n}`;
      }, { tags: ['math', 'power'] });
      // Warm-up: the connection and every script known to the server.
      await tagged(0);
      await tagged.set([0], 'warm');
      await tagged.refresh(0);
      await tagged.peek(0);
      calls = 0;

      const peekMiss = await log.record(() => tagged.peek(1));
      expect(peekMiss.map(scriptOf)).to.deep.equal(['read']);
      expect(peekMiss[0]?.args.at(-6)).to.equal(''); // no lock token: nothing locked
      const setting = await log.record(() => tagged.set([1], 'set1'));
      expect(setting.map(scriptOf)).to.deep.equal(['set']);
      const peekHit = await log.record(async () => expect(await tagged.peek(1)).to.equal('set1'));
      expect(peekHit.map(scriptOf)).to.deep.equal(['read']);
      // A set on tags never read before creates their versions in the same request.
      await cache.clean(['math']);
      const afterClean = await log.record(() => tagged.set([2], 'set2'));
      expect(afterClean.map(scriptOf)).to.deep.equal(['set']);
      expect(await tagged(2)).to.equal('set2');
      const refreshing = await log.record(() => tagged.refresh(1));
      expect(refreshing.map(scriptOf)).to.deep.equal(['lock', 'write']);
      expect(await tagged(1)).to.equal('computed1');
      expect(calls).to.equal(1);
      expect(errors).to.deep.equal([]);
      for (const command of [...peekMiss, ...setting, ...refreshing]) {
        const script = listRedisScripts().find((s) => s.sha === command.args[0]);
        if (!script) throw new Error(`unknown script ${command.args[0]}`);
        expect(command.args.length - 2 - Number(command.args[1]), script.file).to.equal(script.header.argv.length);
      }
    });

    it("a tags function keeps a hit at 1 request: the read names the call's own tag keys, computed before it", async function () {
      const { cache } = newCache();
      let calls = 0;
      const seen: number[] = [];
      const profile = cache.wrap(async function profile(id: number) {
        calls++;
        return `profile ${id}`;
      }, {
        tags: (id) => {
          seen.push(id);
          return [`user:${id}`, 'profiles'];
        },
      });
      await profile(0); // warm-up: the connection and the scripts

      const miss = await log.record(() => profile(1));
      expect(miss.map(scriptOf)).to.deep.equal(['read', 'write']);
      const hit = await log.record(() => profile(1));
      expect(hit.map(scriptOf)).to.deep.equal(['read']);
      const read = hit[0]?.args ?? [];
      const ref = cache.keyspace.refOf(profile.key(1));
      expect(read.slice(2, 2 + Number(read[1]))).to.deep.equal([
        ref.entryKey,
        ref.lockKey,
        cache.keyspace.tagKey('user:1'),
        cache.keyspace.tagKey('profiles'),
      ]);
      const otherHit = await log.record(() => profile(0));
      expect(otherHit.map(scriptOf)).to.deep.equal(['read']);
      expect(otherHit[0]?.args).to.include(cache.keyspace.tagKey('user:0')).and.not.include(cache.keyspace.tagKey('user:1'));

      const cleaning = await log.record(() => cache.clean(['user:1']));
      expect(cleaning.map(scriptOf)).to.deep.equal(['cleanTags']);
      expect((await log.record(() => profile(1))).map(scriptOf)).to.deep.equal(['read', 'write']);
      expect((await log.record(() => profile(0))).map(scriptOf)).to.deep.equal(['read']);
      expect(calls).to.equal(3); // 0, 1, 1 after clean(['user:1'])
      expect(seen).to.deep.equal([0, 1, 1, 0, 1, 0]);
    });

    it('a stale read is 1 request too: the stale value and the lock decision come in one reply', async function () {
      const { cache } = newCache({ ttl: 0.2, jitter: 0, grace: 60, staleWhileRevalidate: 60 });
      let calls = 0;
      const fn = async (n: number): Promise<string> => {
        calls++;
        await sleep(calls > 1 ? 200 : 0);
        return `v${calls}:${n}`;
      };
      // Same prefix for both caches: the second is another process.
      const a = cache.wrap(fn, { name: 'staleRead', tags: ['s'] });
      expect(await a(1)).to.equal('v1:1');
      const b = new Hermes(RedisBackend, { host: server.host, port: server.port, prefix: cache.keyspace.prefix, ttl: 0.2, jitter: 0, staleWhileRevalidate: 60 });
      closers.push(() => b.close());
      const bFn = b.wrap(fn, { name: 'staleRead', tags: ['s'] });
      await b.backend.read({ ref: b.keyspace.entryRef('warm', 'up'), tagKeys: [], lockToken: undefined, lockTtlMs: 1 }); // connect
      await sleep(300);
      // The first stale read takes the lock and refreshes in the background (one read, then the
      // refresh's write later); the second, without the lock, is served from one read.
      const first = await log.record(() => a(1));
      expect(first.map(scriptOf)[0]).to.equal('read');
      const second = await log.record(() => bFn(1));
      expect(second.map(scriptOf)).to.deep.equal(['read']);
      await sleep(300);
      expect(await bFn(1)).to.equal('v2:1');
      expect(calls).to.equal(2);
    });

    it('many() of 100 keys is 1 request on one server (readMany.lua), plus the writes of the misses, batched', async function () {
      const { cache } = newCache();
      let calls = 0;
      const user = cache.wrap(async function user(id: number) {
        calls++;
        return { id };
      }, { tags: ['users', 'tenant:1'] });
      const ids = Array.from({ length: 100 }, (_, i) => [i] as [number]);
      await user.many(ids); // warm-up: the connection, the scripts, the entries
      expect(calls).to.equal(100);
      const hits = await log.record(() => user.many(ids));
      expect(hits.map(scriptOf)).to.deep.equal(['readMany']);
      expect(calls).to.equal(100);
      // The call site agrees with the header: 2 keys per entry then the distinct tag keys;
      // 3 ARGV then 5 + T per entry.
      const args = hits[0]?.args ?? [];
      expect(Number(args[1])).to.equal(2 * 100 + 2);
      expect(args.length - 2 - Number(args[1])).to.equal(3 + 100 * (5 + 2));
      for (let k = 0; k < 10; k++) await user.invalidate(k * 10);
      let results: { id: number }[] = [];
      const tenPercentMisses = await log.record(async () => {
        results = await user.many(ids);
      });
      expect(results.map((r) => r.id)).to.deep.equal(ids.map(([id]) => id));
      expect(calls).to.equal(110);
      // The ten writes end in one tick: together in one writeMany.lua (2 keys per entry), but for
      // the tick's first when the writes before it were no crowd, which goes out at once alone.
      const scripts = tenPercentMisses.map(scriptOf);
      const alone = scripts.includes('write') ? 1 : 0;
      expect(scripts).to.deep.equal(['readMany', ...(alone === 1 ? ['write'] : []), 'writeMany']);
      expect(Number(tenPercentMisses.at(-1)?.args[1])).to.equal(2 * (10 - alone));
    });

    it('after SCRIPT FLUSH, the next call costs one request more: EVALSHA (NOSCRIPT), then EVAL with the body; EVALSHA after', async function () {
      const { cache, errors } = newCache();
      let calls = 0;
      const f = cache.wrap(async function f(n: number) {
        calls++;
        return n * 10;
      }, { tags: ['t'] });
      expect(await f(4)).to.equal(40);
      await admin.script('FLUSH');
      let result: unknown;
      const commands = await log.record(async () => {
        result = await f(4);
      });
      expect(result).to.equal(40);
      expect(calls).to.equal(1); // served from the cache, not recomputed
      expect(errors).to.deep.equal([]);
      const read = redisScripts().read;
      expect(commands.map((c) => [c.name, scriptOf(c)])).to.deep.equal([
        ['evalsha', 'read'], // answered NOSCRIPT
        ['eval', 'read'],
      ]);
      expect(unescapeMonitor(commands[1]?.args[0] ?? '')).to.equal(read.source);
      // Loaded again: the next call is a single EVALSHA.
      expect((await log.record(() => f(4))).map((c) => c.name)).to.deep.equal(['evalsha']);
    });
  });

  describe('clean()', function () {
    it('removes only keys under the prefix, with SCAN and UNLINK, never FLUSHDB', async function () {
      const prefix = `gl*b?[${process.pid}]`; // glob characters must be matched literally
      const { cache } = newCache({ prefix });
      const f = cache.wrap(async function f(n: number) {
        return n;
      }, { tags: ['a'] });
      for (let n = 0; n < 30; n++) await f(n);
      const foreign = ['foreign:key', `glXb?[${process.pid}]:entry:f:x`, `${prefix}x:entry:f:1`, prefix];
      for (const key of foreign) await admin.set(key, 'keep');
      const commands = await log.record(() => cache.clean());
      expect(commands.map((c) => c.name)).to.not.include('flushdb');
      expect(commands.map((c) => c.name)).to.include.members(['scan', 'unlink']);
      const left = await admin.keys(`*`);
      expect(left.filter((k) => k.startsWith(`${prefix}:`))).to.deep.equal([]);
      for (const key of foreign) expect(await admin.get(key), key).to.equal('keep');
      await admin.del(...foreign);
    });
  });

  describe('stampede protection across processes', function () {
    it('a lock waiter that created a tag version and reads again after a clean() of that tag never re-creates the same version (it would revive entries written with it)', async function () {
      const prefix = newPrefix('revive');
      const backends = [0, 1].map(() => new RedisBackend({ host: server.host, port: server.port }));
      for (const backend of backends) closers.push(() => backend.close());
      const [a, b] = backends.map((backend) => new Hermes(backend, { prefix, lockWait: 5000, lockTimeout: 5000 })) as [Hermes, Hermes];
      let openGate: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (openGate = resolve));
      let fCalls = 0;
      const f = async (n: number): Promise<string> => {
        if (++fCalls === 1) await gate;
        return `f${n}`;
      };
      let truth = 1;
      const g = async (n: number): Promise<string> => `g${n}v${truth}`;
      const fA = a.wrap(f, { name: 'f', tags: ['t'] });
      const fB = b.wrap(f, { name: 'f', tags: ['t'] });
      const gA = a.wrap(g, { name: 'g', tags: ['t'] });
      const holder = fB(1); // creates the version of 't', takes f(1)'s lock, computes until the gate opens
      await sleep(30);
      await a.clean(['t']);
      const waiter = fA(1); // its read creates a new version of 't' (seeded by its request), then waits for f(1)'s lock
      await sleep(30);
      expect(await gA(2)).to.equal('g2v1'); // stored with the waiter's version of 't'
      truth = 2;
      await a.clean(['t']); // acknowledged: g(2)'s value is invalid
      openGate(); // the holder writes and releases: the waiter is woken and reads again
      expect(await holder).to.equal('f1');
      expect(await waiter).to.equal('f1');
      expect(await gA(2), 'a value served after its acknowledged clean()').to.equal('g2v2');
    });

    it('50 callers on two backends compute a cold key once, woken by pub/sub, not by polling or timeout', async function () {
      const prefix = newPrefix('stampede');
      const backends = [0, 1].map(() => new RedisBackend({ host: server.host, port: server.port }));
      for (const backend of backends) closers.push(() => backend.close());
      let calls = 0;
      // 25 caches per backend: no in-process sharing between callers, every waiter waits on the lock.
      const callers = Array.from({ length: 50 }, (_, i) => {
        const cache = new Hermes(backends[i % 2], { prefix, lockWait: 20_000, lockTimeout: 20_000 });
        return cache.wrap(async function slow(n: number) {
          calls++;
          await sleep(200);
          return n + 1;
        });
      });
      await backends[0]?.cleanTags(prefix, [`${prefix}:tag:warm`]); // connect and load the scripts first
      await backends[1]?.cleanTags(prefix, [`${prefix}:tag:warm`]);
      let results: unknown[] = [];
      const started = Date.now();
      const commands = await log.record(async () => {
        results = await Promise.all(callers.map((call) => call(1)));
      }, { withLua: true });
      const elapsed = Date.now() - started;
      expect(results).to.deep.equal(Array(50).fill(2));
      expect(calls).to.equal(1);
      expect(elapsed).to.be.below(1500); // the waits would last 20 s without a wake-up
      const fromClients = commands.filter((c) => c.source !== 'lua');
      const reads = fromClients.filter((c) => scriptOf(c) === 'read').length;
      expect(reads).to.be.at.most(100); // one read each, one more after the wake-up: no polling
      expect(commands.filter((c) => c.source === 'lua' && c.name === 'publish')).to.have.length(1);
      expect(fromClients.filter((c) => c.name === 'subscribe')).to.have.length(2); // one per backend
    });

    it('a crashed lock holder blocks the others no longer than the lock TTL', async function () {
      const { cache } = newCache({ lockWait: 20_000 });
      let calls = 0;
      const f = cache.wrap(async function f(n: number) {
        calls++;
        return n;
      });
      const lockKey = cache.keyspace.lockKeyOf(f.key(1));
      expect(await admin.set(lockKey, 'crashed-process', 'PX', 600, 'NX')).to.equal('OK');
      const started = Date.now();
      expect(await f(1)).to.equal(1);
      const elapsed = Date.now() - started;
      expect(calls).to.equal(1);
      expect(elapsed).to.be.within(450, 2000);
    });

    it('a release published before the waiter subscribed still wakes it', async function () {
      const { holder, waiter, lockKey } = twoBackends();
      expect((await holder.read(readOf(lockKey, 'holder'))).locked).to.equal(true);
      expect((await waiter.read(readOf(lockKey, 'waiter'))).locked).to.equal(false);
      await holder.release(lockKey, 'holder'); // published while nobody listens
      const started = Date.now();
      expect(await waiter.waitForRelease(lockKey, 10_000)).to.equal(true);
      expect(Date.now() - started).to.be.below(1000);
    });

    it('a release that arrives between the read and the wait counts as a wake-up', async function () {
      const { holder, waiter, lockKey, prefix } = twoBackends();
      // Subscribe the waiter first, with a wait on another lock that is not held.
      const other = new Keyspace(prefix).entryRef('f', 'other');
      await holder.read(readOf(other, 'holder'));
      await waiter.read(readOf(other, 'waiter'));
      const first = waiter.waitForRelease(other, 10_000);
      await holder.release(other, 'holder');
      expect(await first).to.equal(true);

      expect((await holder.read(readOf(lockKey, 'holder'))).locked).to.equal(true);
      expect((await waiter.read(readOf(lockKey, 'waiter'))).locked).to.equal(false);
      await holder.release(lockKey, 'holder');
      await sleep(100); // the message reaches the waiter's process before it starts waiting
      const started = Date.now();
      expect(await waiter.waitForRelease(lockKey, 10_000)).to.equal(true);
      expect(Date.now() - started).to.be.below(50);
    });

    it('a release between the reads and the waits wakes every caller that read, not only the first to wait', async function () {
      const { holder, waiter, lockKey, prefix } = twoBackends();
      // Subscribe the waiter first, with a wait on another lock that is not held.
      const other = new Keyspace(prefix).entryRef('f', 'other');
      await holder.read(readOf(other, 'holder'));
      await waiter.read(readOf(other, 'waiter'));
      const first = waiter.waitForRelease(other, 10_000);
      await holder.release(other, 'holder');
      expect(await first).to.equal(true);

      // Three calls of one process read while the lock is held (three callers that did not
      // join one another: an invalidation in between, or a near-cache that heard of a change).
      expect((await holder.read(readOf(lockKey, 'holder'))).locked).to.equal(true);
      for (const token of ['w1', 'w2', 'w3']) expect((await waiter.read(readOf(lockKey, token))).locked).to.equal(false);
      await holder.release(lockKey, 'holder');
      await sleep(100); // the message reaches the waiter's process before they start waiting
      const started = Date.now();
      const woken = await Promise.all([1, 2, 3].map(() => waiter.waitForRelease(lockKey, 5000)));
      expect(woken).to.deep.equal([true, true, true]);
      expect(Date.now() - started).to.be.below(1000);
    });

    it('waits no longer than the lock lives; times out with false; close() ends waits with false', async function () {
      const { holder, waiter, lockKey, prefix } = twoBackends();
      await holder.read({ ...readOf(lockKey, 'holder'), lockTtlMs: 300 });
      await waiter.read(readOf(lockKey, 'waiter'));
      let started = Date.now();
      expect(await waiter.waitForRelease(lockKey, 10_000)).to.equal(true);
      expect(Date.now() - started).to.be.within(200, 1000);

      const longLock = new Keyspace(prefix).entryRef('f', 'long');
      await holder.read({ ...readOf(longLock, 'holder'), lockTtlMs: 10_000 });
      await waiter.read(readOf(longLock, 'waiter'));
      started = Date.now();
      expect(await waiter.waitForRelease(longLock, 200)).to.equal(false);
      expect(Date.now() - started).to.be.within(150, 1000);

      await waiter.read(readOf(longLock, 'waiter'));
      const pending = waiter.waitForRelease(longLock, 10_000);
      await sleep(20);
      started = Date.now();
      await waiter.close();
      expect(await pending).to.equal(false);
      expect(Date.now() - started).to.be.below(500);
    });

    it('wakes its waiters when the subscriber connection was lost and re-established', async function () {
      const { holder, waiter, lockKey } = twoBackends();
      await holder.read(readOf(lockKey, 'holder'));
      await waiter.read(readOf(lockKey, 'waiter'));
      const pending = waiter.waitForRelease(lockKey, 10_000);
      await sleep(50); // subscribed
      // Releases published while the subscriber is away are lost: its waiters re-read instead.
      expect(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')).to.be.at.least(1);
      const started = Date.now();
      expect(await pending).to.equal(true);
      expect(Date.now() - started).to.be.below(2000);
    });

    function twoBackends(): { holder: RedisBackend; waiter: RedisBackend; lockKey: EntryRef; prefix: string } {
      const prefix = newPrefix('wait');
      const holder = new RedisBackend({ host: server.host, port: server.port });
      const waiter = new RedisBackend({ host: server.host, port: server.port });
      for (const backend of [holder, waiter]) {
        backend.attach({ prefix, codec: new EntryCodec() });
        closers.push(() => backend.close());
      }
      return { holder, waiter, lockKey: new Keyspace(prefix).entryRef('f', '1'), prefix };
    }

    function readOf(ref: EntryRef, token: string): Parameters<RedisBackend['read']>[0] {
      return { ref, tagKeys: [], lockToken: token, lockTtlMs: 10_000 };
    }
  });

  describe('as an ACL user confined to the prefix', function () {
    it('wraps, invalidates, cleans tags and clears with keys ~{prefix}:* and channels &{prefix}:*', async function () {
      const prefix = newPrefix('acl');
      const user = `hermes-${prefix}`;
      await admin.call(
        'ACL', 'SETUSER', user, 'reset', 'on', '>secret', `~${prefix}:*`, `&${prefix}:*`,
        '+eval', '+evalsha', '+scan', '+unlink', '+get', '+exists', '+publish', '+subscribe', '+unsubscribe', '+pubsub|numsub',
        '+set', '+del', '+pttl', '+time', '+ping', '+hello', '+info',
      );
      const options = { host: server.host, port: server.port, username: user, password: 'secret' };
      const errors: HermesError[] = [];
      const cache = new Hermes(RedisBackend, { ...options, prefix, failOpen: false, lockWait: 10_000 });
      cache.on('error', (error) => errors.push(error));
      const peer = new Hermes(RedisBackend, { ...options, prefix, failOpen: false, lockWait: 10_000 });
      closers.push(() => cache.close(), () => peer.close());
      let calls = 0;
      const fn = async (n: number): Promise<number> => {
        calls++;
        await sleep(100);
        return n * 2;
      };
      const f = cache.wrap(fn, { name: 'f', tags: ['t'] });
      const g = peer.wrap(fn, { name: 'f', tags: ['t'] });
      await admin.script('FLUSH'); // the user's calls load the scripts themselves (EVAL)
      const [a, b] = await Promise.all([f(1), (async () => (await sleep(20), g(1)))()]);
      expect([a, b, calls]).to.deep.equal([2, 2, 1]); // the peer waited on the lock, woken by pub/sub
      await f.invalidate(1);
      expect(await f(1)).to.equal(2);
      expect(calls).to.equal(2);
      await cache.clean(['t']);
      expect(await f(1)).to.equal(2);
      expect(calls).to.equal(3);
      await cache.clean();
      expect(await admin.keys(`${prefix}:*`)).to.deep.equal([]);
      expect(errors).to.deep.equal([]);

      // The confinement is real: the same user under another prefix is refused.
      const outside = new Hermes(RedisBackend, { ...options, prefix: `${prefix}-outside`, failOpen: false });
      closers.push(() => outside.close());
      const h = outside.wrap(fn, { name: 'h' });
      const error = await expectRejection(h(1), BackendError);
      expect((error.cause as Error).message).to.match(/NOPERM/);
      await admin.call('ACL', 'DELUSER', user);
    });
  });

  describe('failing open', function () {
    let own: RedisServer;

    before(async function () {
      own = await startRedisServer();
    });

    after(async function () {
      await own.stop();
    });

    it('answers from the function within commandTimeout while the server is down, then caches again', async function () {
      this.timeout(30_000);
      const cache = new Hermes(RedisBackend, { host: own.host, port: own.port, prefix: newPrefix('down'), commandTimeout: 300 });
      closers.push(() => cache.close());
      const errors: HermesError[] = [];
      cache.on('error', (error) => errors.push(error));
      let calls = 0;
      const f = cache.wrap(async function f(n: number) {
        calls++;
        return n;
      }, { tags: ['t'] });
      expect(await f(1)).to.equal(1);
      expect(await f(1)).to.equal(1);
      expect(calls).to.equal(1);

      await own.kill();
      for (let i = 0; i < 5; i++) {
        const started = Date.now();
        expect(await f(1)).to.equal(1);
        expect(Date.now() - started, `call ${i}`).to.be.below(500);
      }
      expect(calls).to.equal(6);
      expect(errors.length).to.be.at.least(5);
      expect(errors.every((e) => e instanceof BackendError)).to.equal(true);
      // The backend calls themselves reject within the timeout.
      const started = Date.now();
      await expectRejection(cache.backend.read({ ref: cache.keyspace.entryRef('f', 'k'), tagKeys: [], lockToken: undefined, lockTtlMs: 1 }), Error);
      expect(Date.now() - started).to.be.below(500);

      await own.restart();
      const deadline = Date.now() + 10_000;
      let cached = false;
      while (!cached && Date.now() < deadline) {
        const before = calls;
        await f(2);
        await f(2);
        cached = calls === before + 1;
        if (!cached) await sleep(100);
      }
      expect(cached, 'caching resumed after the server came back').to.equal(true);
      const n = calls;
      expect(await f(2)).to.equal(2);
      expect(calls).to.equal(n);
    });

    it('does not hang when the server stops answering (CLIENT PAUSE): each call takes at most commandTimeout', async function () {
      const cache = new Hermes(RedisBackend, { host: own.host, port: own.port, prefix: newPrefix('pause'), commandTimeout: 250, lockTimeout: 500 });
      closers.push(() => cache.close());
      const errors: HermesError[] = [];
      cache.on('error', (error) => errors.push(error));
      const f = cache.wrap(async function f(n: number) {
        return n;
      });
      await cache.clean(['warm']);
      const control = new Redis({ host: own.host, port: own.port, lazyConnect: true });
      closers.push(() => control.quit());
      await control.connect();
      await control.client('PAUSE', 1500, 'ALL');
      const started = Date.now();
      expect(await f(7)).to.equal(7);
      expect(Date.now() - started).to.be.within(200, 600);
      expect(errors.some((e) => e instanceof BackendError && /timed out/.test((e.cause as Error).message))).to.equal(true);
      await sleep(1400); // let the pause end before closing
    });
  });
});

/** Undoes the escaping MONITOR applies to arguments (`\\n`, `\\"`, `\\xHH`, …). */
async function expectRejection<E extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(type);
    return error as E;
  }
  throw new Error(`expected a rejection with ${type.name}`);
}
