/**
 * The cache tier of the contract suite: each promise of the cache checked through `Hermes`, as
 * users use it, on the backend under test — so that the contract and the core's policy on top
 * of it are checked together. Registered by `registerBackendContract` beside the direct
 * Backend tier (`contract-backend.ts`).
 *
 * @module
 */

import { expect } from 'chai';
import type { Backend } from '../backend/backend.js';
import type { LossyValueError } from '../errors.js';
import type { Hermes } from '../hermes.js';
import { CacheHarness, sleep } from './cache-harness.js';
import type { BackendContractOptions } from './contract.js';
import { corruptBytes, grace, staleWhileRevalidate, timeouts } from './contract-stale.js';
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
    expect(computed.total).to.be.instanceOf(Money);
    const read = await price(1);
    expect(calls).to.equal(1);
    expect(read.total.cents).to.equal(100);
    // A store of bytes gives back a plain object; the live in-process store, the object itself.
    expect(read.total instanceof Money).to.equal(!cache.backend.storesBytes);
    await price(2);
    expect(errors.map((e) => e.code)).to.deep.equal(['ERR_HERMES_LOSSY_VALUE']);
    const lossy = errors[0] as LossyValueError;
    expect(lossy).to.include({ functionName: 'price', kind: 'class', what: 'Money', path: 'result.total', live: !cache.backend.storesBytes });
    expect(lossy.message).to.match(/'price'.*class Money at result\.total.*plain object/);

    const tagged = cache.wrap(async function tagged() {
      return { n: 1, [Symbol('audit')]: true };
    });
    expect((await tagged()).n).to.equal(1);
    expect(errors[1]).to.include({ code: 'ERR_HERMES_LOSSY_VALUE', kind: 'symbol', what: 'Symbol(audit)', path: 'result' });
    expect(errors).to.have.length(2);
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
    expect(calls).to.equal(1);
    expect(read.total).to.be.instanceOf(Money);
    expect(read.total.format()).to.equal('2.50 EUR');
    expect(read.lines[1]).to.be.instanceOf(Money);
    expect(read.lines[1]?.cents).to.equal(7);
    expect(read.byCode.get('eur')).to.equal(read.total); // one object, as it was
    expect(read.lines[0]).to.equal(read.total);
    expect(errors).to.deep.equal([]);
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
    expect(results).to.deep.equal(Array(100).fill(42));
    expect(calls).to.equal(1);
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
    expect(results).to.deep.equal(Array(51).fill(2));
    expect(calls).to.equal(1);
    // Woken by the release, not by the 5 s wait running out.
    expect(elapsed).to.be.below(2000);
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
    expect(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'boom')).to.equal(true);
    expect(calls).to.equal(1);
    // The lock was released: the peer computes at once instead of waiting 5 s.
    const started = Date.now();
    expect(await b(1)).to.equal(1);
    expect(Date.now() - started).to.be.below(1000);
    expect(await a(1)).to.equal(1);
    expect(calls).to.equal(2);
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
      expect(await pending).to.equal('old:1'); // its caller gets the result...
      expect(await report(1)).to.equal('new:1'); // ...but it is never served afterwards
      expect(await report(1)).to.equal('new:1');
      expect(calls).to.equal(2);
    });
  }
}
