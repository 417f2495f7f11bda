import { expect } from 'chai';
import {
  ArgumentError,
  type Backend,
  BackendError,
  type EntryRef,
  Hermes,
  type HermesError,
  MemoryBackend,
  NameConflictError,
  OptionError,
  SerializationError,
} from '../src/index.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A MemoryBackend whose operations can be made to fail, as a dead server would. */
class FlakyBackend extends MemoryBackend {
  failing = new Set<string>();
  constructor() {
    super({ serialize: true });
  }
  #check(op: string): void {
    if (this.failing.has(op) || this.failing.has('*')) throw new Error(`${op} refused`);
  }
  override readSync = undefined as unknown as MemoryBackend['readSync'];
  override readonly inProcess = false;
  override async read(...args: Parameters<MemoryBackend['read']>): ReturnType<MemoryBackend['read']> {
    this.#check('read');
    return super.read(...args);
  }
  override async write(...args: Parameters<MemoryBackend['write']>): Promise<boolean> {
    this.#check('write');
    return super.write(...args);
  }
  override async invalidate(ref: EntryRef): Promise<void> {
    this.#check('invalidate');
    return super.invalidate(ref);
  }
  override async cleanTags(prefix: string, keys: readonly string[]): Promise<void> {
    this.#check('cleanTags');
    return super.cleanTags(prefix, keys);
  }
  override async release(ref: EntryRef, token: string): Promise<void> {
    this.#check('release');
    return super.release(ref, token);
  }
  override async clear(prefix: string): Promise<void> {
    this.#check('clear');
    return super.clear(prefix);
  }
}

