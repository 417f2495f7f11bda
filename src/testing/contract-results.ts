/**
 * The cache tier of the contract suite, continued: what the result and the arguments decide
 * (issue 14, part A) — a `ttl` function of the result, `cacheIf`, errors never cached, `tags`
 * as a function of the arguments, and durations written as strings. Each clause goes through
 * `Hermes` on the backend under test, with a peer process where locks are at stake.
 *
 * Written with `node:assert/strict`, so that it needs nothing beyond mocha's globals.
 *
 * @module
 */

import assert from 'node:assert/strict';
import { OptionError } from '../errors.js';
import type { Hermes } from '../hermes.js';
import { type CacheHarness, sleep } from './cache-harness.js';

/** How long a peer waits for a lock holder in these tests: far above what a woken wait takes. */
const LONG_LOCK_WAIT_MS = 5000;
/** The bound a woken wait must beat (lenient on a loaded machine), far below {@link LONG_LOCK_WAIT_MS}. */
const WOKEN_WITHIN_MS = 2000;

/** Registers the clauses of part A of issue 14 for one backend (inside its `describe`). */
export function registerResultClauses(h: CacheHarness): void {
  describe('what the result and the arguments decide (ttl and tags functions, cacheIf, durations)', function () {
    resultTtl(h);
    cacheIf(h);
    errorsNeverCached(h);
    tagFunctions(h);
    durations(h);
    withTheControls(h);
  });
}

/** The rejection of a promise, or a failure if it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected the call to reject');
}

/** A `ttl` function of the result and the arguments. */
function resultTtl(h: CacheHarness): void {
  let cache: Hermes;
  beforeEach(function () {
    cache = h.cacheOn(h.backend, { jitter: 0 });
  });

  it('ttl as a function: each result gets the TTL it returns, from the result and the arguments', async function () {
    const seen: unknown[][] = [];
    let calls = 0;
    const search = cache.wrap(
      async function search(query: string, limit: number) {
        calls++;
        return query === 'none' ? [] : Array.from({ length: limit }, (_, i) => `${query}${i}`);
      },
      {
        ttl: (found, query, limit) => {
          seen.push([found, query, limit]);
          return found.length === 0 ? '200ms' : 60;
        },
      },
    );
    assert.deepEqual(await search('none', 2), []);
    assert.deepEqual(await search('a', 2), ['a0', 'a1']);
    assert.deepEqual(seen, [
      [[], 'none', 2],
      [['a0', 'a1'], 'a', 2],
    ]);
    await search('none', 2);
    await search('a', 2);
    assert.equal(calls, 2, 'both hit within the short TTL');
    await sleep(400);
    await search('none', 2); // past its 200 ms: computed again
    await search('a', 2); // 60 s: still a hit
    assert.equal(calls, 3);
    assert.equal(seen.length, 3, 'called once per result stored, never on a hit');
    assert.deepEqual(h.errors, []);
  });

  it('ttl as a function returning 0 stores nothing: the result is returned, the next call computes again', async function () {
    let calls = 0;
    const token = cache.wrap(async function token(user: string) {
      calls++;
      return { user, expiresIn: calls === 1 ? 0 : 120 };
    }, { ttl: (result) => result.expiresIn });
    assert.deepEqual(await token('ann'), { user: 'ann', expiresIn: 0 });
    assert.deepEqual(await token('ann'), { user: 'ann', expiresIn: 120 });
    assert.deepEqual(await token('ann'), { user: 'ann', expiresIn: 120 });
    assert.equal(calls, 2);
  });

  it('a ttl function that throws or returns no duration rejects the call, stores nothing and releases the lock', async function () {
    const peer = await h.peerCache({ lockWait: LONG_LOCK_WAIT_MS, jitter: 0 });
    let calls = 0;
    const decide = (result: string): string | number => {
      if (result === 'throw') throw new Error('ttl failed');
      return result === 'bad' ? '5 minutes' : 60;
    };
    const fn = async (kind: string): Promise<string> => {
      calls++;
      await sleep(50);
      return calls <= 2 ? kind : 'ok';
    };
    // The TTL function's return type is checked at compile time; the string is the mistake a
    // JavaScript caller (or a cast) can still make.
    const mine = cache.wrap(fn, { name: 'ttlDecides', ttl: decide as (result: string) => number });
    const theirs = peer.wrap(fn, { name: 'ttlDecides', ttl: decide as (result: string) => number });

    const thrown = await rejectionOf(mine('throw'));
    assert.ok(thrown instanceof Error && thrown.message === 'ttl failed', String(thrown));
    const bad = mine('bad');
    await sleep(10); // `mine` holds the lock of 'bad'
    const waiting = theirs('bad');
    const started = Date.now();
    const error = await rejectionOf(bad);
    assert.ok(error instanceof OptionError, String(error));
    assert.equal(error.option, 'ttl');
    assert.match(error.message, /'ttlDecides'.*got the string "5 minutes"/);
    // Released: the peer's waiter computes (a third call, 'ok') at once instead of waiting 5 s.
    assert.equal(await waiting, 'ok');
    assert.ok(Date.now() - started < WOKEN_WITHIN_MS, `the waiter took ${Date.now() - started} ms`);
    assert.equal(await mine('bad'), 'ok');
    assert.equal(await mine('throw'), 'ok', 'nothing was stored for the call whose ttl function threw');
    assert.equal(calls, 4);
  });
}

