import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { MemcacheClient } from 'memcache-client';
import { BackendError, Hermes, type HermesError } from '../../src/index.js';
import { Keyspace } from '../../src/backend/index.js';
import {
  MemcachedBackend,
  memcachedKey,
  MemcachedValueTooLargeError,
  MAX_KEY_LENGTH,
} from '../../src/backend/memcached/index.js';
import { type MemcachedProcess, startMemcached } from '../helpers/memcached-server.js';
import { type CountingProxy, startCountingProxy } from './counting-proxy.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
let prefixCounter = 0;
const nextPrefix = (): string => `mc${process.pid}x${++prefixCounter}`;

describe('MemcachedBackend', function () {
  let server: MemcachedProcess;
  let proxy: CountingProxy;
  const toClose: { close(): Promise<void> }[] = [];

  before(async function () {
    server = await startMemcached();
    proxy = await startCountingProxy(server.port);
  });

  afterEach(async function () {
    for (const item of toClose.splice(0)) await item.close();
  });

  after(async function () {
    await proxy.close();
    await server.stop();
  });

  /** A cache whose requests go through the counting proxy. */
  function countedCache(options: Record<string, unknown> = {}): { cache: Hermes; backend: MemcachedBackend; errors: HermesError[] } {
    const backend = new MemcachedBackend({ servers: `127.0.0.1:${proxy.port}`, ...options });
    const cache = new Hermes(backend, { prefix: nextPrefix(), ttl: 60 });
    const errors: HermesError[] = [];
    cache.on('error', (error) => errors.push(error));
    toClose.push(backend);
    return { cache, backend, errors };
  }

  describe('requests on the wire', function () {
    it('opens no connection on construction and attachment', async function () {
      proxy.reset();
      const connectionsBefore = proxy.total();
      const { cache } = countedCache();
      cache.wrap(async function idle() {
        return 1;
      });
      await sleep(50);
      expect(proxy.total()).to.equal(connectionsBefore);
      expect(Object.values(proxy.counts.commands).every((n) => n === 0)).to.equal(true);
    });

    it('serves a hit with 3 tags in exactly one request: one get of the entry, the namespace and the tags', async function () {
      const { cache } = countedCache();
      let calls = 0;
      const report = cache.wrap(async function report(id: number) {
        calls++;
        return { id };
      }, { tags: ['orders', 'users', 'eu'] });
      expect(await report(1)).to.deep.equal({ id: 1 });
      proxy.reset();
      expect(await report(1)).to.deep.equal({ id: 1 });
      expect(calls).to.equal(1);
      expect(proxy.total()).to.equal(1);
      expect(proxy.counts.commands.get).to.equal(1);
      expect(proxy.counts.getKeys[0]).to.have.length(5); // entry, namespace, 3 tags
      expect(proxy.counts.getKeys[0]?.[0]).to.equal(report.key(1));
    });

    it("serves a hit with a tags function in exactly one request: the call's own tags in the one get", async function () {
      const { cache } = countedCache();
      let calls = 0;
      const report = cache.wrap(async function report(id: number) {
        calls++;
        return { id };
      }, { tags: (id) => [`user:${id}`, 'users'] });
      expect(await report(1)).to.deep.equal({ id: 1 });
      expect(await report(2)).to.deep.equal({ id: 2 });
      proxy.reset();
      expect(await report(1)).to.deep.equal({ id: 1 });
      expect(calls).to.equal(2);
      expect(proxy.total()).to.equal(1);
      expect(proxy.counts.commands.get).to.equal(1);
      expect(proxy.counts.getKeys[0]).to.have.length(4); // entry, namespace, 2 tags
      expect(proxy.counts.getKeys[0]?.[0]).to.equal(report.key(1));
      proxy.reset();
      await cache.clean(['user:1']);
      expect(proxy.counts.commands).to.deep.include({ delete: 1 });
      await report(2);
      expect(calls).to.equal(2);
      await report(1);
      expect(calls).to.equal(3);
    });

    it('costs a miss: 1 get, then add + gets of the lock (and tag versions on first use), then set + cas', async function () {
      const { cache } = countedCache();
      const tagged = cache.wrap(async function tagged(n: number) {
        return n;
      }, { tags: ['t'] });
      proxy.reset();
      await tagged(1); // first use: the namespace and the tag are created in the lock's request
      expect(proxy.counts.commands).to.deep.include({ get: 2, add: 3, gets: 1, set: 1, cas: 1 });
      proxy.reset();
      await tagged(2); // tags exist: read, lock, write
      expect(proxy.counts.commands).to.deep.include({ get: 1, add: 1, gets: 1, set: 1, cas: 1 });
      expect(proxy.total()).to.equal(5);
    });

    it('invalidates an entry with two deletes and cleans tags with one delete per tag', async function () {
      const { cache } = countedCache();
      const fn = cache.wrap(async function fn(n: number) {
        return n;
      }, { tags: ['a', 'b'] });
      await fn(1);
      proxy.reset();
      await fn.invalidate(1);
      expect(proxy.counts.commands).to.deep.include({ delete: 2 });
      expect(proxy.total()).to.equal(2);
      proxy.reset();
      await cache.clean(['a', 'b']);
      expect(proxy.counts.commands).to.deep.include({ delete: 2 });
      expect(proxy.total()).to.equal(2);
    });

    it('many() of 100 keys is one multi-get (entries, namespace and tags once), then the misses\' locks and writes', async function () {
      const { cache } = countedCache();
      let calls = 0;
      const user = cache.wrap(async function user(id: number) {
        calls++;
        return { id };
      }, { tags: ['users', 'eu'] });
      const ids = Array.from({ length: 100 }, (_, i) => [i] as [number]);
      await user.many(ids);
      expect(calls).to.equal(100);
      proxy.reset();
      expect((await user.many(ids)).map((r) => r.id)).to.deep.equal(ids.map(([id]) => id));
      expect(calls).to.equal(100);
      expect(proxy.total()).to.equal(1);
      expect(proxy.counts.commands.get).to.equal(1);
      expect(proxy.counts.getKeys[0]).to.have.length(100 + 3); // the entries, the namespace, 2 tags
      for (let k = 0; k < 10; k++) await user.invalidate(k * 10);
      proxy.reset();
      await user.many(ids);
      expect(calls).to.equal(110);
      // One multi-get, then for each of the 10 misses: add + gets of its lock, set + cas of its entry.
      expect(proxy.counts.commands).to.deep.include({ get: 1, add: 10, gets: 10, set: 10, cas: 10 });
    });

    it('coalesces reads started in the same tick into one multi-get', async function () {
      const { cache } = countedCache();
      const square = cache.wrap(async function square(n: number) {
        return n * n;
      }, { tags: ['math'] });
      const ns = Array.from({ length: 20 }, (_, i) => i);
      await Promise.all(ns.map((n) => square(n)));
      proxy.reset();
      const results = await Promise.all(ns.map((n) => square(n)));
      expect(results).to.deep.equal(ns.map((n) => n * n));
      expect(proxy.total()).to.equal(1);
      // 20 entries + the namespace + the tag, each named once.
      expect(proxy.counts.getKeys[0]).to.have.length(22);
    });
  });

  describe("memcached's limits", function () {
    it('caches under long, spaced and control-character names, without collisions', async function () {
      const { cache, errors } = countedCache();
      const names = ['a b', 'a_b', 'a\nb', 'a\u0000b', 'é ü', 'x'.repeat(300), `${'x'.repeat(299)}y`, 'a~~b'];
      const fns = names.map((name) => {
        let calls = 0;
        const fn = cache.wrap(async (_n: number) => {
          calls++;
          return name;
        }, { name, tags: [`tag ${name}`] });
        return { fn, calls: () => calls };
      });
      for (const { fn } of fns) await fn(1);
      for (const [i, { fn, calls }] of fns.entries()) {
        expect(await fn(1)).to.equal(names[i]);
        expect(calls()).to.equal(1);
      }
      expect(errors).to.deep.equal([]);
      const forms = names.map((name) => memcachedKey(`p:entry:${name}:1`));
      expect(new Set(forms).size).to.equal(names.length);
      for (const form of forms) {
        expect(form.length).to.be.at.most(MAX_KEY_LENGTH);
        expect(form).to.match(/^p:entry:[\x21-\x7e]+$/);
      }
      expect(memcachedKey('p:entry:plain:1')).to.equal('p:entry:plain:1');
    });

    it('does not cache a value over maxValueSize: the caller gets it and an error event says why', async function () {
      const { cache, errors } = countedCache({ maxValueSize: 10_000 });
      let calls = 0;
      const incompressible = randomBytes(20_000).toString('base64');
      const big = cache.wrap(async function big() {
        calls++;
        return incompressible;
      });
      const small = cache.wrap(async function small() {
        return 'ok';
      });
      expect(await cache.wrap(async function noop() {
        return 0;
      })()).to.equal(0);
      const first = await Promise.all([big(), small()]);
      expect(first[0]).to.equal(incompressible);
      expect(await big()).to.equal(incompressible);
      expect(calls).to.equal(2);
      expect(await small()).to.equal('ok');
      const tooLarge = errors.filter((e) => e instanceof BackendError && e.cause instanceof MemcachedValueTooLargeError);
      expect(tooLarge).to.have.length(2);
      expect(tooLarge[0]?.message).to.match(/maxValueSize/);
    });

    it("reports the server's own refusal of an item over its -I limit the same way", async function () {
      const { cache, errors } = countedCache({ maxValueSize: 4 * 1024 * 1024 });
      const compressless = new Hermes(cache.backend, { prefix: nextPrefix(), compressor: false });
      compressless.on('error', (e) => errors.push(e));
      const big = compressless.wrap(async function big() {
        return 'y'.repeat(2 * 1024 * 1024);
      });
      expect(await big()).to.have.length(2 * 1024 * 1024);
      expect(errors.some((e) => e.cause instanceof MemcachedValueTooLargeError)).to.equal(true);
      const afterwards = compressless.wrap(async function afterwards() {
        return 'still works';
      });
      expect(await afterwards()).to.equal('still works');
      expect(await afterwards()).to.equal('still works');
    });
  });

  describe('connections', function () {
    it('does not close a client it was given', async function () {
      const client = new MemcacheClient({ server: server.address, noDelay: true });
      const backend = new MemcachedBackend({ client });
      const cache = new Hermes(backend, { prefix: nextPrefix() });
      const fn = cache.wrap(async function given() {
        return 7;
      });
      expect(await fn()).to.equal(7);
      await backend.close();
      await client.set('still-open', 'yes');
      expect((await client.get<{ value: string }>('still-open')).value).to.equal('yes');
      client.shutdown();
    });

    it('resolves pending lock waits as timed out on close()', async function () {
      const { backend } = countedCache();
      const request = { ref: new Keyspace('w').entryRef('f', '1'), tagKeys: [], lockTtlMs: 5000 };
      backend.attach({ prefix: 'w', codec: new Hermes().codec });
      expect((await backend.read({ ...request, lockToken: 'holder' })).locked).to.equal(true);
      expect((await backend.read({ ...request, lockToken: 'other' })).locked).to.equal(false);
      const pending = backend.waitForRelease(request.ref, 5000);
      await sleep(30);
      await backend.close();
      expect(await pending).to.equal(false);
    });

    it('wakes a waiter of another process by polling when the lock is released', async function () {
      const holder = new MemcachedBackend({ servers: server.address });
      const waiter = new MemcachedBackend({ servers: server.address });
      toClose.push(holder, waiter);
      const prefix = nextPrefix();
      const request = { ref: new Keyspace(prefix).entryRef('f', '1'), tagKeys: [], lockTtlMs: 5000 };
      expect((await holder.read({ ...request, lockToken: 'holder' })).locked).to.equal(true);
      const started = Date.now();
      const woken = waiter.waitForRelease(request.ref, 3000);
      await sleep(100);
      await holder.release(request.ref, 'holder');
      expect(await woken).to.equal(true);
      expect(Date.now() - started).to.be.within(100, 400);
      await holder.invalidate(request.ref);
    });
  });
});

