import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { ArgumentError, argsHash, canonicalArgs, Keyspace } from '../src/index.js';

describe('argument hashing', function () {
  const distinct: Array<[string, unknown[], unknown[]]> = [
    ['1 / "1"', [1], ['1']],
    ['null / undefined', [null], [undefined]],
    ['[1,[2,3]] / [[1,2],3]', [[1, [2, 3]]], [[[1, 2], 3]]],
    ['two args / one array', [1, 2], [[1, 2]]],
    ['string with comma / two strings', ['a,b'], ['a', 'b']],
    ['Date / its time', [new Date(5)], [5]],
    ['Date / ISO string', [new Date(5)], [new Date(5).toISOString()]],
    ['BigInt / number', [1n], [1]],
    ['BigInt / string', [1n], ['1n']],
    ['Map / object', [new Map([['a', 1]])], [{ a: 1 }]],
    ['Set / array', [new Set([1, 2])], [[1, 2]]],
    ['Buffer / string', [Buffer.from('ab')], ['ab']],
    ['Buffer / Uint8Array', [Buffer.from('ab')], [new Uint8Array([97, 98])]],
    ['Uint8Array / Int8Array', [new Uint8Array([1])], [new Int8Array([1])]],
    ['0 / -0', [0], [-0]],
    ['NaN / "NaN"', [NaN], ['NaN']],
    ['true / "true"', [true], ['true']],
    ['missing arg / undefined arg', [], [undefined]],
    ['class instance / plain object', [new (class Point { x = 1 })()], [{ x: 1 }]],
    ['{a: undefined} / {}', [{ a: undefined }], [{}]],
    ['nested key order matters for arrays', [[1, 2]], [[2, 1]]],
  ];
  for (const [title, a, b] of distinct) {
    it(`tells apart ${title}`, function () {
      expect(argsHash(a)).not.to.equal(argsHash(b));
    });
  }

  it('ignores object key order, Map and Set insertion order', function () {
    expect(argsHash([{ a: 1, b: { c: 2, d: 3 } }])).to.equal(argsHash([{ b: { d: 3, c: 2 }, a: 1 }]));
    expect(argsHash([new Map([['x', 1], ['y', 2]])])).to.equal(argsHash([new Map([['y', 2], ['x', 1]])]));
    expect(argsHash([new Set([1, 2, 3])])).to.equal(argsHash([new Set([3, 1, 2])]));
  });

  it('gives equal hashes for equal but distinct values', function () {
    const make = (): unknown[] => [{ when: new Date(10), ids: new Set([1n, 2n]), raw: Buffer.from('x') }, 'q', 3.5];
    expect(argsHash(make())).to.equal(argsHash(make()));
  });

  it('is stable across processes and runs', function () {
    const code =
      "import('./src/keys.ts').then(k => process.stdout.write(k.argsHash([{b: 1, a: [1, 'x', null]}, 2n, new Date(0)])))";
    const other = execFileSync(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8' });
    expect(other).to.equal(argsHash([{ a: [1, 'x', null], b: 1 }, 2n, new Date(0)]));
    // A fixed value: changing it orphans every entry users have cached.
    expect(argsHash([2, 333])).to.equal('c4be94f1f3e36935');
  });

  it('agrees between the fast path (strings and numbers) and the general path', function () {
    expect(canonicalArgs([1, 'a'])).to.equal(canonicalArgs([1, 'a', undefined]).replace(/,undefined$/, ''));
    expect(canonicalArgs([[1, 'a']])).to.equal(`[${canonicalArgs([1, 'a'])}]`);
  });

  it('rejects functions, symbols, cycles and weak collections with an ArgumentError naming the path', function () {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const cases: Array<[unknown[], RegExp]> = [
      [[() => 1], /function.*args\[0\]/],
      [[1, { user: { cb: () => 1 } }], /args\[1\]\.user\.cb/],
      [[Symbol('s')], /symbol/],
      [[cyclic], /cyclic.*args\[0\]\.self/],
      [[[new WeakMap()]], /WeakMap.*args\[0\]\[0\]/],
    ];
    for (const [args, pattern] of cases) {
      expect(() => argsHash(args)).to.throw(ArgumentError, pattern);
    }
  });

  it('accepts a shared (non-cyclic) object twice', function () {
    const shared = { a: 1 };
    expect(() => argsHash([shared, [shared]])).not.to.throw();
  });
});

describe('Keyspace', function () {
  it('builds entry, tag and lock keys under the prefix', function () {
    const keys = new Keyspace('cache');
    expect(keys.entryKey('foo', 'abc')).to.equal('cache:entry:foo:abc');
    expect(keys.tagKey('math')).to.equal('cache:tag:math');
    expect(keys.lockKey('foo', 'abc')).to.equal('cache:lock:foo:abc');
    expect(keys.lockKeyOf('cache:entry:foo:abc')).to.equal('cache:lock:foo:abc');
    expect(keys.kindOf('cache:tag:x')).to.equal('tag');
    expect(keys.kindOf('other:tag:x')).to.equal(undefined);
  });
});