describe('Hermes', function () {
  describe('construction', function () {
    it('uses the in-process backend by default and builds it lazily', function () {
      const cache = new Hermes();
      expect(cache.backend).to.be.instanceOf(MemoryBackend);
      expect(cache.backend).to.equal(cache.backend);
    });

    it('constructs a backend class on first use only, with the options that are not its own', async function () {
      const constructed: object[] = [];
      class SpyBackend extends MemoryBackend {
        // A subclass with options of its own declares them: the inherited names would refuse `region`.
        static override readonly optionNames: ReadonlySet<string> = new Set([...MemoryBackend.optionNames, 'region']);
        constructor(options: { region?: string; maxEntries?: number }) {
          super({ maxEntries: options.maxEntries });
          constructed.push(options);
        }
      }
      const cache = new Hermes(SpyBackend, { ttl: 600, prefix: 'p', region: 'eu', maxEntries: 5 });
      const double = cache.wrap(async function double(n: number) {
        return 2 * n;
      });
      expect(constructed).to.deep.equal([]); // no side effect at construction or wrap time
      expect(await double(2)).to.equal(4);
      expect(constructed).to.deep.equal([{ region: 'eu', maxEntries: 5 }]);
      expect(double.key(2)).to.match(/^p:entry:double:[0-9a-f]{16}$/);
    });

    it('lets the backend be replaced at run time', async function () {
      const cache = new Hermes();
      let calls = 0;
      const fn = cache.wrap(async function fn() {
        return ++calls;
      });
      expect(await fn()).to.equal(1);
      const replacement = new MemoryBackend();
      cache.backend = replacement;
      expect(cache.backend).to.equal(replacement);
      expect(await fn()).to.equal(2);
      expect(await fn()).to.equal(2);
      expect(Object.keys(await replacement.dump())).to.deep.equal([fn.key()]);
    });

    it('rejects bad options with an OptionError naming the option', function () {
      const bad: Array<[Record<string, unknown>, string]> = [
        [{ ttl: -1 }, 'ttl'],
        [{ ttl: 0 }, 'ttl'],
        [{ ttl: '10' }, 'ttl'],
        [{ prefix: '' }, 'prefix'],
        [{ lockTimeout: 0 }, 'lockTimeout'],
        [{ lockWait: -5 }, 'lockWait'],
        [{ failOpen: 'yes' }, 'failOpen'],
        [{ serializer: { serialize: () => 1 } }, 'serializer'],
        [{ compressor: {} }, 'compressor'],
        [{ compressThreshold: -1 }, 'compressThreshold'],
      ];
      for (const [options, option] of bad) {
        expect(() => new Hermes(undefined, options), option)
          .to.throw(OptionError)
          .with.property('option', option);
      }
      expect(() => new Hermes({} as Backend)).to.throw(OptionError, /backend/);
    });
  });

  describe('wrap', function () {
    it('keeps the function name, offers key() and invalidate()', async function () {
      const cache = new Hermes();
      const foo = cache.wrap(async function foo(a: number, b: number) {
        return a * b;
      });
      expect(foo.name).to.equal('foo');
      expect(foo.cacheName).to.equal('foo');
      expect(foo.key(2, 333)).to.equal('cache:entry:foo:c4be94f1f3e36935');
      expect(foo.key(2, 333)).not.to.equal(foo.key(333, 2));
    });

    it('requires a name for anonymous functions and refuses two functions under one name', function () {
      const cache = new Hermes();
      expect(() => cache.wrap(async (n: number) => n)).to.throw(OptionError, /name/);
      const named = cache.wrap(async (n: number) => n, { name: 'ident' });
      expect(named.cacheName).to.equal('ident');
      const fn = async (n: number): Promise<number> => n + 1;
      cache.wrap(fn, { name: 'plus' });
      expect(() => cache.wrap(fn, { name: 'plus' })).not.to.throw(); // the same function again is fine
      expect(() => cache.wrap(async (n: number) => n - 1, { name: 'plus' }))
        .to.throw(NameConflictError)
        .with.property('functionName', 'plus');
      // Another cache is another namespace of names.
      expect(() => new Hermes().wrap(async (n: number) => n - 1, { name: 'plus' })).not.to.throw();
    });

    it('validates tags, ttl, key and name at wrap time', function () {
      const cache = new Hermes();
      const f = async (): Promise<number> => 1;
      expect(() => cache.wrap(f, { name: 'a', tags: [''] })).to.throw(OptionError, /tag/);
      expect(() => cache.wrap(f, { name: 'b', tags: [1 as unknown as string] })).to.throw(OptionError, /tag/);
      expect(() => cache.wrap(f, { name: 'c', tags: 'math' as unknown as string[] })).to.throw(OptionError, /tags/);
      expect(() => cache.wrap(f, { name: 'd', ttl: -3 })).to.throw(OptionError, /ttl/);
      expect(() => cache.wrap(f, { name: 'e', key: 'k' as never })).to.throw(OptionError, /key/);
      expect(() => cache.wrap(f, { name: '' })).to.throw(OptionError, /name/);
      expect(() => cache.wrap('nope' as never)).to.throw(OptionError);
    });

    it('uses a key function in place of the argument hash', async function () {
      const cache = new Hermes();
      let calls = 0;
      const avg = cache.wrap(
        async function avg(a: number, b: number) {
          calls++;
          return (a + b) / 2;
        },
        { tags: ['math', 'avg'], key: (a, b) => `avg:${a}:${b}` },
      );
      expect(avg.key(2, 10)).to.equal('cache:entry:avg:avg:2:10');
      expect(await avg(2, 10)).to.equal(6);
      expect(await avg(2, 10)).to.equal(6);
      expect(calls).to.equal(1);
      expect(Object.keys(await cache.backend.dump())).to.include('cache:entry:avg:avg:2:10');
      const bad = cache.wrap(async () => 1, { name: 'bad', key: () => '' });
      const error = await bad().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(OptionError);
    });

    it('rejects arguments that cannot be hashed without calling the function', async function () {
      const cache = new Hermes();
      let calls = 0;
      const fn = cache.wrap(async function fn(_x: unknown) {
        calls++;
        return 1;
      });
      const error = await fn(() => 1).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(ArgumentError);
      expect(calls).to.equal(0);
    });

    it('passes this through to the function', async function () {
      const cache = new Hermes();
      const obj = {
        factor: 3,
        times: cache.wrap(function times(this: { factor: number }, n: number) {
          return this.factor * n;
        }),
      };
      expect(await obj.times(2)).to.equal(6);
    });

    for (const how of ['clean(tags)', 'invalidate()'] as const) {
      it(`gives callers that arrive after ${how} their own computation, and stores only theirs`, async function () {
        const cache = new Hermes();
        let calls = 0;
        let openGate: () => void = () => undefined;
        const gate = new Promise<void>((resolve) => (openGate = resolve));
        const slow = cache.wrap(async function slow() {
          const n = ++calls;
          if (n === 1) await gate;
          return n;
        }, { tags: ['t'] });
        const first = slow();
        await sleep(5);
        if (how === 'invalidate()') await slow.invalidate();
        else await cache.clean(['t']);
        const second = slow(); // must not join the first computation
        await sleep(5);
        openGate();
        expect([await first, await second]).to.deep.equal([1, 2]);
        expect(await slow()).to.equal(2); // the first result, which predates the invalidation, was not stored
        expect(calls).to.equal(2);
      });
    }

    it('computes itself when a lock holder never finishes, after lockWait', async function () {
      const backend = new MemoryBackend();
      const cache = new Hermes(backend, { lockWait: 150, lockTimeout: 60_000 });
      const fn = cache.wrap(async function held() {
        return 'computed';
      });
      await backend.read({ ref: cache.keyspace.refOf(fn.key()), tagKeys: [], lockToken: 'crashed', lockTtlMs: 60_000 });
      const started = Date.now();
      expect(await fn()).to.equal('computed');
      expect(Date.now() - started).to.be.within(120, 2000);
    });
  });

  describe('functions of the call: tags, ttl, cacheIf', function () {
    it('a tags function: distinct tag lists never share tag keys, however their tags are spelt', async function () {
      const lists: string[][] = [['a', 'b'], ['["a","b"]'], ['"[a"'], ['[a'], ['a'], ['b'], [], ['"a"'], ['a', 'b', 'c']];
      const cache = new Hermes();
      const calls = lists.map(() => 0);
      const fn = cache.wrap(async function spelt(i: number) {
        calls[i] = (calls[i] ?? 0) + 1;
        return i;
      }, { tags: (i) => lists[i] ?? [] });
      const all = async (): Promise<void> => {
        for (let round = 0; round < 2; round++) for (let i = 0; i < lists.length; i++) expect(await fn(i)).to.equal(i);
      };
      await all();
      expect(calls).to.deep.equal(lists.map(() => 1));
      for (const tag of ['["a","b"]', '"[a"', '[a', '"a"', 'c', 'a']) {
        const before = [...calls];
        await cache.clean([tag]);
        await all();
        const expected = lists.map((list, i) => (before[i] ?? 0) + (list.includes(tag) ? 1 : 0));
        expect(calls, `after clean(['${tag}'])`).to.deep.equal(expected);
      }
    });

    it("a ttl function's duration is the entry's fresh time, shortened by jitter as a fixed ttl is", async function () {
      const backend = new MemoryBackend();
      const cache = new Hermes(backend, { jitter: 0 });
      const freshUntilOf = async (key: string): Promise<number> => {
        const reply = await backend.read({ ref: cache.keyspace.refOf(key), tagKeys: [], lockToken: undefined, lockTtlMs: 1 });
        return (reply.entry as { freshUntil: number }).freshUntil;
      };
      const ttls = ['90s', '5m', '1.5h', '1d', 42, '250ms'] as const;
      const fn = cache.wrap(async function timed(i: number) {
        return i;
      }, { ttl: (_result, i) => ttls[i] ?? 1 });
      const expectedMs = [90_000, 300_000, 5_400_000, 86_400_000, 42_000, 250];
      for (let i = 0; i < ttls.length; i++) {
        const t0 = Date.now();
        await fn(i);
        expect((await freshUntilOf(fn.key(i))) - t0, String(ttls[i])).to.be.within(expectedMs[i] ?? 0, (expectedMs[i] ?? 0) + 50);
      }
      const jittered = new Hermes(backend, { jitter: 0.5, prefix: 'jittered' });
      const spread = jittered.wrap(async function spread(n: number) {
        return n;
      }, { ttl: () => '100s' });
      const before = Date.now();
      const offsets: number[] = [];
      for (let n = 0; n < 40; n++) {
        await spread(n);
        const reply = await backend.read({ ref: jittered.keyspace.refOf(spread.key(n)), tagKeys: [], lockToken: undefined, lockTtlMs: 1 });
        offsets.push((reply.entry as { freshUntil: number }).freshUntil - before);
      }
      expect(Math.min(...offsets)).to.be.at.least(50_000 - 100);
      expect(Math.max(...offsets)).to.be.at.most(100_000 + 100);
      expect(Math.max(...offsets) - Math.min(...offsets)).to.be.above(10_000);
    });

    it('cacheIf is asked before the ttl function, which is not asked for a rejected result', async function () {
      const asked: string[] = [];
      const cache = new Hermes();
      const fn = cache.wrap(async function ordered(n: number) {
        return n;
      }, {
        cacheIf: (result) => {
          asked.push(`cacheIf ${result}`);
          return result > 0;
        },
        ttl: (result) => {
          asked.push(`ttl ${result}`);
          return 60;
        },
      });
      await fn(0);
      await fn(1);
      await fn(1);
      expect(asked).to.deep.equal(['cacheIf 0', 'cacheIf 1', 'ttl 1']);
    });
  });

  describe('failures of the cache layer', function () {
    it('falls open to the function with an error event when the backend fails', async function () {
      const backend = new FlakyBackend();
      const cache = new Hermes(backend);
      const errors: HermesError[] = [];
      cache.on('error', (e) => errors.push(e));
      let calls = 0;
      const fn = cache.wrap(async function fn(n: number) {
        calls++;
        return n;
      });
      backend.failing.add('read');
      expect(await fn(1)).to.equal(1);
      expect(await fn(1)).to.equal(1);
      expect(calls).to.equal(2);
      expect(errors).to.have.length(2);
      expect(errors[0]).to.be.instanceOf(BackendError).with.property('operation', 'read');
      expect((errors[0] as Error).cause).to.be.instanceOf(Error);
      backend.failing.clear();
      backend.failing.add('write');
      expect(await fn(2)).to.equal(2);
      expect(errors[2]).to.be.instanceOf(BackendError).with.property('operation', 'write');
      backend.failing.clear();
      expect(await fn(2)).to.equal(2);
      expect(await fn(2)).to.equal(2);
      expect(calls).to.equal(4); // caching resumed by itself
    });

    it('rejects with a BackendError when failOpen is false', async function () {
      const backend = new FlakyBackend();
      const cache = new Hermes(backend, { failOpen: false });
      const events: HermesError[] = [];
      cache.on('error', (e) => events.push(e));
      let calls = 0;
      const fn = cache.wrap(async function fn() {
        calls++;
        return 1;
      });
      backend.failing.add('read');
      const error = await fn().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(BackendError).with.property('operation', 'read');
      expect((error as BackendError).key).to.equal(fn.key());
      expect((error as Error).cause).to.be.instanceOf(Error).with.property('message', 'read refused');
      expect(calls).to.equal(0); // not fallen open to the function
      expect(events).to.deep.equal([]); // the caller gets the error; no event on top
    });

    it('rejects invalidate() and clean() when the backend fails: a lost invalidation is not silent', async function () {
      const backend = new FlakyBackend();
      const cache = new Hermes(backend);
      const fn = cache.wrap(async function fn() {
        return 1;
      });
      backend.failing.add('*');
      for (const call of [() => fn.invalidate(), () => cache.clean(['t']), () => cache.clean()]) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(BackendError);
      }
    });

    it('returns a result that cannot be serialised, caches nothing, emits a SerializationError', async function () {
      const cache = new Hermes(new MemoryBackend({ serialize: true }));
      const errors: HermesError[] = [];
      cache.on('error', (e) => errors.push(e));
      let calls = 0;
      const fn = cache.wrap(async function withCallback() {
        calls++;
        return { run: () => 'ran' };
      });
      expect((await fn()).run()).to.equal('ran');
      expect((await fn()).run()).to.equal('ran');
      expect(calls).to.equal(2);
      expect(errors[0]).to.be.instanceOf(SerializationError);
      expect(await cache.backend.dump()).to.deep.equal({});
    });

    it('warns once through process warnings when nobody listens for errors, and never crashes', async function () {
      const backend = new FlakyBackend();
      const cache = new Hermes(backend);
      const warnings: Error[] = [];
      const onWarning = (w: Error): void => {
        if (w.name === 'HermesWarning') warnings.push(w);
      };
      process.on('warning', onWarning);
      try {
        const fn = cache.wrap(async function fn() {
          return 1;
        });
        backend.failing.add('read');
        expect(await fn()).to.equal(1);
        expect(await fn()).to.equal(1);
        await sleep(10);
        expect(warnings).to.have.length(1);
        expect(warnings[0]?.message).to.match(/read.*refused/);
      } finally {
        process.off('warning', onWarning);
      }
    });
  });

  it('warns once per error code without listeners: a lossy result does not hide a later outage', async function () {
    const backend = new FlakyBackend();
    const cache = new Hermes(backend);
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => {
      if (w.name === 'HermesWarning') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      class Point {
        constructor(readonly x: number) {}
      }
      const point = cache.wrap(async function point(x: number) {
        return new Point(x);
      });
      expect(await point(1)).to.be.instanceOf(Point);
      expect(await point(2)).to.be.instanceOf(Point);
      backend.failing.add('read');
      expect(await point(3)).to.be.instanceOf(Point);
      await sleep(10);
      expect(warnings.map((w) => (w as Error & { code?: string }).code)).to.deep.equal(['ERR_HERMES_LOSSY_VALUE', 'ERR_HERMES_BACKEND']);
      expect(warnings[0]?.message).to.match(/'point' holds an instance of class Point at result\. It is cached, but every read of it returns a plain object/);
      expect(cache.stats().errors).to.deep.include({ ERR_HERMES_LOSSY_VALUE: 1 });
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('checks the first 64 results of a function for lossy parts, then no more (a bounded cost)', async function () {
    class Point {
      constructor(readonly x: number) {}
    }
    for (const serialize of [false, true]) {
      const cache = new Hermes(new MemoryBackend({ serialize }));
      const errors: HermesError[] = [];
      cache.on('error', (e) => errors.push(e));
      const at = cache.wrap(async function at(i: number) {
        return i < 64 ? { i, when: new Date(i) } : { i, point: new Point(i) };
      });
      for (let i = 0; i < 65; i++) await at(i);
      expect(errors, `serialize: ${serialize}`).to.deep.equal([]);
      const early = cache.wrap(async function early(i: number) {
        return i === 63 ? new Point(i) : { i, when: new Date(i) };
      });
      for (let i = 0; i < 64; i++) await early(i);
      expect(errors.map((e) => e.code)).to.deep.equal(['ERR_HERMES_LOSSY_VALUE']);
    }
  });

  it('refuses classes it cannot revive when it is constructed', function () {
    expect(() => new Hermes(undefined, { classes: [Date] })).to.throw(OptionError, /Date is restored without being registered/);
    class A {}
    expect(() => new Hermes(undefined, { classes: { A, B: A } })).to.throw(OptionError).with.property('option', 'classes');
  });

  it('close() lets waiting callers go', async function () {
    const backend = new MemoryBackend();
    const cache = new Hermes(backend, { lockWait: 60_000 });
    const other = new Hermes(backend, { lockWait: 60_000 });
    let calls = 0;
    const fn = async (): Promise<number> => {
      calls++;
      await sleep(100);
      return calls;
    };
    const a = cache.wrap(fn, { name: 'f' });
    const b = other.wrap(fn, { name: 'f' });
    const first = a();
    await sleep(10);
    const waiting = b();
    await other.close();
    expect(await first).to.equal(1);
    expect(await waiting).to.be.a('number'); // woken and served, not left hanging
  });
});

describe('Hermes resilience and observability', function () {
  /** A MemoryBackend seen as a remote store: reads can hang or fail, and are counted. */
  class RemoteLike extends MemoryBackend {
    hang = false;
    fail = false;
    reads = 0;
    constructor() {
      super({ serialize: true });
    }
    override readSync = undefined as unknown as MemoryBackend['readSync'];
    override readonly inProcess = false;
    override async read(...args: Parameters<MemoryBackend['read']>): ReturnType<MemoryBackend['read']> {
      this.reads++;
      if (this.fail) throw new Error('connection refused');
      if (this.hang) return new Promise(() => undefined);
      return super.read(...args);
    }
  }

  it('gives every backend read a deadline (backendTimeout) and falls open', async function () {
    const backend = new RemoteLike();
    const cache = new Hermes(backend, { backendTimeout: 80 });
    const errors: HermesError[] = [];
    cache.on('error', (e) => errors.push(e));
    const fn = cache.wrap(async function slowStore(n: number) {
      return n + 1;
    });
    backend.hang = true;
    const started = Date.now();
    expect(await fn(1)).to.equal(2);
    expect(Date.now() - started).to.be.within(60, 600);
    expect(errors[0]).to.be.instanceOf(BackendError);
    expect((errors[0]?.cause as Error).message).to.match(/timed out after 80 ms/);
    expect(cache.stats().fallbacks).to.equal(1);
  });

  it('opens the circuit breaker after repeated failures, skips the backend, then probes it', async function () {
    const backend = new RemoteLike();
    const cache = new Hermes(backend, { circuitBreaker: { failures: 3, cooldown: 150 } });
    const fallbacks: string[] = [];
    cache.on('error', () => undefined);
    cache.on('fallback', (e) => fallbacks.push(e.reason));
    let calls = 0;
    const fn = cache.wrap(async function guarded() {
      calls++;
      return calls;
    });
    backend.fail = true;
    for (let i = 0; i < 3; i++) await fn();
    expect(backend.reads).to.equal(3);
    for (let i = 0; i < 5; i++) await fn(); // open: the backend is not asked
    expect(backend.reads).to.equal(3);
    expect(fallbacks).to.deep.equal([...(Array(3).fill('read-failed') as string[]), ...(Array(5).fill('circuit-open') as string[])]);
    backend.fail = false;
    await sleep(200);
    await fn(); // half-open: one probe, which succeeds and closes the breaker
    expect(backend.reads).to.equal(4);
    const before = calls;
    expect(await fn()).to.equal(before); // cached again
    expect(cache.stats().fallbacks).to.equal(8);
  });

  it('counts hits, misses, computations, waits and errors in stats()', async function () {
    const backend = new MemoryBackend();
    const cache = new Hermes(backend);
    const peer = new Hermes(backend);
    const f = async (n: number): Promise<number> => {
      await sleep(30);
      return n;
    };
    const a = cache.wrap(f, { name: 'counted' });
    const b = peer.wrap(f, { name: 'counted' });
    await Promise.all([a(1), b(1)]); // a computes, b waits for it
    await a(1);
    await a(2);
    const stats = cache.stats();
    expect(stats).to.deep.include({ hits: 1, misses: 2, computations: 2, fallbacks: 0, timeouts: 0, staleServed: 0 });
    expect(peer.stats()).to.deep.include({ lockWaits: 1, computations: 0, hits: 1 });
    expect(peer.stats().lockWaitMs).to.be.within(5, 1000);
    const corrupt = new Hermes(new MemoryBackend({ serialize: true }));
    corrupt.on('error', () => undefined);
    const c = corrupt.wrap(async function c() {
      return 1;
    });
    (corrupt.backend as MemoryBackend).setRaw(c.key(), Buffer.from('h1j0da39a3ee5e6b4b0d9999999999999{bad', 'latin1'));
    await c();
    expect(corrupt.stats().errors).to.deep.equal({ ERR_HERMES_CORRUPT_ENTRY: 1 });
  });

  it('emits miss, compute and hit events, in order, to their listeners', async function () {
    const backend = new MemoryBackend();
    const cache = new Hermes(backend);
    const seen: string[] = [];
    for (const event of ['hit', 'miss', 'compute', 'wait', 'fallback'] as const) {
      cache.on(event, (e: { key: string }) => seen.push(`${event}:${e.key.split(':')[2] ?? ''}`));
    }
    const fn = cache.wrap(async function observed() {
      return 1;
    });
    await fn();
    await fn();
    expect(seen).to.deep.equal(['miss:observed', 'compute:observed', 'hit:observed']);
  });

  it('traces reads, writes and computations on node:diagnostics_channel', async function () {
    const { tracingChannel } = await import('node:diagnostics_channel');
    const events: string[] = [];
    const subscribers = (name: string) => ({
      start: (ctx: unknown) => events.push(`${name}:start:${(ctx as { name: string }).name}`),
      end: () => undefined,
      asyncStart: () => undefined,
      asyncEnd: () => events.push(`${name}:end`),
      error: () => events.push(`${name}:error`),
    });
    const channels = ['hermes:read', 'hermes:write', 'hermes:compute'].map((name) => {
      const channel = tracingChannel(name);
      const handlers = subscribers(name.split(':')[1] as string);
      channel.subscribe(handlers);
      return () => { channel.unsubscribe(handlers); };
    });
    try {
      const cache = new Hermes(new RemoteLike());
      const fn = cache.wrap(async function traced() {
        return 1;
      });
      await fn();
      expect(events).to.deep.equal([
        'read:start:traced',
        'read:end',
        'compute:start:traced',
        'compute:end',
        'write:start:traced',
        'write:end',
      ]);
    } finally {
      for (const unsubscribe of channels) unsubscribe();
    }
  });

  it('spreads the TTLs of entries written together by up to jitter × ttl', async function () {
    const backend = new MemoryBackend();
    const cache = new Hermes(backend, { ttl: 100, jitter: 0.5 });
    const fn = cache.wrap(async function spread(n: number) {
      return n;
    });
    const before = Date.now();
    for (let n = 0; n < 50; n++) await fn(n);
    const freshUntil: number[] = [];
    for (let n = 0; n < 50; n++) {
      const reply = await backend.read({ ref: cache.keyspace.refOf(fn.key(n)), tagKeys: [], lockToken: undefined, lockTtlMs: 1 });
      freshUntil.push((reply.entry as { freshUntil: number }).freshUntil - before);
    }
    expect(Math.min(...freshUntil)).to.be.at.least(50_000 - 100);
    expect(Math.max(...freshUntil)).to.be.at.most(100_000 + 100);
    expect(Math.max(...freshUntil) - Math.min(...freshUntil)).to.be.above(10_000); // spread, not equal
    const none = new Hermes(new MemoryBackend(), { ttl: 100, jitter: 0 });
    const g = none.wrap(async function exact() {
      return 1;
    });
    const t0 = Date.now();
    await g();
    const exact = await none.backend.read({ ref: none.keyspace.refOf(g.key()), tagKeys: [], lockToken: undefined, lockTtlMs: 1 });
    expect((exact.entry as { freshUntil: number }).freshUntil - t0).to.be.within(100_000, 100_050);
  });

  it('validates grace, staleWhileRevalidate, timeout, jitter, backendTimeout and circuitBreaker', function () {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ grace: -1 }, 'grace'],
      [{ staleWhileRevalidate: 'x' }, 'staleWhileRevalidate'],
      [{ timeout: { soft: 500, hard: 100 } }, 'timeout'],
      [{ timeout: { hard: 0 } }, 'timeout'],
      [{ jitter: 1 }, 'jitter'],
      [{ backendTimeout: 0 }, 'backendTimeout'],
      [{ circuitBreaker: { failures: 0 } }, 'circuitBreaker'],
    ];
    for (const [options, option] of bad) {
      expect(() => new Hermes(undefined, options), option)
        .to.throw(OptionError)
        .with.property('option', option);
    }
    expect(() => new Hermes().wrap(async () => 1, { name: 'g', grace: -2 })).to.throw(OptionError, /grace/);
  });
});

