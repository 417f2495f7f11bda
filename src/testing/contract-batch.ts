/**
 * The cache tier of the contract suite, continued: batches, `wrapped.many(argsList)` — results
 * in order, each element with the decisions of a single call, the function called only for the
 * misses this process locked, equal arguments computed once, errors as `Promise.all` has them.
 *
 * @module
 */

import assert from 'node:assert/strict';
import type { Backend, EntryRef } from '../backend/backend.js';
import { ArgumentError, OptionError } from '../errors.js';
import { type CacheHarness, sleep, staleCache } from './cache-harness.js';

/** Registers the batch clauses (inside the backend's `describe`). */
export function registerBatchClauses(h: CacheHarness): void {
  describe('batches (many)', function () {
    it('many(): results in the order asked, the function called only for the misses', async function () {
      const calls: number[] = [];
      const square = h.cache.wrap(async function square(n: number) {
        calls.push(n);
        return { n, square: n * n };
      }, { tags: ['batch'] });
      assert.deepEqual(await square(2), { n: 2, square: 4 });
      assert.deepEqual(await square(5), { n: 5, square: 25 });
      calls.length = 0;
      const results = await square.many([[5], [1], [2], [3], [4]]);
      assert.deepEqual(results.map((r) => r.square), [25, 1, 4, 9, 16]);
      assert.deepEqual(calls.sort(), [1, 3, 4]);
      // All hits now: nothing computed.
      assert.deepEqual((await square.many([[4], [3], [2], [1], [5]])).map((r) => r.n), [4, 3, 2, 1, 5]);
      assert.equal(calls.length, 3);
      assert.deepEqual(await square.many([]), []);
      const stats = h.cache.stats();
      assert.equal(stats.misses, 5); // 2 and 5, then 1, 3 and 4
      assert.deepEqual(h.errors, []);
    });

    it('many(): equal arguments in one batch are read and computed once', async function () {
      let calls = 0;
      const id = h.cache.wrap(async function id(key: string) {
        calls++;
        await sleep(20);
        return `${key}:${calls}`;
      });
      const results = await id.many([['a'], ['b'], ['a'], ['a'], ['b']]);
      assert.equal(calls, 2);
      assert.equal(results[0], results[2]);
      assert.equal(results[0], results[3]);
      assert.equal(results[1], results[4]);
      assert.notEqual(results[0], results[1]);
    });

    it('many(): invalidations hold per element — clean(tags) drops the batch, invalidate(args) one entry', async function () {
      let calls = 0;
      const user = h.cache.wrap(async function user(id: number) {
        calls++;
        return `user ${id} v${calls}`;
      }, { tags: ['users'] });
      const ids = [[1], [2], [3], [4]] as [number][];
      const first = await user.many(ids);
      assert.equal(calls, 4);
      await user.invalidate(3);
      const second = await user.many(ids);
      assert.equal(calls, 5);
      assert.deepEqual(second.filter((v, i) => v !== first[i]), ['user 3 v5']);
      await h.cache.clean(['users']);
      const third = await user.many(ids);
      assert.equal(calls, 9);
      for (let i = 0; i < ids.length; i++) assert.notEqual(third[i], second[i]);
      assert.deepEqual(await user.many(ids), third);
      assert.equal(calls, 9);
    });

    it('many(): an element whose call is in flight joins it instead of computing again', async function () {
      let calls = 0;
      const slow = h.cache.wrap(async function slow(n: number) {
        calls++;
        await sleep(100);
        return n * 10;
      });
      const single = slow(1);
      await until(() => calls === 1);
      const [results, alone] = await Promise.all([slow.many([[1], [2]]), single]);
      assert.deepEqual(results, [10, 20]);
      assert.equal(alone, 10);
      assert.equal(calls, 2);
      // And a single call made while a batch computes joins the batch's element.
      const batch = slow.many([[3], [4]]);
      await until(() => calls === 4);
      assert.equal(await slow(4), 40);
      assert.deepEqual(await batch, [30, 40]);
      assert.equal(calls, 4);
    });

    it('many(): across processes, an entry locked by another process is waited for, not computed', async function () {
      const peer = await h.peerCache();
      const computedBy: string[] = [];
      const make = (who: string) => async (n: number): Promise<string> => {
        computedBy.push(`${who}:${n}`);
        await sleep(n === 3 ? 300 : 10);
        return `n${n}`;
      };
      const here = h.cache.wrap(make('here'), { name: 'shared' });
      const there = peer.wrap(make('there'), { name: 'shared' });
      const held = there(3); // the peer takes the lock of 3 and computes for 300 ms
      await until(() => computedBy.includes('there:3'));
      const results = await here.many([[1], [2], [3], [4]]);
      assert.deepEqual(results, ['n1', 'n2', 'n3', 'n4']);
      assert.equal(await held, 'n3');
      assert.deepEqual(computedBy.sort(), ['here:1', 'here:2', 'here:4', 'there:3']);
      // Two processes asking for the same batch at once: each entry computed once in all.
      computedBy.length = 0;
      const keys = [[10], [11], [12], [13], [14], [15]] as [number][];
      const [a, b] = await Promise.all([here.many(keys), there.many(keys)]);
      assert.deepEqual(a, b);
      assert.equal(computedBy.length, keys.length);
      assert.deepEqual(h.errors, []);
    });

    it('many(): a throwing element rejects the batch with its error, caches nothing for it, and the others are cached', async function () {
      let calls = 0;
      const fragile = h.cache.wrap(async function fragile(n: number) {
        calls++;
        if (n === 2) {
          await sleep(50); // after the others were computed
          throw new Error(`no ${n}`);
        }
        return n;
      });
      await assert.rejects(fragile.many([[1], [2], [3]]), /no 2/);
      assert.equal(calls, 3);
      await sleep(50); // the others' writes
      await assert.rejects(fragile.many([[1], [2], [3]]), /no 2/);
      assert.equal(calls, 4); // only 2 computed again
      assert.deepEqual(await fragile.many([[3], [1]]), [3, 1]);
      assert.equal(calls, 4);
    });

    it('many(): a bad argument list rejects (OptionError), an unkeyable argument rejects its batch (ArgumentError)', async function () {
      let calls = 0;
      const fn = h.cache.wrap(async function keyed(value: unknown) {
        calls++;
        return typeof value;
      });
      await assert.rejects((fn.many as (list: unknown) => Promise<unknown>)([1, 2]), OptionError);
      await assert.rejects((fn.many as (list: unknown) => Promise<unknown>)('nope'), OptionError);
      await assert.rejects(fn.many([[1], [Symbol('s')]]), ArgumentError);
      // The valid element still goes on (a call now joins it or hits its entry): computed once.
      assert.equal(await fn(1), 'number');
      assert.equal(calls, 1);
    });

    it('many(): stale values are served within stale-while-revalidate and refreshed once in the background', async function () {
      const cache = staleCache(h, { staleWhileRevalidate: 30 });
      let calls = 0;
      const versions = new Map<string, number>();
      const price = cache.wrap(async function price(sku: string) {
        calls++;
        const version = (versions.get(sku) ?? 0) + 1;
        versions.set(sku, version);
        return `${sku}:v${version}`;
      });
      assert.deepEqual(await price.many([['a'], ['b']]), ['a:v1', 'b:v1']);
      await sleep(300); // past the fresh time
      assert.deepEqual(await price.many([['a'], ['b']]), ['a:v1', 'b:v1']);
      await until(() => calls === 4); // the background refreshes
      await sleep(20); // their writes
      assert.deepEqual(await price.many([['a'], ['b']]), ['a:v2', 'b:v2']);
      assert.equal(cache.stats().staleServed, 2);
    });

    it('many() without the backend\'s readMany: the same results through one read per element', async function () {
      const backend = h.backend;
      const hidden = hideReadMany(backend);
      try {
        let calls = 0;
        const fn = h.cache.wrap(async function plain(n: number) {
          calls++;
          return n + 100;
        }, { tags: ['plain'] });
        await fn(1);
        assert.deepEqual(await fn.many([[1], [2], [1], [3]]), [101, 102, 101, 103]);
        assert.equal(calls, 3);
        assert.deepEqual(await fn.many([[3], [2], [1]]), [103, 102, 101]);
        assert.equal(calls, 3);
      } finally {
        hidden();
      }
    });

    it('Backend.readMany, when present: one reply per request, in order, as read() would give', async function () {
      const backend = h.backend;
      if (backend.readMany === undefined) {
        assert.equal(typeof backend.read, 'function'); // the core falls back to read(), checked above
        return;
      }
      let calls = 0;
      const fn = h.cache.wrap(async function direct(n: number) {
        calls++;
        return n;
      }, { tags: ['d1', 'd2'] });
      await fn(1);
      const keyspace = h.cache.keyspace;
      const tagKeys = ['d1', 'd2'].map((tag) => keyspace.tagKey(tag));
      const ref = (n: number): EntryRef => keyspace.refOf(fn.key(n));
      const replies = await Promise.all(
        backend.readMany([
          { ref: ref(2), tagKeys, lockToken: 'token-2', lockTtlMs: 5000 },
          { ref: ref(1), tagKeys, lockToken: 'token-1', lockTtlMs: 5000 },
          { ref: ref(3), tagKeys, lockToken: undefined, lockTtlMs: 5000 },
        ]),
      );
      const [miss, hit, unlocked] = replies as [(typeof replies)[number], (typeof replies)[number], (typeof replies)[number]];
      assert.equal(miss.entry, undefined);
      assert.equal(miss.locked, true);
      assert.notEqual(hit.entry, undefined);
      assert.equal(hit.locked, false);
      assert.equal(hit.stale, false);
      assert.equal(unlocked.entry, undefined);
      assert.equal(unlocked.locked, false);
      assert.match(miss.tagHash, /^[0-9a-f]{16}$/);
      // The lock taken by the batch read is real: a second read does not get it.
      const again = await backend.read({ ref: ref(2), tagKeys, lockToken: 'token-x', lockTtlMs: 5000 });
      assert.equal(again.locked, false);
      await backend.release(ref(2), 'token-2');
      assert.equal(calls, 1);
    });
  });
}

/** Resolves once `check` holds, polled every 5 ms; rejects after 5 s. */
async function until(check: () => boolean): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > 5000) throw new Error(`timed out waiting for ${check.toString()}`);
    await sleep(5);
  }
}

/** Hides a backend's `readMany` (the core then reads one by one); returns the undo. */
function hideReadMany(backend: Backend): () => void {
  Object.defineProperty(backend, 'readMany', { value: undefined, configurable: true, writable: true });
  return () => {
    delete (backend as { readMany?: unknown }).readMany;
  };
}