/** `cacheIf`. */
function cacheIf(h: CacheHarness): void {
  let cache: Hermes;
  beforeEach(function () {
    ({ cache } = h);
  });

  it('cacheIf: a rejected result is returned but not stored; an accepted one is stored', async function () {
    const seen: unknown[][] = [];
    let calls = 0;
    const lookup = cache.wrap(
      async function lookup(id: number) {
        calls++;
        return id < 0 ? null : { id, version: calls };
      },
      {
        cacheIf: (found, id) => {
          seen.push([found, id]);
          return found !== null;
        },
      },
    );
    assert.equal(await lookup(-1), null);
    assert.equal(await lookup(-1), null);
    assert.equal(calls, 2, 'the rejected null was computed twice');
    assert.deepEqual(await lookup(7), { id: 7, version: 3 });
    assert.deepEqual(await lookup(7), { id: 7, version: 3 });
    assert.equal(calls, 3);
    assert.deepEqual(seen, [
      [null, -1],
      [null, -1],
      [{ id: 7, version: 3 }, 7],
    ]);
    assert.equal(cache.stats().notStored, 2, 'stats() counts the results cacheIf refused');
    assert.deepEqual(h.errors, []);
  });

  it('cacheIf: a rejection releases the lock: callers waiting in another process compute at once', async function () {
    const peer = await h.peerCache({ lockWait: LONG_LOCK_WAIT_MS });
    let calls = 0;
    const fn = async (n: number): Promise<{ n: number; complete: boolean }> => {
      calls++;
      await sleep(100);
      return { n, complete: calls > 1 };
    };
    const mine = cache.wrap(fn, { name: 'partial', cacheIf: (result) => result.complete });
    const theirs = peer.wrap(fn, { name: 'partial', cacheIf: (result) => result.complete });
    const first = mine(1);
    await sleep(20); // `mine` holds the lock
    const started = Date.now();
    const waiters = Array.from({ length: 10 }, () => theirs(1));
    assert.deepEqual(await first, { n: 1, complete: false });
    const results = await Promise.all(waiters);
    assert.ok(Date.now() - started < WOKEN_WITHIN_MS, `the waiters took ${Date.now() - started} ms`);
    assert.deepEqual(results, Array(10).fill({ n: 1, complete: true }));
    assert.equal(calls, 2, "the peer's waiters share one computation, under the lock");
    assert.deepEqual(await mine(1), { n: 1, complete: true });
    assert.equal(calls, 2, 'the accepted result was stored');
  });
}