describe('MemcachedBackend on two servers', function () {
  let servers: MemcachedProcess[];
  let proxies: CountingProxy[];

  before(async function () {
    servers = [await startMemcached(), await startMemcached()];
    proxies = await Promise.all(servers.map((s) => startCountingProxy(s.port)));
  });

  after(async function () {
    for (const p of proxies) await p.close();
    for (const s of servers) await s.stop();
  });

  it('spreads entries over both servers, each read one request to one server, clean reaching both', async function () {
    const backend = new MemcachedBackend({ servers: proxies.map((p) => `127.0.0.1:${p.port}`) });
    const cache = new Hermes(backend, { prefix: nextPrefix() });
    let calls = 0;
    const fn = cache.wrap(async function spread(n: number) {
      calls++;
      return n;
    }, { tags: ['x', 'y'] });
    const ns = Array.from({ length: 40 }, (_, i) => i);
    for (const n of ns) await fn(n);
    for (const p of proxies) p.reset();
    for (const n of ns) expect(await fn(n)).to.equal(n);
    expect(calls).to.equal(40);
    const gets = proxies.map((p) => p.counts.commands.get ?? 0);
    // Every hit was one get to one server, and both servers hold entries.
    expect(gets[0]! + gets[1]!).to.equal(40);
    expect(gets[0]).to.be.above(5);
    expect(gets[1]).to.be.above(5);
    for (const p of proxies) p.reset();
    await cache.clean(['x']);
    for (const p of proxies) expect(p.counts.commands.delete).to.equal(1);
    for (const n of ns) expect(await fn(n)).to.equal(n);
    expect(calls).to.equal(80);
    await cache.clean();
    for (const n of ns.slice(0, 5)) await fn(n);
    expect(calls).to.equal(85);
    await backend.close();
  });
});

