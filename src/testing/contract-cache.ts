/**
 * The cache tier of the contract suite: each promise of the cache checked through `Hermes`, as
 * users use it, on the backend under test — so that the contract and the core's policy on top
 * of it are checked together. Registered by `registerBackendContract` beside the direct
 * Backend tier (`contract-backend.ts`).
 *
 * @module
 */

import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import type { Backend } from '../backend/backend.js';
import type { LossyValueError } from '../errors.js';
import type { Hermes } from '../hermes.js';
import { assertBelow, assertIncludes } from './assertions.js';
import { CacheHarness, sleep } from './cache-harness.js';
import type { BackendContractOptions } from './contract.js';
import { corruptBytes, grace, staleWhileRevalidate, timeouts } from './contract-stale.js';
import { registerBatchClauses } from './contract-batch.js';
import { registerControlClauses } from './contract-control.js';
import { registerResultClauses } from './contract-results.js';
import { registerEarlyClauses } from './contract-early.js';

/** Registers the cache tier for one backend (inside its `describe`). */
export function registerCacheClauses(options: BackendContractOptions): void {
  const h = new CacheHarness(options);
  storing(h);
  invalidating(h);
  clearing(h);
  stampedes(h);
  races(h);
  describe('stale values (grace, stale-while-revalidate, timeouts)', function () {
    grace(h);
    staleWhileRevalidate(h);
    timeouts(h);
  });
  const writeRaw = options.writeRaw?.bind(options);
  if (writeRaw) corruptBytes(h, writeRaw);
  registerBatchClauses(h);
  registerControlClauses(h, { setDuringComputation: options.setDuringComputation });
  registerResultClauses(h);
  registerEarlyClauses(h);
}

