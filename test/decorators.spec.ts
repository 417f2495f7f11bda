import assert from 'node:assert/strict';
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { asCached, type CachedFunction, Hermes, NameConflictError, OptionError } from '../src/index.js';

/** The class under test, as a user writes it; compiled below in each decorator mode. */
const exampleSource = `
const cache = globalThis.__hermesTestCache;
export const calls = { bar: 0, baz: 0, stat: 0 };
export class Example {
  constructor(factor = 1) { this.factor = factor; }
  @cache.cached({ tags: ['math', 'power'], ttl: 1200 })
  async bar(a, b) { calls.bar++; return a ** b; }
  @cache.cached({ tags: ['math', 'avg'], key: (a, b) => 'avg:' + a + ':' + b })
  async baz(a, b) { calls.baz++; return (a + b) / 2; }
  @cache.cached()
  static async stat(n) { calls.stat++; return n + 1; }
}
export class Child extends Example {}
`;

async function compileAndImport(experimentalDecorators: boolean, cache: Hermes): Promise<Record<string, unknown>> {
  const { outputText } = ts.transpileModule(exampleSource, {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ES2022,
      experimentalDecorators,
      allowJs: true,
    },
    fileName: 'example.ts',
  });
  const dir = mkdtempSync(join(tmpdir(), 'hermes-decorators-'));
  const file = join(dir, 'example.mjs');
  writeFileSync(file, outputText);
  (globalThis as Record<string, unknown>).__hermesTestCache = cache;
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface ExampleClass {
  new (factor?: number): {
    bar(a: number, b: number): Promise<number>;
    baz(a: number, b: number): Promise<number>;
  };
  stat(n: number): Promise<number>;
}

for (const mode of ['TC39 standard decorators', 'legacy experimentalDecorators'] as const) {
  describe(`@cache.cached() with ${mode} (compiled by TypeScript)`, function () {
    let cache: Hermes;
    let mod: Record<string, unknown>;
    let Example: ExampleClass;
    let Child: ExampleClass;
    let calls: { bar: number; baz: number; stat: number };

    beforeEach(async function () {
      cache = new Hermes();
      mod = await compileAndImport(mode !== 'TC39 standard decorators', cache);
      Example = mod.Example as ExampleClass;
      Child = mod.Child as ExampleClass;
      calls = mod.calls as typeof calls;
    });

    it('caches a method; this is not part of the key', async function () {
      const a = new Example(1);
      const b = new Example(2);
      expect(await a.bar(2, 10)).to.equal(1024);
      expect(await b.bar(2, 10)).to.equal(1024);
      expect(calls.bar).to.equal(1);
    });

    it('names entries ClassName.method after the defining class, subclasses included', async function () {
      await new Child().bar(2, 3);
      await new Example().bar(2, 3);
      expect(calls.bar).to.equal(1);
      const keys = Object.keys(await cache.backend.dump());
      expect(keys.some((k) => k.startsWith('cache:entry:Example.bar:'))).to.equal(true);
      expect(keys.some((k) => k.includes('Child'))).to.equal(false);
      expect(await Example.stat(1)).to.equal(2);
      expect(await Example.stat(1)).to.equal(2);
      expect(calls.stat).to.equal(1);
      expect(Object.keys(await cache.backend.dump())).to.include(
        (Example.stat as unknown as CachedFunction<[number], number>).key(1),
      );
      expect((Example.stat as unknown as CachedFunction<[number], number>).key(1)).to.match(
        /^cache:entry:Example\.stat:/,
      );
    });

    it('applies tags, custom keys and invalidate() as in the Python quickstart', async function () {
      const example = new Example();
      expect(await example.bar(2, 10)).to.equal(1024);
      expect(await example.baz(2, 10)).to.equal(6);
      const baz = example.baz as unknown as CachedFunction<[number, number], number>;
      expect(baz.key(2, 10)).to.equal('cache:entry:Example.baz:avg:2:10');
      await (example.bar as unknown as CachedFunction<[number, number], number>).invalidate(2, 10);
      await example.bar(2, 10);
      await example.baz(2, 10);
      expect(calls).to.deep.include({ bar: 2, baz: 1 });
      await cache.clean(['avg']);
      await example.bar(2, 10);
      await example.baz(2, 10);
      expect(calls).to.deep.include({ bar: 2, baz: 2 });
      await cache.clean(['math']);
      await example.bar(2, 10);
      await example.baz(2, 10);
      expect(calls).to.deep.include({ bar: 3, baz: 3 });
    });
  });
}