/** A function that throws or rejects caches nothing, whatever cacheIf and ttl say. */
function errorsNeverCached(h: CacheHarness): void {
  let cache: Hermes;
  beforeEach(function () {
    ({ cache } = h);
  });

  it('errors are never cached: a sync throw or a rejection is not stored, and cacheIf and ttl are not asked', async function () {
    let asked = 0;
    let calls = 0;
    const options = {
      cacheIf: (): boolean => {
        asked++;
        return true;
      },
      ttl: (): number => {
        asked++;
        return 60;
      },
    };
    const syncFn = cache.wrap(function syncFn(n: number): number {
      calls++;
      if (calls === 1) throw new TypeError('sync failure');
      return n;
    }, options);
    const asyncFn = cache.wrap(async function asyncFn(n: number): Promise<number> {
      calls++;
      await sleep(5);
      if (calls === 3) throw new RangeError('async failure');
      return n;
    }, options);
    const syncError = await rejectionOf(syncFn(1));
    assert.ok(syncError instanceof TypeError && syncError.message === 'sync failure');
    assert.equal(await syncFn(1), 1);
    const asyncError = await rejectionOf(asyncFn(2));
    assert.ok(asyncError instanceof RangeError && asyncError.message === 'async failure');
    assert.equal(await asyncFn(2), 2);
    assert.equal(asked, 4, 'asked for the two results only, each by cacheIf and ttl');
    assert.equal(await syncFn(1), 1);
    assert.equal(await asyncFn(2), 2);
    assert.equal(calls, 4, 'each error was followed by one computation, then hits');
    assert.deepEqual(h.errors, [], 'an error of the function is not a cache-layer error');
  });
}

/** `tags` as a function of the arguments. */
function tagFunctions(h: CacheHarness): void {
  let cache: Hermes;
  beforeEach(function () {
    ({ cache } = h);
  });

  it("tags as a function: clean(['user:1']) drops exactly that user's entries, of every function", async function () {
    const calls = { profile: 0, orders: 0 };
    const seen: unknown[][] = [];
    const profile = cache.wrap(async function profile(userId: number, lang: string) {
      calls.profile++;
      return `${userId}:${lang}`;
    }, {
      tags: (userId, lang) => {
        seen.push([userId, lang]);
        return [`user:${userId}`, 'profiles'];
      },
    });
    const orders = cache.wrap(async function orders(userId: number) {
      calls.orders++;
      return [userId];
    }, { tags: (userId) => [`user:${userId}`] });
    const all = async (): Promise<void> => {
      for (const id of [1, 2]) {
        await profile(id, 'en');
        await orders(id);
      }
    };
    await all();
    await all();
    await all(); // with a near-cache, served from memory by now
    assert.deepEqual(calls, { profile: 2, orders: 2 });
    assert.deepEqual(seen[0], [1, 'en']);
    assert.equal(seen.length, 6, 'called once per call, hits included');
    assert.deepEqual(profile.tags, [], 'a tag function has no static tags to show');

    await cache.clean(['user:1']);
    await all();
    assert.deepEqual(calls, { profile: 3, orders: 3 });
    await all();
    assert.deepEqual(calls, { profile: 3, orders: 3 });
    await cache.clean(['profiles']);
    await all();
    assert.deepEqual(calls, { profile: 5, orders: 3 });
    assert.deepEqual(h.errors, []);
  });

  it('tags as a function: a computation that overlapped clean() of its tag is never served after it', async function () {
    let source = 'old';
    let calls = 0;
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let entered: () => void = () => undefined;
    const running = new Promise<void>((resolve) => (entered = resolve));
    const report = cache.wrap(async function report(userId: number) {
      const seen = source;
      if (++calls === 1) {
        entered();
        await gate;
      }
      return `${seen}:${userId}`;
    }, { tags: (userId) => [`user:${userId}`] });
    const pending = report(1);
    await running;
    source = 'new';
    await cache.clean(['user:1']);
    openGate();
    assert.equal(await pending, 'old:1');
    assert.equal(await report(1), 'new:1');
    assert.equal(await report(1), 'new:1');
    assert.equal(calls, 2);
  });

  it('tags as a function: a call whose function returns bad tags rejects with an OptionError, without reading or computing', async function () {
    let calls = 0;
    const bad: unknown[] = [undefined, 'user:1', [''], ['ok', 3], [null]];
    const fn = cache.wrap(async function badTags(n: number) {
      calls++;
      return n;
    }, { tags: ((n: number) => bad[n]) as (n: number) => string[] });
    for (let n = 0; n < bad.length; n++) {
      const error = await rejectionOf(fn(n));
      assert.ok(error instanceof OptionError, `${n}: ${String(error)}`);
      assert.equal(error.option, 'tags');
      assert.match(error.message, /'badTags'/);
    }
    const throwing = cache.wrap(async function throwingTags(n: number) {
      calls++;
      return n;
    }, {
      tags: (): string[] => {
        throw new Error('no tags today');
      },
    });
    const thrown = await rejectionOf(throwing(1));
    assert.ok(thrown instanceof Error && thrown.message === 'no tags today');
    assert.equal(calls, 0);
    assert.deepEqual(await h.backend.dump(h.prefix), {}, 'nothing read (no tag version created), nothing stored');
  });
}