/** Misses, hits, values, expiry. */
function storing(h: CacheHarness): void {
  let cache: Hermes;
  const errors = h.errors;
  beforeEach(function () {
    ({ cache } = h);
  });

  it('misses, then hits without calling the function again', async function () {
    let calls = 0;
    const multiply = cache.wrap(async function multiply(a: number, b: number) {
      calls++;
      return a * b;
    });
    assert.equal(await multiply(2, 333), 666);
    assert.equal(await multiply(2, 333), 666);
    assert.equal(calls, 1);
    assert.equal(await multiply(3, 333), 999);
    assert.equal(calls, 2);
    assert.deepEqual(errors, []);
  });

  it('caches sync functions and structured results', async function () {
    let calls = 0;
    const build = cache.wrap(function build(id: number) {
      calls++;
      return { id, list: [1, 'two', null], nested: { ok: true } };
    });
    const first = await build(7);
    assert.deepEqual(await build(7), first);
    assert.deepEqual(first, { id: 7, list: [1, 'two', null], nested: { ok: true } });
    assert.equal(calls, 1);
  });

  it('reports a class instance or a symbol key in a result once per function (LossyValueError), and caches it', async function () {
    class Money {
      constructor(readonly cents: number) {}
    }
    let calls = 0;
    const price = cache.wrap(async function price(id: number) {
      calls++;
      return { id, total: new Money(id * 100) };
    });
    const computed = await price(1);
    assert.ok(computed.total instanceof Money, `the computed total: ${inspect(computed.total)}, expected a Money`);
    const read = await price(1);
    assert.equal(calls, 1);
    assert.equal(read.total.cents, 100);
    // A store of bytes gives back a plain object; the live in-process store, the object itself.
    assert.equal(read.total instanceof Money, !cache.backend.storesBytes);
    await price(2);
    assert.deepEqual(errors.map((e) => e.code), ['ERR_HERMES_LOSSY_VALUE']);
    const lossy = errors[0] as LossyValueError;
    assertIncludes(lossy, { functionName: 'price', kind: 'class', what: 'Money', path: 'result.total', live: !cache.backend.storesBytes }, 'the LossyValueError');
    assert.match(lossy.message, /'price'.*class Money at result\.total.*plain object/);

    const tagged = cache.wrap(async function tagged() {
      return { n: 1, [Symbol('audit')]: true };
    });
    assert.equal((await tagged()).n, 1);
    assert.ok(errors[1] !== undefined, `one error for the symbol key, expected after the class: ${inspect(errors)}`);
    assertIncludes(errors[1], { code: 'ERR_HERMES_LOSSY_VALUE', kind: 'symbol', what: 'Symbol(audit)', path: 'result' }, 'the second error');
    assert.equal(errors.length, 2, `two errors expected: ${inspect(errors)}`);
  });

  it('gives back instances of the registered classes (classes) as instances, in every process', async function () {
    class Money {
      constructor(readonly cents: number) {}
      format(): string {
        return `${(this.cents / 100).toFixed(2)} EUR`;
      }
    }
    const shared = new Money(250);
    const bill = async (id: number): Promise<{ id: number; total: Money; lines: Money[]; byCode: Map<string, Money> }> => ({
      id,
      total: shared,
      lines: [shared, new Money(id)],
      byCode: new Map([['eur', shared]]),
    });
    const cache = h.cacheOn(h.backend, { classes: [Money] });
    const peer = await h.peerCache({ classes: { Money } });
    let calls = 0;
    const counted = async (id: number): ReturnType<typeof bill> => {
      calls++;
      return bill(id);
    };
    const mine = cache.wrap(counted, { name: 'bill' });
    const theirs = peer.wrap(counted, { name: 'bill' });
    await mine(7);
    const read = await theirs(7);
    assert.equal(calls, 1);
    assert.ok(read.total instanceof Money, `the total read by the peer: ${inspect(read.total)}, expected a Money`);
    assert.equal(read.total.format(), '2.50 EUR');
    assert.ok(read.lines[1] instanceof Money, `the second line read by the peer: ${inspect(read.lines[1])}, expected a Money`);
    assert.equal(read.lines[1]?.cents, 7);
    assert.equal(read.byCode.get('eur'), read.total); // one object, as it was
    assert.equal(read.lines[0], read.total);
    assert.deepEqual(errors, []);
  });

  it('caches undefined and null as values, distinct from a miss', async function () {
    let calls = 0;
    const nothing = cache.wrap(async function nothing(kind: string) {
      calls++;
      return kind === 'null' ? null : undefined;
    });
    assert.equal(await nothing('null'), null);
    assert.equal(await nothing('null'), null);
    assert.equal(await nothing('undefined'), undefined);
    assert.equal(await nothing('undefined'), undefined);
    assert.equal(calls, 2);
  });

  it('expires entries after their TTL', async function () {
    let calls = 0;
    const short = cache.wrap(async function short() {
      calls++;
      return calls;
    }, { ttl: 0.25 });
    assert.equal(await short(), 1);
    assert.equal(await short(), 1);
    await sleep(400);
    assert.equal(await short(), 2);
  });
}

/** invalidate() and clean(tags). */
function invalidating(h: CacheHarness): void {
  let cache: Hermes;
  beforeEach(function () {
    ({ cache } = h);
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
    assert.equal(await square(2), 4);
    assert.equal(await square(3), 9);
    assert.equal(calls, 3);
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
    assert.deepEqual(calls, { ab: 2, bc: 2, c: 2, none: 2 });
    await cache.clean(['a']);
    await all();
    assert.deepEqual(calls, { ab: 4, bc: 2, c: 2, none: 2 });
    await cache.clean(['b', 'c']);
    await all();
    assert.deepEqual(calls, { ab: 6, bc: 4, c: 4, none: 2 });
    await cache.clean(['unknown-tag']);
    await all();
    assert.deepEqual(calls, { ab: 6, bc: 4, c: 4, none: 2 });
  });

}

