/**
 * The cache tier of the contract suite, continued: early refresh (`earlyRefresh`, XFetch). The
 * store decides, on a fresh hit, whether to refresh the entry before it expires; the caller
 * whose read takes the lock serves the hit and refreshes in the background, every other caller
 * keeps getting hits. Written with `node:assert/strict`.
 *
 * @module
 */

import assert from 'node:assert/strict';
import type { EntryRecord } from '../codec.js';
import type { Hermes } from '../hermes.js';
import type { EntryRef } from '../keys.js';
import { entryRef, type Harness, readRequest } from './backend-harness.js';
import { type CacheHarness, sleep } from './cache-harness.js';

/** What a caller saw, and when (ms since the first value was stored). */
interface Seen {
  readonly at: number;
  readonly value: string;
  readonly tookMs: number;
}

/** Calls `fn` back to back every `everyMs` from `from` to `until` (ms since `t0`), recording each. */
async function hammer(fn: () => Promise<string>, t0: number, from: number, until: number, everyMs: number): Promise<Seen[]> {
  const seen: Seen[] = [];
  const wait = t0 + from - Date.now();
  if (wait > 0) await sleep(wait);
  while (Date.now() - t0 < until) {
    const started = Date.now();
    const value = await fn();
    seen.push({ at: started - t0, value, tookMs: Date.now() - started });
    await sleep(everyMs);
  }
  return seen;
}

/** Sums a counter of the caches' stats. */
function total(caches: readonly Hermes[], counter: 'hits' | 'misses' | 'computations' | 'lockWaits' | 'earlyRefreshes'): number {
  return caches.reduce((sum, cache) => sum + cache.stats()[counter], 0);
}