/** Durations written as strings. */
function durations(h: CacheHarness): void {
  it("durations: ttl, grace and staleWhileRevalidate take '500ms', '90s', '5m', '1h', '1d' (numbers stay seconds)", async function () {
    const cache = h.cacheOn(h.backend, { ttl: '1h', grace: '1d', jitter: 0 });
    const reasons: string[] = [];
    cache.on('stale', (event) => reasons.push(event.reason));
    let calls = 0;
    const price = cache.wrap(async function price(sku: string) {
      calls++;
      if (calls > 1) throw new Error('upstream down');
      return `${sku}:v1`;
    }, { ttl: '250ms', grace: '5m' });
    assert.equal(await price('a'), 'a:v1');
    assert.equal(await price('a'), 'a:v1');
    await sleep(400); // past 250 ms, within grace
    assert.equal(await price('a'), 'a:v1');
    assert.deepEqual(reasons, ['error']);
    assert.equal(calls, 2);

    let fresh = 0;
    const long = cache.wrap(async function long() {
      return ++fresh;
    }, { staleWhileRevalidate: '90s' });
    await long();
    await sleep(300);
    assert.equal(await long(), 1, "the cache's ttl of '1h' keeps it fresh");
  });
}

/** The tags and ttl functions through the other ways in: many(), peek, set, refresh. */
function withTheControls(h: CacheHarness): void {
  let cache: Hermes;
  beforeEach(function () {
    cache = h.cacheOn(h.backend, { jitter: 0 });
  });

  it("tags and ttl functions hold in many(), peek, set and refresh: clean(['user:1']) drops only user 1's entries", async function () {
    let calls = 0;
    const profile = cache.wrap(
      async function profile(id: number) {
        calls++;
        return id === 0 ? '' : `user ${id}`;
      },
      { tags: (id) => [`user:${id}`], ttl: (value) => (value === '' ? '200ms' : '1h') },
    );
    assert.deepEqual(await profile.many([[1], [2], [0]]), ['user 1', 'user 2', '']);
    assert.equal(calls, 3);
    assert.equal(await profile.peek(1), 'user 1');
    await cache.clean(['user:1']);
    assert.equal(await profile.peek(1), undefined, 'user 1 is dropped by its own tag');
    assert.equal(await profile.peek(2), 'user 2', 'user 2 is not');
    assert.deepEqual(await profile.many([[1], [2]]), ['user 1', 'user 2']);
    assert.equal(calls, 4, 'only user 1 computed again');

    // set stamps the entry with the call's own tags, and gets the ttl function's TTL.
    await profile.set([3], 'set 3');
    await profile.set([4], '');
    assert.equal(await profile.peek(3), 'set 3');
    await cache.clean(['user:3']);
    assert.equal(await profile.peek(3), undefined, 'a set value carries its tags');
    await sleep(400);
    assert.equal(await profile.peek(4), undefined, "past the ttl function's 200 ms for ''");

    // refresh recomputes under the call's tags: a clean of them afterwards drops it.
    assert.equal(await profile.refresh(2), 'user 2');
    assert.equal(calls, 5);
    await cache.clean(['user:2']);
    assert.equal(await profile.peek(2), undefined);
    assert.deepEqual(h.errors, []);
  });
}
