/**
 * The cache tier of the contract suite, continued: stale values (grace, stale-while-revalidate,
 * soft and hard timeouts) and bytes under an entry key that the cache did not write.
 *
 * @module
 */

import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import type { Backend } from '../backend/backend.js';
import { CorruptEntryError, TimeoutError } from '../errors.js';
import type { Hermes } from '../hermes.js';
import { assertBelow } from './assertions.js';
import { type CacheHarness, sleep, staleCache } from './cache-harness.js';
import type { BackendContractOptions } from './contract.js';

/** Grace. */
export function grace(h: CacheHarness): void {
  const stale = (extra: Record<string, unknown>): Hermes => staleCache(h, extra);
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
    assert.equal(await price('a'), 'a:v1');
    await sleep(300); // past ttl, within grace
    assert.equal(await price('a'), 'a:v1');
    assert.equal(calls, 2);
    assert.deepEqual(reasons, ['error']);
    // Written back fresh for a while: the next callers do not call the failing function.
    assert.equal(await price('a'), 'a:v1');
    assert.equal(calls, 2);
    assert.equal(cache2.stats().staleServed, 1);
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
    assert.equal(viaTag, 'down');
    await fn.invalidate(2);
    const viaInvalidate = await fn(2).then(() => 'served', (e: unknown) => (e as Error).message);
    assert.equal(viaInvalidate, 'down');
  });

  it('grace: callers without the lock get the stale value at once while one caller refreshes', async function () {
    const cache2 = stale({ grace: 30 });
    const peer = await h.peerCache({ ttl: 0.2, jitter: 0, grace: 30 });
    let calls = 0;
    const fn = async (): Promise<string> => {
      calls++;
      if (calls > 1) await sleep(300);
      return `v${calls}`;
    };
    const a = cache2.wrap(fn, { name: 'slowRefresh' });
    const b = peer.wrap(fn, { name: 'slowRefresh' });
    assert.equal(await a(), 'v1');
    await sleep(300);
    const refreshing = a(); // takes the lock, recomputes for 300 ms
    await sleep(30);
    const started = Date.now();
    assert.equal(await b(), 'v1'); // no lock: stale at once
    assertBelow(Date.now() - started, 200, 'ms until the caller without the lock had the stale value');
    assert.equal(await refreshing, 'v2');
    assert.equal(await b(), 'v2');
    assert.equal(calls, 2);
  });

}

/** Stale-while-revalidate. */
export function staleWhileRevalidate(h: CacheHarness): void {
  const stale = (extra: Record<string, unknown>): Hermes => staleCache(h, extra);
  it('stale-while-revalidate: every caller gets the stale value at once; one refresh in total', async function () {
    const cache2 = stale({ staleWhileRevalidate: 30, ttl: 0.6 });
    const peer = await h.peerCache({ ttl: 0.6, jitter: 0, staleWhileRevalidate: 30 });
    let calls = 0;
    const fn = async (): Promise<string> => {
      calls++;
      await sleep(calls > 1 ? 150 : 0);
      return `v${calls}`;
    };
    const a = cache2.wrap(fn, { name: 'swr' });
    const b = peer.wrap(fn, { name: 'swr' });
    assert.equal(await a(), 'v1');
    await sleep(700);
    const started = Date.now();
    const served = await Promise.all([a(), a(), b(), b(), a(), b()]);
    assertBelow(Date.now() - started, 120, 'ms until six callers had the stale value'); // nobody waited for the 150 ms refresh
    assert.deepEqual(served, Array(6).fill('v1'));
    await sleep(300); // the refresh is written, and fresh for 0.6 s
    assert.equal(await a(), 'v2');
    assert.equal(await b(), 'v2');
    assert.equal(calls, 2);
  });
}

/** Soft and hard timeouts. */
export function timeouts(h: CacheHarness): void {
  const stale = (extra: Record<string, unknown>): Hermes => staleCache(h, extra);
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
    assert.equal(await fn(), 'v1');
    await sleep(700);
    const started = Date.now();
    assert.equal(await fn(), 'v1');
    const took = Date.now() - started;
    assert.ok(took >= 40 && took <= 250, `the stale value after the 50 ms soft timeout came after ${took} ms, expected within 40 to 250`);
    assert.deepEqual(reasons, ['timeout']);
    await sleep(400); // the refresh (300 ms) is written, fresh for 0.6 s
    assert.equal(await fn(), 'v2');
    assert.equal(calls, 2);
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
    assert.ok(error instanceof TimeoutError, `the call past the 50 ms hard timeout settled with ${inspect(error)}, expected a TimeoutError`);
    assertBelow(Date.now() - started, 180, 'ms until the hard timeout rejected');
    await sleep(300);
    assert.equal(await fn(), 'late');
    assert.equal(calls, 1);
    assert.equal(cache2.stats().timeouts, 1);
  });
}

/** Bytes under an entry key that the cache did not write. */
export function corruptBytes(h: CacheHarness, writeRaw: NonNullable<BackendContractOptions['writeRaw']>): void {
  let backend: Backend;
  let cache: Hermes;
  const errors = h.errors;
  beforeEach(function () {
    ({ backend, cache } = h);
  });


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
    assert.deepEqual(await item(1), { n: 1 });
    assert.equal(calls, 1);
    assert.equal(errors.some((e) => e instanceof CorruptEntryError && e.key === key), true);
    assert.deepEqual(await item(1), { n: 1 });
    assert.equal(calls, 1);
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
    assert.equal(await pending, 'old:1'); // its own caller gets it...
    assert.equal(await item(1), 'new:1'); // ...but it was not stored over the invalidation
    assert.equal(calls, 2);
    assert.equal(await item(1), 'new:1');
    assert.equal(calls, 2);
    assert.equal(errors.some((e) => e instanceof CorruptEntryError && e.key === key), true);
  });

  it('treats foreign or truncated bytes under an entry key as a miss', async function () {
    let calls = 0;
    const item = cache.wrap(async function item(n: number) {
      calls++;
      return n;
    });
    for (const junk of ['', 'x', 'not a hermes entry at all, just some bytes', 'h9']) {
      await writeRaw(backend, item.key(1), Buffer.from(junk, 'latin1'));
      assert.equal(await item(1), 1);
    }
    assert.equal(calls, 4);
    assert.equal(await item(1), 1);
    assert.equal(calls, 4);
  });
}
