/**
 * The cache tier of the contract suite, continued: direct control of a wrapped function
 * (`peek`, `set`, `refresh`) and per-call information (`withInfo`), on the backend under test,
 * through `Hermes`. Written with `node:assert/strict`.
 *
 * @module
 */

import assert from 'node:assert/strict';
import type { Backend } from '../backend/backend.js';
import { type CacheHarness, sleep, staleCache } from './cache-harness.js';

/** What {@link registerControlClauses} needs to know of the backend beyond the harness. */
export interface ControlClauseOptions {
  /**
   * What a `set` leaves when a computation of the same entry was in flight and finishes after
   * it: `'kept'` (the set's value stays: the computation's write is refused, as on Redis and
   * in process), or `'dropped'` (the computation's write lands and is deleted again, taking the
   * set's value with it, as on Memcached: the next call computes). Never the computation's value.
   * @default 'kept'
   */
  readonly setDuringComputation?: 'kept' | 'dropped' | undefined;
}

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * A view of `backend` with some members replaced (`undefined` removes one): a backend without
 * `set` (the core's fallback) or whose reads fail. Methods run on the backend itself.
 */
export function backendWith(backend: Backend, replaced: Partial<Record<keyof Backend, unknown>>): Backend {
  return new Proxy(backend, {
    get(target, property, receiver): unknown {
      if (Object.prototype.hasOwnProperty.call(replaced, property)) return (replaced as Record<string | symbol, unknown>)[property];
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** A hit's age: seconds, small. Every entry carries its stored-at time (header format 2, or the live record). */
function assertHitAge(age: number | undefined, atMost: number): void {
  assert.equal(typeof age, 'number', `age ${String(age)}: a hit's age is known`);
  assert.ok((age as number) >= 0 && (age as number) <= atMost, `age ${String(age)} in [0, ${atMost}]`);
}

/** Registers the clauses of direct control and per-call information (inside the backend's `describe`). */
export function registerControlClauses(h: CacheHarness, options: ControlClauseOptions = {}): void {
  describe('direct control (peek, set, refresh) and withInfo', function () {
    peeking(h);
    setting(h, options);
    refreshing(h);
    informing(h);
  });
}

/** `wrapped.peek(...args)`. */
function peeking(h: CacheHarness): void {
  it('peek: undefined before, the value after a call; computes nothing, counts no miss, takes no lock', async function () {
    const cache = h.cache;
    let calls = 0;
    const square = cache.wrap(async function square(n: number) {
      calls++;
      return n * n;
    }, { tags: ['peeked'] });
    assert.equal(await square.peek(3), undefined);
    assert.equal(calls, 0);
    assert.equal(cache.stats().misses, 0);
    // No lock left behind: a peer's call computes at once rather than waiting for one.
    const peer = await h.peerCache({ lockWait: 5000 });
    const peerSquare = peer.wrap(async (n: number) => {
      calls++;
      return n * n;
    }, { name: 'square', tags: ['peeked'] });
    const started = Date.now();
    assert.equal(await peerSquare(3), 9);
    assert.ok(Date.now() - started < 1000);
    assert.equal(calls, 1);
    assert.equal(await square.peek(3), 9);
    assert.equal(await square.peek(4), undefined);
    assert.equal(calls, 1);
    assert.deepEqual(h.errors, []);
  });

  it('peek: undefined once the entry is invalidated, its tag cleaned, or past its fresh time', async function () {
    const cache = staleCache(h, { grace: 30 });
    const id = cache.wrap(async (n: number) => `v${n}`, { name: 'peekGone', tags: ['pg'] });
    await id(1);
    await id(2);
    await id(3);
    assert.equal(await id.peek(1), 'v1');
    await id.invalidate(1);
    assert.equal(await id.peek(1), undefined);
    await cache.clean(['pg']);
    assert.equal(await id.peek(2), undefined);
    await id(3);
    await sleep(300); // past ttl (0.2 s), within grace: stale, not fresh
    assert.equal(await id.peek(3), undefined);
  });
}

/** `wrapped.set(args, value)`. */
function setting(h: CacheHarness, options: ControlClauseOptions): void {
  it('set: the next calls, here and in another process, get the value without computing', async function () {
    const cache = h.cache;
    let calls = 0;
    const user = cache.wrap(async function user(id: number) {
      calls++;
      return { id, name: 'computed' };
    }, { tags: ['users'] });
    await user.set([1], { id: 1, name: 'set' });
    assert.deepEqual(await user(1), { id: 1, name: 'set' });
    assert.deepEqual(await user.peek(1), { id: 1, name: 'set' });
    // Over an existing value.
    assert.deepEqual(await user(2), { id: 2, name: 'computed' });
    await user.set([2], { id: 2, name: 'replaced' });
    assert.deepEqual(await user(2), { id: 2, name: 'replaced' });
    const peer = await h.peerCache();
    const peerUser = peer.wrap(async (id: number) => ({ id, name: 'peer' }), { name: 'user', tags: ['users'] });
    assert.deepEqual(await peerUser(1), { id: 1, name: 'set' });
    assert.deepEqual(await peerUser(2), { id: 2, name: 'replaced' });
    assert.equal(calls, 1);
    assert.deepEqual(h.errors, []);
  });

  it('set, then clean(tags) or invalidate(): the value is not served after', async function () {
    const cache = h.cache;
    let calls = 0;
    const fn = cache.wrap(async function setThenClean(n: number) {
      calls++;
      return `computed${n}`;
    }, { tags: ['sc'] });
    await fn.set([1], 'set1');
    await cache.clean(['sc']);
    assert.equal(await fn(1), 'computed1');
    await fn.set([2], 'set2');
    await fn.invalidate(2);
    assert.equal(await fn(2), 'computed2');
    assert.equal(calls, 2);
  });

  it('set during a computation in flight: the computation’s write is dropped; its waiters, here and elsewhere, get the set value', async function () {
    const cache = h.cache;
    const peer = await h.peerCache({ lockWait: 10_000 });
    let calls = 0;
    const slow = gate();
    const entered = gate();
    const body = async (id: number): Promise<string> => {
      if (++calls === 1) {
        entered.open();
        await slow.promise;
        return `old${id}`;
      }
      return `recomputed${id}`;
    };
    const fn = cache.wrap(body, { name: 'setDuring', tags: ['sd'] });
    const peerFn = peer.wrap(body, { name: 'setDuring', tags: ['sd'] });
    const computing = fn(1);
    await entered.promise;
    const waiting = peerFn(1); // waits for the lock holder
    await sleep(50);
    const setAt = Date.now();
    await fn.set([1], 'set1');
    // The waiter is woken by the set, not by the computation (still held at the gate) nor by
    // the lock's expiry.
    assert.equal(await waiting, 'set1');
    assert.ok(Date.now() - setAt < 2000, `woken ${Date.now() - setAt} ms after the set`);
    slow.open();
    assert.equal(await computing, 'old1'); // its own caller gets it...
    const after = await fn(1); // ...but it is never stored over the set value
    if ((options.setDuringComputation ?? 'kept') === 'kept') {
      assert.equal(after, 'set1');
      assert.equal(calls, 1);
    } else {
      assert.equal(after, 'recomputed1');
      assert.equal(calls, 2);
    }
    assert.notEqual(await peerFn(1), 'old1');
  });

  it('set without Backend.set (the core’s fallback: invalidate, read, write) stores under the current tags and loses to a clean in between', async function () {
    let cleanBetween: (() => Promise<void>) | undefined;
    const backend = h.backend;
    const fallback = backendWith(backend, {
      set: undefined,
      read: async (request: Parameters<Backend['read']>[0]) => {
        const reply = await backend.read(request);
        const clean = cleanBetween;
        cleanBetween = undefined;
        if (clean) await clean();
        return reply;
      },
    });
    const cache = h.cacheOn(fallback);
    let calls = 0;
    const fn = cache.wrap(async (n: number) => {
      calls++;
      return `computed${n}`;
    }, { name: 'setFallback', tags: ['sf'] });
    await fn.set([1], 'set1');
    assert.equal(await fn(1), 'set1');
    assert.equal(calls, 0);
    // A clean(tags) between the set's read of the tag hash and its write: not served after.
    cleanBetween = () => cache.clean(['sf']);
    await fn.set([2], 'set2');
    assert.equal(cleanBetween, undefined);
    assert.equal(await fn(2), 'computed2');
    assert.equal(calls, 1);
  });

  it('set rejects a value a store of bytes cannot encode, leaving the entry as it was (a live store keeps it)', async function () {
    const fn = h.cache.wrap(async (): Promise<unknown> => 'kept', { name: 'setBad' });
    assert.equal(await fn(), 'kept');
    const unencodable = (): number => 1;
    if (h.backend.storesBytes) {
      await assert.rejects(fn.set([], unencodable), { name: 'SerializationError' });
      assert.equal(await fn(), 'kept');
    } else {
      await fn.set([], unencodable);
      assert.equal(await fn(), unencodable);
    }
  });
}

/** `wrapped.refresh(...args)`. */
function refreshing(h: CacheHarness): void {
  it('refresh: computes and stores whatever is cached, and resolves to the new value', async function () {
    let version = 0;
    const fn = h.cache.wrap(async (n: number) => `v${++version}:${n}`, { name: 'refreshed', tags: ['rf'] });
    assert.equal(await fn(1), 'v1:1');
    assert.equal(await fn(1), 'v1:1');
    assert.equal(await fn.refresh(1), 'v2:1');
    assert.equal(await fn(1), 'v2:1');
    assert.equal(await fn.peek(1), 'v2:1');
    // On a miss too.
    assert.equal(await fn.refresh(2), 'v3:2');
    assert.equal(await fn(2), 'v3:2');
    assert.equal(version, 3);
    assert.deepEqual(h.errors, []);
  });

  it('refresh in two processes at once computes once; both get the value', async function () {
    const peer = await h.peerCache({ lockWait: 10_000 });
    let calls = 0;
    const entered = gate();
    const body = async (n: number): Promise<string> => {
      if (++calls === 2) entered.open();
      await sleep(150);
      return `r${calls}:${n}`;
    };
    const a = h.cache.wrap(body, { name: 'refreshTwice' });
    const b = peer.wrap(body, { name: 'refreshTwice' });
    assert.equal(await a(1), 'r1:1');
    assert.equal(await b.peek(1), 'r1:1'); // the peer connected
    const refreshing = a.refresh(1);
    await entered.promise; // a holds the lock and computes
    const [fromA, fromB] = await Promise.all([refreshing, b.refresh(1)]);
    assert.equal(fromA, 'r2:1');
    assert.equal(fromB, 'r2:1');
    assert.equal(calls, 2);
    assert.equal(await b(1), 'r2:1');
    assert.equal(calls, 2);
  });

  it('refresh that throws rejects, releases the lock and keeps the cached value', async function () {
    let fail = false;
    let calls = 0;
    const fn = h.cache.wrap(async (n: number) => {
      calls++;
      if (fail) throw new Error('refresh failed');
      return `ok${n}`;
    }, { name: 'refreshThrows' });
    assert.equal(await fn(1), 'ok1');
    fail = true;
    await assert.rejects(fn.refresh(1), /refresh failed/);
    assert.equal(await fn(1), 'ok1');
    fail = false;
    const started = Date.now();
    assert.equal(await fn.refresh(1), 'ok1'); // the lock is free: no wait
    assert.ok(Date.now() - started < 1000);
    assert.equal(calls, 3);
  });
}

/** `wrapped.withInfo(...args)`: each status. */
function informing(h: CacheHarness): void {
  it('withInfo: miss (age 0, ttlLeft the TTL), then hit (a small age, less left)', async function () {
    const cache = h.cacheOn(h.backend, { ttl: 60, jitter: 0 });
    const fn = cache.wrap(async (n: number) => n + 1, { name: 'info', tags: ['inf'] });
    const miss = await fn.withInfo(1);
    assert.equal(miss.value, 2);
    assert.equal(miss.status, 'miss');
    assert.equal(miss.age, 0);
    assert.ok(miss.ttlLeft !== undefined && miss.ttlLeft > 59 && miss.ttlLeft <= 60, `ttlLeft ${String(miss.ttlLeft)}`);
    await sleep(20);
    const hit = await fn.withInfo(1);
    assert.deepEqual([hit.value, hit.status], [2, 'hit']);
    assertHitAge(hit.age, 5);
    assert.ok(hit.ttlLeft !== undefined && hit.ttlLeft > 50 && hit.ttlLeft < 60, `ttlLeft ${String(hit.ttlLeft)}`);
    // A value set directly: a hit too.
    await fn.set([5], 100);
    const set = await fn.withInfo(5);
    assert.deepEqual([set.value, set.status], [100, 'hit']);
    assertHitAge(set.age, 5);
    assert.equal(cache.stats().hits, 2);
    assert.equal(cache.stats().misses, 1);
  });

  it('withInfo: stale (ttlLeft negative) under grace and stale-while-revalidate', async function () {
    const cache = staleCache(h, { grace: 30 });
    let calls = 0;
    const fn = cache.wrap(async (n: number) => {
      calls++;
      if (calls === 2) throw new Error('down');
      return `v${calls}:${n}`;
    }, { name: 'infoStale' });
    await fn(1);
    await sleep(300);
    const stale = await fn.withInfo(1);
    assert.deepEqual([stale.value, stale.status], ['v1:1', 'stale']);
    assert.ok(stale.ttlLeft !== undefined && stale.ttlLeft < 0 && stale.ttlLeft > -5, `ttlLeft ${String(stale.ttlLeft)}`);
    assertHitAge(stale.age, 5);
    assert.ok((stale.age as number) >= 0.2, `stale age ${String(stale.age)}`);

    const swr = staleCache(h, { staleWhileRevalidate: 30 });
    let version = 0;
    const revalidated = swr.wrap(async () => `r${++version}`, { name: 'infoSwr' });
    await revalidated();
    await sleep(300);
    const served = await revalidated.withInfo();
    assert.deepEqual([served.value, served.status], ['r1', 'stale']);
    assert.ok(served.ttlLeft !== undefined && served.ttlLeft < 0);
    await sleep(100);
    const fresh = await revalidated.withInfo(); // the refresh stored meanwhile: not reported over the stale answer
    assert.deepEqual([fresh.value, fresh.status], ['r2', 'hit']);
  });

  it('withInfo: fallback when the store fails (no age, no ttlLeft)', async function () {
    const failing = backendWith(h.backend, {
      read: () => Promise.reject(new Error('store down')),
      readSync: undefined,
      peek: undefined,
    });
    const cache = h.cacheOn(failing);
    const fn = cache.wrap(async (n: number) => n * 10, { name: 'infoFallback' });
    const info = await fn.withInfo(4);
    assert.deepEqual(info, { value: 40, status: 'fallback', age: undefined, ttlLeft: undefined });
    assert.equal(h.errors.length, 1);
  });

  it('withInfo: joined, for a call joining one in flight here and for a waiter on another process’ computation', async function () {
    const cache = h.cacheOn(h.backend, { ttl: 60, jitter: 0, lockWait: 10_000 });
    const peer = await h.peerCache({ ttl: 60, jitter: 0, lockWait: 10_000 });
    let calls = 0;
    const entered = gate();
    const body = async (n: number): Promise<number> => {
      calls++;
      entered.open();
      await sleep(150);
      return n * 2;
    };
    const fn = cache.wrap(body, { name: 'infoJoined' });
    const peerFn = peer.wrap(body, { name: 'infoJoined' });
    const first = fn.withInfo(1);
    const second = fn.withInfo(1); // joins the first, in this process
    await entered.promise; // the first holds the lock
    const other = peerFn.withInfo(1); // waits for the lock, then reads the write
    const [a, b, c] = await Promise.all([first, second, other]);
    assert.equal(calls, 1);
    assert.deepEqual([a.value, a.status, a.age], [2, 'miss', 0]);
    assert.deepEqual([b.value, b.status], [2, 'joined']);
    assert.ok(b.age !== undefined && b.age >= 0 && b.age < 1, `age ${String(b.age)}`);
    assert.ok(b.ttlLeft !== undefined && b.ttlLeft > 59, `ttlLeft ${String(b.ttlLeft)}`);
    assert.deepEqual([c.value, c.status], [2, 'joined']);
    assertHitAge(c.age, 5);
    assert.ok(c.ttlLeft !== undefined && c.ttlLeft > 59, `ttlLeft ${String(c.ttlLeft)}`);
    // Joining a plain call in flight: nothing known of its entry.
    const plain = fn(7);
    const joinedPlain = await fn.withInfo(7);
    assert.equal(await plain, 14);
    assert.deepEqual(joinedPlain, { value: 14, status: 'joined', age: undefined, ttlLeft: undefined });
  });
}