/** clean() and dump(): everything under the prefix, and nothing of another. */
function clearing(h: CacheHarness): void {
  let backend: Backend;
  let cache: Hermes;
  let prefix: string;
  beforeEach(function () {
    ({ backend, cache, prefix } = h);
  });

  it('clean() removes every key under the prefix and nothing of another prefix', async function () {
    let calls = 0;
    const fn = async (n: number): Promise<number> => {
      calls++;
      return n;
    };
    const mine = cache.wrap(fn, { name: 'fn', tags: ['t'] });
    const other = await h.peerCache({ prefix: `${prefix}other` });
    const peer = other.backend;
    const theirs = other.wrap(fn, { name: 'fn', tags: ['t'] });
    await mine(1);
    await theirs(1);
    const keys = Object.keys(await backend.dump(prefix));
    assert.equal(keys.length, 2, `an entry and a tag expected: ${inspect(keys)}`);
    await cache.clean();
    // Its keys, not the object: deepEqual would also compare prototypes, and a dump may have none.
    assert.deepEqual(Object.keys(await backend.dump(prefix)), [], 'clean() left these keys');
    const theirKeys = Object.keys(await peer.dump(`${prefix}other`));
    assert.equal(theirKeys.length, 2, `clean() of one prefix left another with: ${inspect(theirKeys)}`);
    await mine(1);
    await theirs(1);
    assert.equal(calls, 3);
    await other.clean();
  });

  it('dump() shows entries with decoded values and tags with their versions', async function () {
    const tagged = cache.wrap(async function tagged(n: number) {
      return { n, when: new Date(0) };
    }, { tags: ['math'] });
    await tagged(5);
    const dump = await backend.dump();
    assert.deepEqual(dump[tagged.key(5)], { n: 5, when: new Date(0) });
    const version = dump[`${prefix}:tag:math`];
    assert.equal(typeof version, 'string', `the tag version in the dump: ${inspect(version)}, expected a string`);
    assert.notEqual(version, '', 'the tag version in the dump is an empty string');
    assert.deepEqual(Object.keys(dump).sort(), [tagged.key(5), `${prefix}:tag:math`].sort());
  });
}

/** One computation per cold key, in the process and across processes; throwing functions. */
function stampedes(h: CacheHarness): void {
  let cache: Hermes;
  beforeEach(function () {
    ({ cache } = h);
  });

  it('runs a cold key once for 100 concurrent callers', async function () {
    let calls = 0;
    const slow = cache.wrap(async function slow(n: number) {
      calls++;
      await sleep(30);
      return n * 2;
    });
    const results = await Promise.all(Array.from({ length: 100 }, () => slow(21)));
    assert.deepEqual(results, Array(100).fill(42));
    assert.equal(calls, 1);
  });

  it('runs a cold key once across two cache instances sharing the store (lock + wake-up)', async function () {
    const other = await h.peerCache({ lockWait: 5000 });
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
    assert.deepEqual(results, Array(51).fill(2));
    assert.equal(calls, 1);
    // Woken by the release, not by the 5 s wait running out.
    assertBelow(elapsed, 2000, 'ms until all 51 callers had the value');
  });

  it('a throwing function rejects every concurrent caller, caches nothing, releases its lock', async function () {
    const other = await h.peerCache({ lockWait: 5000 });
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
    assert.equal(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'boom'), true);
    assert.equal(calls, 1);
    // The lock was released: the peer computes at once instead of waiting 5 s.
    const started = Date.now();
    assert.equal(await b(1), 1);
    assertBelow(Date.now() - started, 1000, 'ms until the peer computed after the throw');
    assert.equal(await a(1), 1);
    assert.equal(calls, 2);
  });
}

/** Nothing computed before an acknowledged invalidation is served after it. */
function races(h: CacheHarness): void {
  let cache: Hermes;
  beforeEach(function () {
    ({ cache } = h);
  });
  for (const how of ['clean(tags)', 'invalidate()'] as const) {
    it(`never serves a result whose computation overlapped ${how}`, async function () {
      let source = 'old';
      let calls = 0;
      let openGate: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (openGate = resolve));
      let entered: () => void = () => undefined;
      const running = new Promise<void>((resolve) => (entered = resolve));
      const report = cache.wrap(async function report(id: number) {
        const seen = source; // reads its source, then is slow...
        if (++calls === 1) {
          entered();
          await gate;
        }
        return `${seen}:${id}`;
      }, { tags: ['orders'] });
      const pending = report(1);
      await running;
      source = 'new';
      // ...and the entry is invalidated, acknowledged, while it runs
      await (how === 'clean(tags)' ? cache.clean(['orders']) : report.invalidate(1));
      openGate();
      assert.equal(await pending, 'old:1'); // its caller gets the result...
      assert.equal(await report(1), 'new:1'); // ...but it is never served afterwards
      assert.equal(await report(1), 'new:1');
      assert.equal(calls, 2);
    });
  }
}