/** Registers the early-refresh clauses (inside the cache tier's `describe`). */
export function registerEarlyClauses(h: CacheHarness): void {
  describe('early refresh (earlyRefresh, XFetch)', function () {
    it('refreshes a hot entry before it expires: one computation across two caches, every caller a hit (without it: misses)', async function () {
      this.timeout(20_000);
      // A 40 ms function with beta 3 looks ahead about 120 ms (exponentially distributed): the
      // callers that start 200 ms before the expiry trigger one refresh before it, and the
      // refreshed entry (fresh for 2 s more) is far from its own expiry until they stop.
      const options = { ttl: 2, jitter: 0, earlyRefresh: { beta: 3 } };
      const a = h.cacheOn(h.backend, options);
      const b = await h.peerCache(options);
      const early: number[] = [];
      for (const cache of [a, b]) cache.on('earlyRefresh', (event) => early.push(event.freshForMs));
      let computed = 0;
      const fn = async (): Promise<string> => {
        const n = ++computed;
        await sleep(40);
        return `v${n}`;
      };
      const fa = a.wrap(fn, { name: 'hotKey' });
      const fb = b.wrap(fn, { name: 'hotKey' });
      assert.equal(await fa(), 'v1');
      const t0 = Date.now(); // the entry is fresh until about t0 + 2000
      const [seenA, seenB] = await Promise.all([hammer(fa, t0, 1800, 2300, 8), hammer(fb, t0, 1804, 2300, 8)]);
      const seen = [...seenA, ...seenB].sort((x, y) => x.at - y.at);
      assert.ok(seen.length >= 40, `only ${seen.length} calls were made`);
      // Every caller got a cached value at once: no miss, no wait, past the expiry too.
      assert.equal(total([a, b], 'misses'), 1, 'only the first call misses');
      assert.equal(total([a, b], 'lockWaits'), 0, 'nobody waited for a computation');
      assert.equal(total([a, b], 'hits'), seen.length);
      assert.ok(seen.every((s) => s.value === 'v1' || s.value === 'v2'), JSON.stringify(seen));
      // One refresh, started while the entry was still fresh, across both caches.
      assert.equal(computed, 2, 'one computation at first, one refresh');
      assert.equal(total([a, b], 'earlyRefreshes'), 1);
      assert.equal(early.length, 1);
      assert.ok((early[0] as number) > 0, `the refresh started ${-(early[0] as number)} ms after the expiry`);
      // The refreshed value is served from before the original expiry on.
      const afterExpiry = seen.filter((s) => s.at >= 2050);
      assert.ok(afterExpiry.length > 0 && afterExpiry.every((s) => s.value === 'v2'), JSON.stringify(afterExpiry));

      // The same load without earlyRefresh misses at the expiry: what the assertions above rule out.
      const plain = { ttl: 1, jitter: 0 };
      const c = h.cacheOn(h.backend, plain);
      const d = await h.peerCache(plain);
      const fc = c.wrap(fn, { name: 'hotKeyPlain' });
      const fd = d.wrap(fn, { name: 'hotKeyPlain' });
      computed = 0;
      assert.equal(await fc(), 'v1');
      const t1 = Date.now();
      await Promise.all([hammer(fc, t1, 800, 1300, 8), hammer(fd, t1, 804, 1300, 8)]);
      assert.equal(total([c, d], 'earlyRefreshes'), 0);
      assert.ok(total([c, d], 'misses') >= 2, 'a caller missed at the expiry');
      assert.equal(computed, 2, 'still one computation at the expiry (the lock)');
    });

    it('serves the cached value at once while the refresh runs, and the refresh replaces it', async function () {
      const cache = h.cacheOn(h.backend, { ttl: 60, jitter: 0, earlyRefresh: { beta: 1e9 } });
      let computed = 0;
      const fn = cache.wrap(async function slowRefresh() {
        const n = ++computed;
        await sleep(n === 1 ? 5 : 300);
        return `v${n}`;
      });
      assert.equal(await fn(), 'v1');
      // beta 1e9 × 5 ms: every read of a fresh entry decides to refresh; the first takes the lock.
      const started = Date.now();
      assert.equal(await fn(), 'v1');
      assert.equal(await fn(), 'v1'); // the lock is held: a plain hit
      assert.ok(Date.now() - started < 250, `the hits took ${Date.now() - started} ms`);
      assert.equal(cache.stats().earlyRefreshes, 1);
      await sleep(400);
      assert.equal(await fn(), 'v2');
      assert.equal(cache.stats().misses, 1);
    });

    it('a refresh that throws leaves the value served and releases the lock', async function () {
      const cache = h.cacheOn(h.backend, { ttl: 60, jitter: 0, earlyRefresh: true });
      let computed = 0;
      const fn = cache.wrap(async function flaky() {
        const n = ++computed;
        await sleep(5);
        if (n > 1) throw new Error('upstream down');
        return 'v1';
      }, { earlyRefresh: { beta: 1e9 } });
      assert.equal(await fn(), 'v1');
      assert.equal(await fn(), 'v1'); // refreshes in the background, which throws
      await sleep(100);
      assert.equal(computed, 2);
      assert.equal(await fn(), 'v1'); // the lock was released: this read refreshes again
      await sleep(100);
      assert.equal(computed, 3);
      assert.equal(cache.stats().earlyRefreshes, 2);
      assert.equal(cache.stats().misses, 1);
    });

    it('earlyRefresh: false on wrap turns off the cache default', async function () {
      const cache = h.cacheOn(h.backend, { ttl: 60, jitter: 0, earlyRefresh: { beta: 1e9 } });
      const refreshed: string[] = [];
      cache.on('earlyRefresh', (event) => refreshed.push(event.key));
      let computed = 0;
      const fn = cache.wrap(async function steady() {
        computed++;
        await sleep(5);
        return computed;
      }, { earlyRefresh: false });
      // Beside it, a function with the cache default: refreshed early.
      const withDefault = cache.wrap(async function eager() {
        await sleep(5);
        return 'x';
      });
      assert.equal(await fn(), 1);
      for (let i = 0; i < 5; i++) assert.equal(await fn(), 1);
      await withDefault();
      await withDefault();
      await sleep(50);
      assert.equal(computed, 1);
      assert.deepEqual(refreshed, [withDefault.key()]);
    });

    it('an invalidation during an early refresh drops its write: nothing computed before it is served after it', async function () {
      const cache = h.cacheOn(h.backend, { ttl: 60, jitter: 0, earlyRefresh: { beta: 1e9 } });
      let source = 'a';
      const fn = cache.wrap(async function snapshot() {
        const read = source;
        await sleep(150);
        return read;
      });
      assert.equal(await fn(), 'a');
      assert.equal(await fn(), 'a'); // an early refresh starts, reading 'a'
      assert.equal(cache.stats().earlyRefreshes, 1);
      source = 'b';
      await fn.invalidate();
      await sleep(250); // the refresh has finished; its write of 'a' was dropped
      assert.equal(await fn(), 'b');
    });
  });
}