describe('@cache.cached(): invalidate() and key() before the method was ever called', function () {
  for (const mode of ['TC39 standard decorators', 'legacy experimentalDecorators'] as const) {
    it(`${mode}: a process that only invalidates (another class instance, same store) drops the entry`, async function () {
      const store = new Hermes().backend; // one store, two "processes"
      const writer = new Hermes(store);
      const admin = new Hermes(store);
      const writing = await compileAndImport(mode !== 'TC39 standard decorators', writer);
      const adminModule = await compileAndImport(mode !== 'TC39 standard decorators', admin);
      const W = writing.Example as ExampleClass;
      const A = adminModule.Example as ExampleClass;
      const writerCalls = writing.calls as { bar: number; stat: number };
      expect(await new W().bar(2, 10)).to.equal(1024);
      expect(await W.stat(1)).to.equal(2);
      // The admin process has constructed an instance but never called the methods.
      const bar = new A().bar as unknown as CachedFunction<[number, number], number>;
      expect(bar.key(2, 10)).to.equal((new W().bar as unknown as CachedFunction<[number, number], number>).key(2, 10));
      await bar.invalidate(2, 10);
      await (A.stat as unknown as CachedFunction<[number], number>).invalidate(1);
      await new W().bar(2, 10);
      await W.stat(1);
      expect(writerCalls).to.deep.include({ bar: 2, stat: 2 });
      expect((adminModule.calls as { bar: number }).bar).to.equal(0);
    });
  }

  it('two caches stacked on one method: both cache it under ClassName.method', async function () {
    const outer = new Hermes();
    const inner = new Hermes();
    let calls = 0;
    class Stacked {
      @outer.cached()
      @inner.cached()
      async get(n: number): Promise<number> {
        calls++;
        return n * 2;
      }
    }
    const stacked = new Stacked();
    const get = stacked.get as unknown as CachedFunction<[number], number>;
    expect(get.key(1)).to.match(/^cache:entry:Stacked\.get:/);
    expect(await stacked.get(1)).to.equal(2);
    expect(await stacked.get(1)).to.equal(2);
    expect(calls).to.equal(1);
    expect(Object.keys(await inner.backend.dump()).some((k) => k.startsWith('cache:entry:Stacked.get:'))).to.equal(true);
    await get.invalidate(1);
    await inner.clean();
    expect(await stacked.get(1)).to.equal(2);
    expect(calls).to.equal(2);
  });

  it('another decorator above @cached(): the error names the cause and the fix', async function () {
    const cache = new Hermes();
    const logged = <T extends (...args: never[]) => unknown>(method: T, _context: ClassMethodDecoratorContext): T =>
      function (this: unknown, ...args: Parameters<T>) {
        return method.apply(this, args);
      } as T;
    class Hidden {
      @logged
      @cache.cached()
      async get(n: number): Promise<number> {
        return n;
      }
    }
    const error = await new Hidden().get(1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(OptionError);
    expect((error as OptionError).message).to.match(/another decorator/).and.to.match(/\{ name/);
    expect((error as OptionError).option).to.equal('name');
  });
});

describe('@cache.cached() compiled by tsx (esbuild, standard decorators)', function () {
  it('works on a class in a TypeScript test file, with full types', async function () {
    const cache = new Hermes();
    let calls = 0;
    class Pricing {
      @cache.cached({ tags: ['prices'] })
      async price(sku: string, quantity: number): Promise<number> {
        calls++;
        return sku.length * quantity;
      }
    }
    const pricing = new Pricing();
    const price: number = await pricing.price('abc', 2);
    expect(price).to.equal(6);
    expect(await pricing.price('abc', 2)).to.equal(6);
    expect(calls).to.equal(1);
    expect(Object.keys(await cache.backend.dump()).some((k) => k.startsWith('cache:entry:Pricing.price:'))).to.equal(
      true,
    );
  });

  it('refuses two classes whose methods claim the same name, at first call', async function () {
    const cache = new Hermes();
    const makeClass = () =>
      class Twin {
        @cache.cached()
        async get(n: number): Promise<number> {
          return n;
        }
      };
    const A = makeClass();
    const B = makeClass();
    expect(await new A().get(1)).to.equal(1);
    const error = await new B().get(1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.be.instanceOf(NameConflictError);
  });

  it('many() on a decorated method: asCached(method, instance) runs the misses on the instance, in one batch', async function () {
    const cache = new Hermes();
    const seen: string[] = [];
    class Repo {
      constructor(readonly table: string) {}
      @cache.cached({ tags: ['rows'] })
      async find(id: number): Promise<string> {
        seen.push(`${this.table}:${id}`);
        return `${this.table}#${id}`;
      }
    }
    const repo = new Repo('users');
    assert.equal(await repo.find(1), 'users#1');
    const find = asCached(repo.find, repo);
    assert.deepEqual(await find.many([[1], [2], [3], [2]]), ['users#1', 'users#2', 'users#3', 'users#2']);
    assert.deepEqual(seen, ['users:1', 'users:2', 'users:3']);
    // The bound view keeps the other controls, bound too.
    assert.equal(find.key(2), asCached(repo.find).key(2));
    await find.invalidate(2);
    assert.equal(await find(2), 'users#2');
    assert.deepEqual(seen, ['users:1', 'users:2', 'users:3', 'users:2']);
    // Without an instance, many() reaches the same entries (the policy is known by now).
    assert.deepEqual(await asCached(repo.find).many([[3], [1]]), ['users#3', 'users#1']);
    // A wrapped function's many() is a method of the function, called as such.
    const double = cache.wrap(async (n: number) => n * 2, { name: 'double' });
    assert.deepEqual(await double.many([[1], [2]]), [2, 4]);
    assert.deepEqual(await asCached(double).many([[2], [3]]), [4, 6]);
  });

  it('takes tags, ttl and cacheIf functions of the arguments (not this) and of the result, typed', async function () {
    const cache = new Hermes(undefined, { jitter: 0 });
    let calls = 0;
    const seen: unknown[][] = [];
    class Teams {
      constructor(readonly region: string) {}
      @cache.cached<[teamId: number], string[]>({
        tags: (teamId) => [`team:${teamId}`],
        ttl: (members, teamId) => {
          seen.push(['ttl', members, teamId]);
          return members.length === 1 ? '200ms' : '1h';
        },
        cacheIf: (members, teamId) => {
          seen.push(['cacheIf', members, teamId]);
          return teamId !== 0;
        },
      })
      async members(teamId: number): Promise<string[]> {
        calls++;
        return Array.from({ length: teamId }, (_, i) => `${this.region}${i}`);
      }
    }
    const teams = new Teams('eu');
    expect(await teams.members(2)).to.deep.equal(['eu0', 'eu1']);
    expect(await teams.members(2)).to.deep.equal(['eu0', 'eu1']);
    expect(await teams.members(0)).to.deep.equal([]);
    expect(await teams.members(0)).to.deep.equal([]);
    expect(calls).to.equal(3); // 2 once; 0 twice, refused by cacheIf
    expect(await teams.members(1)).to.deep.equal(['eu0']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await teams.members(1)).to.deep.equal(['eu0']);
    expect(calls).to.equal(5); // 1 again after its 200 ms
    await cache.clean(['team:2']);
    await teams.members(2);
    expect(calls).to.equal(6);
    expect(seen.slice(0, 3)).to.deep.equal([
      ['cacheIf', ['eu0', 'eu1'], 2],
      ['ttl', ['eu0', 'eu1'], 2],
      ['cacheIf', [], 0],
    ]);
  });

  it('reaches a decorated method\'s controls through asCached(), with a typed key', async function () {
    const cache = new Hermes();
    let calls = 0;
    class Users {
      @cache.cached({ key: (id: number, lang: string) => `${id}-${lang}` })
      async greet(id: number, lang: string): Promise<string> {
        calls++;
        return `${lang}:${id}`;
      }
    }
    const users = new Users();
    expect(await users.greet(7, 'en')).to.equal('en:7');
    const greet = asCached(users.greet);
    expect(greet).to.equal(users.greet);
    expect(greet.key(7, 'en')).to.equal('cache:entry:Users.greet:7-en');
    await greet.invalidate(7, 'en');
    await users.greet(7, 'en');
    expect(calls).to.equal(2);
    const wrapped = cache.wrap(async (n: number) => n, { name: 'n' });
    expect(asCached(wrapped)).to.equal(wrapped);
    expect(() => asCached(async (n: number) => n)).to.throw(OptionError, /asCached\(\) takes a function wrapped/);
  });
  it('gives a decorated method peek, set, refresh and withInfo, running the method with `this` given by call()', async function () {
    const cache = new Hermes();
    let calls = 0;
    class Prices {
      constructor(readonly currency: string) {}
      @cache.cached({ tags: ['prices'] })
      async price(sku: string): Promise<string> {
        calls++;
        return `${sku}:${calls} ${this.currency}`;
      }
    }
    const prices = new Prices('EUR');
    const price = asCached(prices.price);
    expect(await price.peek('a')).to.equal(undefined);
    const miss = await price.withInfo.call(prices, 'a');
    expect([miss.value, miss.status, miss.age]).to.deep.equal(['a:1 EUR', 'miss', 0]);
    expect(await price.peek('a')).to.equal('a:1 EUR');
    expect((await price.withInfo.call(prices, 'a')).status).to.equal('hit');
    expect(await price.refresh.call(prices, 'a')).to.equal('a:2 EUR');
    expect(await prices.price('a')).to.equal('a:2 EUR');
    await price.set(['b'], 'b:set');
    expect(await prices.price('b')).to.equal('b:set');
    await cache.clean(['prices']);
    expect(await price.peek('b')).to.equal(undefined);
    expect(calls).to.equal(2);
  });
});