describe('Hermes: invalidations and the calls in flight', function () {
  /** Reads see the store when they start and answer 20 ms later; invalidations delete after 10 ms. */
  class SlowStore extends MemoryBackend {
    constructor() {
      super({ serialize: true });
    }
    override readSync = undefined as unknown as MemoryBackend['readSync'];
    override readonly inProcess = false;
    override async read(...args: Parameters<MemoryBackend['read']>): ReturnType<MemoryBackend['read']> {
      const reply = await super.read(...args);
      await sleep(20);
      return reply;
    }
    override async cleanTags(prefix: string, keys: readonly string[]): Promise<void> {
      await sleep(10);
      return super.cleanTags(prefix, keys);
    }
    override async invalidate(ref: EntryRef): Promise<void> {
      await sleep(10);
      return super.invalidate(ref);
    }
    override async clear(prefix: string): Promise<void> {
      await sleep(10);
      return super.clear(prefix);
    }
  }

  for (const how of ['clean(tags)', 'invalidate()', 'clean()'] as const) {
    it(`a call made after ${how} resolves does not join a call that read the store before the deletion`, async function () {
      const cache = new Hermes(new SlowStore(), { backendTimeout: 1000 });
      let version = 1;
      const fn = cache.wrap(async (n: number) => `${n}:${version}`, { name: 'item', tags: ['t'] });
      expect(await fn(1)).to.equal('1:1');
      version = 2;
      const invalidation = how === 'clean(tags)' ? cache.clean(['t']) : how === 'clean()' ? cache.clean() : fn.invalidate(1);
      await sleep(3);
      const early = fn(1); // reads the store before the deletion
      await invalidation;
      const late = fn(1); // made after the invalidation resolved
      expect(await early).to.equal('1:1'); // begun before it resolved: may be the old value
      expect(await late).to.equal('1:2');
      await cache.close();
    });
  }
});