/**
 * Registers the early-refresh clauses of the direct Backend tier: `ReadRequest.earlyRefresh`
 * and `ReadReply.early` on the backend itself (inside its `describe`).
 */
export function registerEarlyBackendClauses(h: Harness): void {
  /** Writes a fresh entry of `ref` (fresh for a minute) with this compute time, without a lock. */
  async function storeFresh(ref: EntryRef, computeMs: number | undefined): Promise<void> {
    const { tagHash } = await h.read(ref);
    const now = Date.now();
    const record: EntryRecord = { tagHash, freshUntil: now + 60_000, value: 'v', storedAt: now, computeMs };
    await h.backend.write({ ref, entry: h.backend.storesBytes ? h.codec.encode(record) : record, ttlMs: 60_000, lockToken: undefined });
  }

  it('read with earlyRefresh: a fresh entry due for refresh is an early hit holding the lock; every other read a plain hit', async function () {
    const ref = entryRef(h.keys, 'early');
    await storeFresh(ref, 50);
    // beta 1e9 × 50 ms looks far past the fresh minute: every read decides to refresh.
    const early = await h.backend.read({ ...readRequest(ref, [], 'token-a'), earlyRefresh: 1e9 });
    assert.notEqual(early.entry, undefined);
    assert.deepEqual([early.early, early.locked, early.stale], [true, true, false]);
    const other = await h.backend.read({ ...readRequest(ref, [], 'token-b'), earlyRefresh: 1e9 });
    assert.notEqual(other.entry, undefined);
    assert.deepEqual([other.early === true, other.locked, other.stale], [false, false, false]);
    const peer = await h.peer.read({ ...readRequest(ref, [], 'token-c'), earlyRefresh: 1e9 });
    assert.deepEqual([peer.entry !== undefined, peer.early === true, peer.locked], [true, false, false]);
    // The lock is token-a's: a write with it stores and releases.
    assert.equal(await h.backend.write({ ref, entry: early.entry as NonNullable<typeof early.entry>, ttlMs: 60_000, lockToken: 'token-a' }), true);
  });

  it('read with earlyRefresh never refreshes early without a token, without a compute time, or far from the expiry', async function () {
    const ref = entryRef(h.keys, 'notEarly');
    await storeFresh(ref, 50);
    const untokened = await h.backend.read({ ...readRequest(ref, []), earlyRefresh: 1e9 });
    assert.deepEqual([untokened.entry !== undefined, untokened.early === true, untokened.locked], [true, false, false]);
    const far = await h.backend.read({ ...readRequest(ref, [], 'token-a'), earlyRefresh: 1e-9 });
    assert.deepEqual([far.entry !== undefined, far.early === true, far.locked], [true, false, false]);
    const unknown = entryRef(h.keys, 'noComputeTime');
    await storeFresh(unknown, undefined);
    const never = await h.backend.read({ ...readRequest(unknown, [], 'token-a'), earlyRefresh: 1e9 });
    assert.deepEqual([never.entry !== undefined, never.early === true, never.locked], [true, false, false]);
    // The same entry, read with a token and a large beta: early (the reads above did not lock it).
    const due = await h.backend.read({ ...readRequest(ref, [], 'token-b'), earlyRefresh: 1e9 });
    assert.deepEqual([due.entry !== undefined, due.early === true, due.locked], [true, true, true]);
  });
}