describe('MemcachedBackend with a server killed mid-run', function () {
  it('falls open while the server is down, then caches again once it is back', async function () {
    let server = await startMemcached();
    const { port } = server;
    const backend = new MemcachedBackend({ servers: server.address, retryInterval: 100, timeout: 300, connectTimeout: 300 });
    // The circuit breaker opens after 5 failures; its cooldown is shortened to the reconnection's.
    const cache = new Hermes(backend, { prefix: nextPrefix(), circuitBreaker: { cooldown: 100 } });
    const errors: HermesError[] = [];
    cache.on('error', (e) => errors.push(e));
    let calls = 0;
    const fn = cache.wrap(async function survive(n: number) {
      calls++;
      return n * 10;
    }, { tags: ['t'] });
    try {
      expect(await fn(1)).to.equal(10);
      expect(await fn(1)).to.equal(10);
      expect(calls).to.equal(1);

      await server.stop();
      const started = Date.now();
      for (let i = 0; i < 5; i++) expect(await fn(1)).to.equal(10);
      expect(Date.now() - started).to.be.below(1000); // fails fast, no waiting on timeouts
      expect(calls).to.equal(6);
      expect(errors.length).to.be.at.least(1);
      expect(errors.every((e) => e instanceof BackendError)).to.equal(true);

      server = await startMemcached({ port });
      await sleep(150); // past retryInterval: the next request reconnects
      expect(await fn(2)).to.equal(20);
      const before = calls;
      expect(await fn(2)).to.equal(20);
      expect(await fn(2)).to.equal(20);
      expect(calls).to.equal(before); // cached again
    } finally {
      await backend.close();
      await server.stop();
    }
  });
});
