/**
 * The backend contract suite: the same mocha tests for every backend, hermes' own and
 * third-party ones (`import { registerBackendContract } from 'hermes-cache/testing'`). A
 * backend's spec calls {@link registerBackendContract} with a factory inside a mocha run; the
 * suite drives the backend through `Hermes` as users do, so it checks the contract and the
 * core's policy on top of it together. Needs `mocha` (its globals) and `chai`.
 *
 * @module
 */

import { expect } from 'chai';
import type { Backend } from '../backend/backend.js';
import { CorruptEntryError, type HermesError, TimeoutError } from '../errors.js';
import { Hermes } from '../hermes.js';
import { registerBackendClauses } from './contract-backend.js';

/** How the contract suite builds and pokes at a backend. */
export interface BackendContractOptions {
  /** Suite title, e.g. `'MemoryBackend'`. */
  readonly name: string;
  /** A backend on the shared store (a server, or one in-process store). Called per test. */
  createBackend(): Backend | Promise<Backend>;
  /**
   * Another backend instance on the same store as `backend`, as a second process would have:
   * used for cross-instance stampede tests. In-process stores return the same instance.
   */
  createPeer(backend: Backend): Backend | Promise<Backend>;
  /**
   * Writes raw bytes under a key, bypassing the cache, to test corrupt entries. Omit for
   * stores that keep live values (their entries cannot hold foreign bytes).
   */
  writeRaw?(backend: Backend, key: string, bytes: Buffer): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let prefixCounter = 0;

/** Registers the contract tests for one backend. */
export function registerBackendContract(options: BackendContractOptions): void {
  registerBackendClauses(options);
  describe(`Backend contract: ${options.name}`, function () {
    let backend: Backend;
    let cache: Hermes;
    let prefix: string;
    const opened: Backend[] = [];
    const errors: HermesError[] = [];

    beforeEach(async function () {
      prefix = `contract${process.pid}x${++prefixCounter}`;
      backend = await options.createBackend();
      opened.push(backend);
      errors.length = 0;
      cache = new Hermes(backend, { prefix, ttl: 60 });
      cache.on('error', (error) => errors.push(error));
    });

    afterEach(async function () {
      await cache.clean().catch(() => undefined);
      for (const b of opened.splice(0)) await b.close();
    });

    async function peerCache(extra: Record<string, unknown> = {}): Promise<Hermes> {
      const peer = await options.createPeer(backend);
      if (peer !== backend) opened.push(peer);
      const other = new Hermes(peer, { prefix, ttl: 60, ...extra });
      other.on('error', (error) => errors.push(error));
      return other;
    }

    it('misses, then hits without calling the function again', async function () {
      let calls = 0;
      const multiply = cache.wrap(async function multiply(a: number, b: number) {
        calls++;
        return a * b;
      });
      expect(await multiply(2, 333)).to.equal(666);
      expect(await multiply(2, 333)).to.equal(666);
      expect(calls).to.equal(1);
      expect(await multiply(3, 333)).to.equal(999);
      expect(calls).to.equal(2);
      expect(errors).to.deep.equal([]);
    });

    it('caches sync functions and structured results', async function () {
      let calls = 0;
      const build = cache.wrap(function build(id: number) {
        calls++;
        return { id, list: [1, 'two', null], nested: { ok: true } };
      });
      const first = await build(7);
      expect(await build(7)).to.deep.equal(first);
      expect(first).to.deep.equal({ id: 7, list: [1, 'two', null], nested: { ok: true } });
      expect(calls).to.equal(1);
    });

    it('caches undefined and null as values, distinct from a miss', async function () {
      let calls = 0;
      const nothing = cache.wrap(async function nothing(kind: string) {
        calls++;
        return kind === 'null' ? null : undefined;
      });
      expect(await nothing('null')).to.equal(null);
      expect(await nothing('null')).to.equal(null);
      expect(await nothing('undefined')).to.equal(undefined);
      expect(await nothing('undefined')).to.equal(undefined);
      expect(calls).to.equal(2);
    });

    it('expires entries after their TTL', async function () {
      let calls = 0;
      const short = cache.wrap(async function short() {
        calls++;
        return calls;
      }, { ttl: 0.25 });
      expect(await short()).to.equal(1);
      expect(await short()).to.equal(1);
      await sleep(400);
      expect(await short()).to.equal(2);
    });

    it('invalidates one entry and leaves the others', async function () {
      let calls = 0;
      const square = cache.wrap(async function square(n: number) {
        calls++;
        return n * n;
      });
      await square(2);
      await square(3);
      await square.invalidate(2);
      expect(await square(2)).to.equal(4);
      expect(await square(3)).to.equal(9);
      expect(calls).to.equal(3);
    });

    it('cleans by tag: every entry carrying any of the tags, and no other', async function () {
      const calls = { ab: 0, bc: 0, c: 0, none: 0 };
      const ab = cache.wrap(async function ab(n: number) {
        calls.ab++;
        return n;
      }, { tags: ['a', 'b'] });
      const bc = cache.wrap(async function bc(n: number) {
        calls.bc++;
        return n;
      }, { tags: ['b', 'c'] });
      const c = cache.wrap(async function c(n: number) {
        calls.c++;
        return n;
      }, { tags: ['c'] });
      const none = cache.wrap(async function none(n: number) {
        calls.none++;
        return n;
      });
      const all = async (): Promise<void> => {
        for (const n of [1, 2]) await Promise.all([ab(n), bc(n), c(n), none(n)]);
      };
      await all();
      await all();
      expect(calls).to.deep.equal({ ab: 2, bc: 2, c: 2, none: 2 });
      await cache.clean(['a']);
      await all();
      expect(calls).to.deep.equal({ ab: 4, bc: 2, c: 2, none: 2 });
      await cache.clean(['b', 'c']);
      await all();
      expect(calls).to.deep.equal({ ab: 6, bc: 4, c: 4, none: 2 });
      await cache.clean(['unknown-tag']);
      await all();
      expect(calls).to.deep.equal({ ab: 6, bc: 4, c: 4, none: 2 });
    });

    it('clean() removes every key under the prefix and nothing of another prefix', async function () {
      let calls = 0;
      const fn = async (n: number): Promise<number> => {
        calls++;
        return n;
      };
      const mine = cache.wrap(fn, { name: 'fn', tags: ['t'] });
      const peer = await options.createPeer(backend);
      if (peer !== backend) opened.push(peer);
      const other = new Hermes(peer, { prefix: `${prefix}other` });
      const theirs = other.wrap(fn, { name: 'fn', tags: ['t'] });
      await mine(1);
      await theirs(1);
      expect(Object.keys(await backend.dump(prefix))).to.have.length(2); // entry + tag
      await cache.clean();
      expect(await backend.dump(prefix)).to.deep.equal({});
      expect(Object.keys(await peer.dump(`${prefix}other`))).to.have.length(2);
      await mine(1);
      await theirs(1);
      expect(calls).to.equal(3);
      await other.clean();
    });

    it('dump() shows entries with decoded values and tags with their versions', async function () {
      const tagged = cache.wrap(async function tagged(n: number) {
        return { n, when: new Date(0) };
      }, { tags: ['math'] });
      await tagged(5);
      const dump = await backend.dump();
      expect(dump[tagged.key(5)]).to.deep.equal({ n: 5, when: new Date(0) });
      expect(dump[`${prefix}:tag:math`]).to.be.a('string').and.not.empty;
      expect(Object.keys(dump).sort()).to.deep.equal([tagged.key(5), `${prefix}:tag:math`].sort());
    });

    it('runs a cold key once for 100 concurrent callers', async function () {
      let calls = 0;
      const slow = cache.wrap(async function slow(n: number) {
        calls++;
        await sleep(30);
        return n * 2;
      });
      const results = await Promise.all(Array.from({ length: 100 }, () => slow(21)));
      expect(results).to.deep.equal(Array(100).fill(42));
      expect(calls).to.equal(1);
    });

    it('runs a cold key once across two cache instances sharing the store (lock + wake-up)', async function () {
      const other = await peerCache({ lockWait: 5000 });
      let calls = 0;
      const fn = async (n: number): Promise<number> => {
        calls++;
        await sleep(100);
        return n + 1;
      };
      const a = cache.wrap(fn, { name: 'shared' });
      const b = other.wrap(fn, { name: 'shared' });
      const started = Date.now();
      const first = a(1);
      await sleep(10); // `a` holds the lock
      const waiters = Array.from({ length: 50 }, () => b(1));
      const results = await Promise.all([first, ...waiters]);
      const elapsed = Date.now() - started;
      expect(results).to.deep.equal(Array(51).fill(2));
      expect(calls).to.equal(1);
      // Woken by the release, not by the 5 s wait running out.
      expect(elapsed).to.be.below(2000);
    });

    it('a throwing function rejects every concurrent caller, caches nothing, releases its lock', async function () {
      const other = await peerCache({ lockWait: 5000 });
      let calls = 0;
      const fn = async (n: number): Promise<number> => {
        calls++;
        await sleep(50);
        if (calls === 1) throw new Error('boom');
        return n;
      };
      const a = cache.wrap(fn, { name: 'flaky' });
      const b = other.wrap(fn, { name: 'flaky' });
      const local = Array.from({ length: 10 }, () => a(1));
      const settled = await Promise.allSettled(local);
      expect(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'boom')).to.equal(true);
      expect(calls).to.equal(1);
      // The lock was released: the peer computes at once instead of waiting 5 s.
      const started = Date.now();
      expect(await b(1)).to.equal(1);
      expect(Date.now() - started).to.be.below(1000);
      expect(await a(1)).to.equal(1);
      expect(calls).to.equal(2);
    });

    it('never serves a result computed while one of its tags was invalidated', async function () {
      let calls = 0;
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const report = cache.wrap(async function report(id: number) {
        calls++;
        if (calls === 1) await gate; // the first computation is slow...
        return `v${calls}:${id}`;
      }, { tags: ['orders'] });
      const pending = report(1);
      await sleep(20);
      await cache.clean(['orders']); // ...and its tag is invalidated while it runs
      release();
      expect(await pending).to.equal('v1:1'); // its caller gets the result...
      expect(await report(1)).to.equal('v2:1'); // ...but it is never served afterwards
      expect(await report(1)).to.equal('v2:1');
      expect(calls).to.equal(2);
    });

    it('never stores a result whose computation overlapped invalidate() of its entry', async function () {
      let calls = 0;
      let openGate: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (openGate = resolve));
      const profile = cache.wrap(async function profile(id: number) {
        const n = ++calls;
        if (n === 1) await gate;
        return `v${n}:${id}`;
      });
      const pending = profile(1);
      await sleep(20);
      await profile.invalidate(1);
      openGate();
      expect(await pending).to.equal('v1:1');
      expect(await profile(1)).to.equal('v2:1');
      expect(await profile(1)).to.equal('v2:1');
    });

    describe('stale values (grace, stale-while-revalidate, timeouts)', function () {
      const stale = (extra: Record<string, unknown>): Hermes => {
        const c = new Hermes(backend, { prefix, ttl: 0.2, jitter: 0, ...extra });
        c.on('error', (error) => errors.push(error));
        return c;
      };

      it('grace: serves the stale value when the refresh throws, says why, and spares the failing function', async function () {
        const cache2 = stale({ grace: 30 });
        const reasons: string[] = [];
        cache2.on('stale', (event) => reasons.push(event.reason));
        let calls = 0;
        const price = cache2.wrap(async function price(sku: string) {
          calls++;
          if (calls > 1) throw new Error('upstream down');
          return `${sku}:v1`;
        });
        expect(await price('a')).to.equal('a:v1');
        await sleep(300); // past ttl, within grace
        expect(await price('a')).to.equal('a:v1');
        expect(calls).to.equal(2);
        expect(reasons).to.deep.equal(['error']);
        // Written back fresh for a while: the next callers do not call the failing function.
        expect(await price('a')).to.equal('a:v1');
        expect(calls).to.equal(2);
        expect(cache2.stats().staleServed).to.equal(1);
      });

      it('grace never serves an entry invalidated by a tag or by invalidate()', async function () {
        const cache2 = stale({ grace: 30 });
        let calls = 0;
        const fn = cache2.wrap(async function report(n: number) {
          calls++;
          if (calls > 2) throw new Error('down');
          return n;
        }, { tags: ['r'] });
        await fn(1);
        await fn(2);
        await sleep(300);
        await cache2.clean(['r']);
        const viaTag = await fn(1).then(() => 'served', (e: unknown) => (e as Error).message);
        expect(viaTag).to.equal('down');
        await fn.invalidate(2);
        const viaInvalidate = await fn(2).then(() => 'served', (e: unknown) => (e as Error).message);
        expect(viaInvalidate).to.equal('down');
      });

      it('grace: callers without the lock get the stale value at once while one caller refreshes', async function () {
        const cache2 = stale({ grace: 30 });
        const peerBackend = await options.createPeer(backend);
        if (peerBackend !== backend) opened.push(peerBackend);
        const peer = new Hermes(peerBackend, { prefix, ttl: 0.2, jitter: 0, grace: 30 });
        let calls = 0;
        const fn = async (): Promise<string> => {
          calls++;
          if (calls > 1) await sleep(300);
          return `v${calls}`;
        };
        const a = cache2.wrap(fn, { name: 'slowRefresh' });
        const b = peer.wrap(fn, { name: 'slowRefresh' });
        expect(await a()).to.equal('v1');
        await sleep(300);
        const refreshing = a(); // takes the lock, recomputes for 300 ms
        await sleep(30);
        const started = Date.now();
        expect(await b()).to.equal('v1'); // no lock: stale at once
        expect(Date.now() - started).to.be.below(200);
        expect(await refreshing).to.equal('v2');
        expect(await b()).to.equal('v2');
        expect(calls).to.equal(2);
      });

      it('stale-while-revalidate: every caller gets the stale value at once; one refresh in total', async function () {
        const cache2 = stale({ staleWhileRevalidate: 30, ttl: 0.6 });
        const peerBackend = await options.createPeer(backend);
        if (peerBackend !== backend) opened.push(peerBackend);
        const peer = new Hermes(peerBackend, { prefix, ttl: 0.6, jitter: 0, staleWhileRevalidate: 30 });
        let calls = 0;
        const fn = async (): Promise<string> => {
          calls++;
          await sleep(calls > 1 ? 150 : 0);
          return `v${calls}`;
        };
        const a = cache2.wrap(fn, { name: 'swr' });
        const b = peer.wrap(fn, { name: 'swr' });
        expect(await a()).to.equal('v1');
        await sleep(700);
        const started = Date.now();
        const served = await Promise.all([a(), a(), b(), b(), a(), b()]);
        expect(Date.now() - started).to.be.below(120); // nobody waited for the 150 ms refresh
        expect(served).to.deep.equal(Array(6).fill('v1'));
        await sleep(300); // the refresh is written, and fresh for 0.6 s
        expect(await a()).to.equal('v2');
        expect(await b()).to.equal('v2');
        expect(calls).to.equal(2);
      });

      it('timeout.soft serves the stale value and lets the refresh finish in the background', async function () {
        const cache2 = stale({ grace: 30, timeout: { soft: 50 }, ttl: 0.6 });
        const reasons: string[] = [];
        cache2.on('stale', (event) => reasons.push(event.reason));
        let calls = 0;
        const fn = cache2.wrap(async function softly() {
          calls++;
          if (calls > 1) await sleep(300);
          return `v${calls}`;
        });
        expect(await fn()).to.equal('v1');
        await sleep(700);
        const started = Date.now();
        expect(await fn()).to.equal('v1');
        expect(Date.now() - started).to.be.within(40, 250);
        expect(reasons).to.deep.equal(['timeout']);
        await sleep(400); // the refresh (300 ms) is written, fresh for 0.6 s
        expect(await fn()).to.equal('v2');
        expect(calls).to.equal(2);
      });

      it('timeout.hard rejects with a TimeoutError and still caches the result', async function () {
        const cache2 = stale({ timeout: { hard: 50 }, ttl: 60 });
        let calls = 0;
        const fn = cache2.wrap(async function hard() {
          calls++;
          await sleep(200);
          return 'late';
        });
        const started = Date.now();
        const error = await fn().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(TimeoutError);
        expect(Date.now() - started).to.be.below(180);
        await sleep(300);
        expect(await fn()).to.equal('late');
        expect(calls).to.equal(1);
        expect(cache2.stats().timeouts).to.equal(1);
      });
    });

    if (options.writeRaw) {
      const writeRaw = options.writeRaw.bind(options);

      it('treats corrupt stored bytes as a miss with an error event, then overwrites them', async function () {
        let calls = 0;
        const item = cache.wrap(async function item(n: number) {
          calls++;
          return { n };
        });
        const key = item.key(1);
        // The tag hash this backend expects for an untagged entry, as its read reports it.
        const { tagHash: hash } = await backend.read({ ref: cache.keyspace.refOf(key), tagKeys: [], lockToken: undefined, lockTtlMs: 1000 });
        // A valid header (format 1, JSON, that hash) over a payload that is not JSON.
        const header = `h1j0${hash}${String(Date.now() + 60_000).padStart(13, '0')}`;
        await writeRaw(backend, key, Buffer.from(`${header}{"n": 1, broken`, 'latin1'));
        expect(await item(1)).to.deep.equal({ n: 1 });
        expect(calls).to.equal(1);
        expect(errors.some((e) => e instanceof CorruptEntryError && e.key === key)).to.equal(true);
        expect(await item(1)).to.deep.equal({ n: 1 });
        expect(calls).to.equal(1);
      });

      it('never stores a recompute over corrupt bytes that overlapped invalidate() of its entry', async function () {
        let source = 'old';
        let calls = 0;
        let openGate: () => void = () => undefined;
        const gate = new Promise<void>((resolve) => (openGate = resolve));
        const item = cache.wrap(async function item(n: number) {
          const seen = source; // reads its source, then is slow
          if (++calls === 1) await gate;
          return `${seen}:${n}`;
        });
        const key = item.key(1);
        const { tagHash: hash } = await backend.read({ ref: cache.keyspace.refOf(key), tagKeys: [], lockToken: undefined, lockTtlMs: 1000 });
        const header = `h1j0${hash}${String(Date.now() + 60_000).padStart(13, '0')}`;
        await writeRaw(backend, key, Buffer.from(`${header}{"broken`, 'latin1'));
        const pending = item(1); // meets the corrupt bytes and recomputes
        await sleep(30);
        source = 'new';
        await item.invalidate(1); // acknowledged while the recompute still runs
        openGate();
        expect(await pending).to.equal('old:1'); // its own caller gets it...
        expect(await item(1)).to.equal('new:1'); // ...but it was not stored over the invalidation
        expect(calls).to.equal(2);
        expect(await item(1)).to.equal('new:1');
        expect(calls).to.equal(2);
        expect(errors.some((e) => e instanceof CorruptEntryError && e.key === key)).to.equal(true);
      });

      it('treats foreign or truncated bytes under an entry key as a miss', async function () {
        let calls = 0;
        const item = cache.wrap(async function item(n: number) {
          calls++;
          return n;
        });
        for (const junk of ['', 'x', 'not a hermes entry at all, just some bytes', 'h9']) {
          await writeRaw(backend, item.key(1), Buffer.from(junk, 'latin1'));
          expect(await item(1)).to.equal(1);
        }
        expect(calls).to.equal(4);
        expect(await item(1)).to.equal(1);
        expect(calls).to.equal(4);
      });
    }
  });
}