describe('Hermes: a lock it could not release', function () {
  it('is released in the background once the store answers again, waking the other processes at once', async function () {
    const backend = new FlakyBackend();
    const a = new Hermes(backend, { lockTimeout: 10_000, lockWait: 5000 });
    const b = new Hermes(backend, { lockTimeout: 10_000, lockWait: 5000 });
    let calls = 0;
    const fn = async (n: number): Promise<number> => {
      calls++;
      return n * 2;
    };
    const fa = a.wrap(fn, { name: 'f' });
    const fb = b.wrap(fn, { name: 'f' });
    a.on('error', () => undefined);
    backend.failing = new Set(['write', 'release']); // a failover: the lock is taken, then the store stops answering
    expect(await fa(1)).to.equal(2);
    backend.failing.clear(); // back
    const started = Date.now();
    expect(await fb(1)).to.equal(2); // waits for a's lock: freed by the background release, not its expiry
    const waited = Date.now() - started;
    expect(waited, 'waited for the lock (ms)').to.be.below(1500);
    expect(calls).to.equal(2);
    await a.close();
    await b.close();
  });
});

describe('Hermes: a result computed without the lock', function () {
  it('is served but not stored, so an invalidation made during its computation is never overwritten', async function () {
    const backend = new MemoryBackend({ serialize: true });
    const holder = new Hermes(backend, { lockWait: 10_000 });
    const impatient = new Hermes(backend, { lockWait: 30 });
    let version = 1;
    const compute = (ms: number) => async (n: number): Promise<string> => {
      const seen = version;
      await sleep(ms);
      return `${n}:${seen}`;
    };
    const held = holder.wrap(compute(300), { name: 'f' })(1); // takes the lock, computes for 300 ms
    await sleep(5);
    const fb = impatient.wrap(compute(100), { name: 'f' });
    const unlocked = fb(1); // waits 30 ms for the lock, then computes without it (sees version 1)
    await sleep(60);
    version = 2;
    await fb.invalidate(1); // during both computations: neither result may be stored
    expect(await unlocked).to.equal('1:1');
    expect(await held).to.equal('1:1');
    expect(await fb(1)).to.equal('1:2');
    await holder.close();
    await impatient.close();
  });
});
