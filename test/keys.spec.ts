import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { argsHash, canonicalArgs, Keyspace } from '../src/backend/index.js';
import { ArgumentError } from '../src/index.js';
import { encodeKeyPart, encodeName, MAX_ARGUMENT_DEPTH, MAX_KEY_PART_LENGTH } from '../src/keys.js';
import { percentDecode } from './helpers/percent.js';

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

/** The hash tag Redis Cluster hashes for `key`: the text of its first `{…}`, if non-empty; else the whole key. */
function redisHashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}


// eslint-disable-next-line no-control-regex
const CONTROL_OR_BRACE = /[\x00-\x1f\x7f{}]/;

describe('Keyspace: hostile names, tags and custom keys', function () {
  const keys = new Keyspace('cache');
  const hostile = [
    'a:b',
    'a',
    'b',
    '{x}',
    '}{',
    'a b',
    'a\nb',
    'a\r\nb',
    'a\u0000b',
    '%',
    '%25',
    'a%3Ab',
    'é',
    '\ud800',
    '\ufffd',
    '😀',
    'x:entry:y',
    'x:tag:y',
    '../../etc',
    '*?[]\\',
    'x'.repeat(10_000),
    `${'x'.repeat(9_999)}y`,
    'x'.repeat(200),
    'x'.repeat(201),
    '{'.repeat(10_000),
  ];

  it('keeps the keys of ordinary names, tags and custom keys exactly as they were', function () {
    expect(keys.entryKey('foo', 'c4be94f1f3e36935')).to.equal('cache:entry:foo:c4be94f1f3e36935');
    expect(keys.lockKey('foo', 'c4be94f1f3e36935')).to.equal('cache:lock:foo:c4be94f1f3e36935');
    expect(keys.entryKey('Example.bar', 'd6e44e94cf24b0be')).to.equal('cache:entry:Example.bar:d6e44e94cf24b0be');
    expect(keys.entryKey('Example.baz', 'avg:2:10')).to.equal('cache:entry:Example.baz:avg:2:10');
    expect(keys.entryKey('avg', 'avg:2:10')).to.equal('cache:entry:avg:avg:2:10');
    expect(keys.tagKey('math')).to.equal('cache:tag:math');
    expect(keys.tagKey('unknown-tag')).to.equal('cache:tag:unknown-tag');
    for (const name of ['my_fn', 'Class.#private', 'Symbol(x)', '@scope/pkg.fn', '$.get', '.method', 'v1.2-beta']) {
      expect(encodeName(name), name).to.equal(name);
    }
    for (const part of ['avg:2:10', 'user 42', 'café', 'a/b?c=d&e', '😀', '[1,2]']) expect(encodeKeyPart(part), part).to.equal(part);
  });

  it('escapes what is not plain: percent-encoded UTF-8, then a hash past 200 characters', function () {
    expect(encodeName('a:b')).to.equal('a%3Ab');
    expect(encodeName('{x}')).to.equal('%7Bx%7D');
    expect(encodeName('a b\n')).to.equal('a%20b%0A');
    expect(encodeName('%')).to.equal('%25');
    expect(encodeName('é')).to.equal('%C3%A9');
    expect(encodeName('😀')).to.equal('%F0%9F%98%80');
    expect(encodeName('\ud800')).to.equal('%ED%A0%80'); // WTF-8: not U+FFFD's %EF%BF%BD
    expect(encodeKeyPart('a{b}%')).to.equal('a%7Bb%7D%25');
    expect(encodeKeyPart('a\nb')).to.equal('a%0Ab');
    const long = encodeName('x'.repeat(10_000));
    expect(long).to.match(/^x{64}%%[0-9a-f]{32}$/);
    expect(encodeName('x'.repeat(200))).to.equal('x'.repeat(200));
    expect(encodeKeyPart('k'.repeat(10_000))).to.match(/^k{64}%%[0-9a-f]{32}$/);
    // A hashed head never ends inside a %XX escape.
    expect(encodeName('é'.repeat(100))).to.match(/^(%[0-9A-F]{2})+%%[0-9a-f]{32}$/);
  });

  it('gives different names and tags different keys, and encodings that decode back', function () {
    const entries = new Set(hostile.map((name) => keys.entryKey(name, 'c4be94f1f3e36935')));
    const tags = new Set(hostile.map((tag) => keys.tagKey(tag)));
    expect(entries.size).to.equal(hostile.length);
    expect(tags.size).to.equal(hostile.length);
    for (const name of hostile) {
      const form = encodeName(name);
      expect(form, JSON.stringify(name.slice(0, 20))).to.match(/^[A-Za-z0-9._\-$#@/()%]+$/);
      expect(form.length).to.be.at.most(MAX_KEY_PART_LENGTH);
      if (!form.includes('%%') && Buffer.from(name, 'utf8').toString('utf8') === name) expect(percentDecode(form)).to.equal(name);
    }
  });

  it("a name with ':' never meets another name's custom key (no collision between name and key parts)", function () {
    const hash = argsHash([1]);
    // Unescaped, both would be cache:entry:a:b:<hash>.
    expect(keys.entryKey('a:b', hash)).not.to.equal(keys.entryKey('a', `b:${hash}`));
    expect(keys.entryKey('a:b', hash)).to.equal(`cache:entry:a%3Ab:${hash}`);
    expect(keys.entryKey('a', `b:${hash}`)).to.equal(`cache:entry:a:b:${hash}`);
    // A name that looks like an escape is escaped itself.
    expect(keys.entryKey('a%3Ab', hash)).not.to.equal(keys.entryKey('a:b', hash));
    expect(keys.tagKey('x:y')).not.to.equal(keys.tagKey('x%3Ay'));
    // A custom key that looks like a hashed part cannot meet one.
    const hashedPart = encodeKeyPart('k'.repeat(300));
    expect(encodeKeyPart(hashedPart)).not.to.equal(hashedPart);
  });

  it('keeps every key of a hostile name under its kind, with its lock beside it (no key injection)', function () {
    for (const name of hostile) {
      for (const part of ['c4be94f1f3e36935', 'x:lock:y', '{slot}', '\n', '%']) {
        const entry = keys.entryKey(name, part);
        const lock = keys.lockKey(name, part);
        expect(entry.startsWith('cache:entry:')).to.equal(true);
        expect(keys.kindOf(entry)).to.equal('entry');
        expect(keys.kindOf(lock)).to.equal('lock');
        expect(keys.lockKeyOf(entry)).to.equal(lock);
        // The name ends at the first ':' after the kind: the name part can be read back.
        expect(entry.slice('cache:entry:'.length).split(':')[0]).to.equal(encodeName(name));
        expect(entry).not.to.match(CONTROL_OR_BRACE);
      }
      expect(keys.kindOf(keys.tagKey(name))).to.equal('tag');
      expect(keys.tagKey(name)).not.to.match(CONTROL_OR_BRACE);
      expect(keys.tagKey(name).slice('cache:tag:'.length)).not.to.include(':');
    }
  });

  it('keeps Redis Cluster hash tags to the prefix: braces in names, tags or keys never pick a slot', function () {
    const braced = new Keyspace('{app}');
    for (const name of hostile) {
      for (const part of ['c4be94f1f3e36935', '{other}', '}{']) {
        expect(redisHashTag(braced.entryKey(name, part))).to.equal('app');
        expect(redisHashTag(braced.lockKey(name, part))).to.equal('app');
        // Without braces in the prefix, the key has none: the whole key is hashed, as today.
        expect(keys.entryKey(name, part)).not.to.match(/[{}]/);
      }
      expect(redisHashTag(braced.tagKey(name))).to.equal('app');
      expect(keys.tagKey(name)).not.to.match(/[{}]/);
    }
  });
});

describe('argument hashing: hostile arguments', function () {
  it('rejects arguments nested 10,000 levels deep with an ArgumentError, not a stack overflow', function () {
    for (const make of [(v: unknown) => [v], (v: unknown) => ({ a: v }), (v: unknown) => new Map([[1, v]]), (v: unknown) => new Set([v])]) {
      let deep: unknown = 1;
      for (let i = 0; i < 10_000; i++) deep = make(deep);
      const started = performance.now();
      expect(() => argsHash([deep])).to.throw(ArgumentError, /nested deeper than 1000 levels/);
      expect(performance.now() - started).to.be.below(1000);
    }
    let ok: unknown = 1;
    for (let i = 0; i < MAX_ARGUMENT_DEPTH - 1; i++) ok = [ok];
    expect(argsHash([ok])).to.match(/^[0-9a-f]{16}$/);
    const error = (() => {
      let deep: unknown = 1;
      for (let i = 0; i < 10_000; i++) deep = [deep];
      try {
        argsHash([deep]);
      } catch (e) {
        return e as ArgumentError;
      }
      return undefined;
    })();
    expect(error?.path.length).to.be.below(300); // the path is shortened, not 30 KB long
  });

  it('hashes a 5 MB string and a 100,000-element array in bounded time', function () {
    const big = 'x'.repeat(5 * 1024 * 1024);
    let started = performance.now();
    expect(argsHash([big])).to.not.equal(argsHash([`${big}y`]));
    expect(performance.now() - started).to.be.below(2000);
    const array = Array.from({ length: 100_000 }, (_, i) => i);
    started = performance.now();
    const hash = argsHash([array]);
    expect(performance.now() - started).to.be.below(1000);
    array[99_999] = -1;
    expect(argsHash([array])).not.to.equal(hash);
  });

  it('tells apart values held in internal slots: boxed primitives, URLs, shared buffers', function () {
    const distinct: Array<[unknown, unknown]> = [
      [new Number(1), new Number(2)],
      [new Boolean(true), new Boolean(false)],
      [new String('a'), new String('b')],
      [new Number(1), 1],
      [Object(1n), 1n],
      [new URL('https://a.example/'), new URL('https://b.example/')],
      [new URLSearchParams('a=1'), new URLSearchParams('a=2')],
      [new URL('https://a.example/'), 'https://a.example/'],
    ];
    for (const [a, b] of distinct) expect(argsHash([a]), String(a)).not.to.equal(argsHash([b]));
    const shared = (byte: number): SharedArrayBuffer => {
      const buffer = new SharedArrayBuffer(1);
      new Uint8Array(buffer)[0] = byte;
      return buffer;
    };
    expect(argsHash([shared(1)])).not.to.equal(argsHash([shared(2)]));
    expect(argsHash([new URL('https://a.example/x')])).to.equal(argsHash([new URL('https://a.example/x')]));
  });

  it('cannot be forged by a class whose name holds canonical syntax', function () {
    class Foo {
      a = 1;
    }
    const Forged = { [`Foo{"a":1},`]: class {} }[`Foo{"a":1},`];
    if (Forged === undefined) throw new Error('unreachable');
    expect(Forged.name).to.equal('Foo{"a":1},');
    // Unquoted, both would encode as [Foo{"a":1},{}].
    expect(argsHash([[new Forged()]])).not.to.equal(argsHash([[new Foo(), {}]]));
    // Plain identifiers stay unquoted, so ordinary class instances keep their hashes.
    expect(canonicalArgs([new Foo()])).to.equal('Foo{"a":1}');
  });

  it('does not throw a TypeError for a typed array whose constructor property was removed', function () {
    const bytes = new Uint8Array([1, 2]);
    Object.defineProperty(bytes, 'constructor', { value: undefined });
    expect(argsHash([bytes])).to.equal(argsHash([new Uint8Array([1, 2])]));
  });

  it('keeps __proto__ and constructor keys in arguments as data, and pollutes nothing', function () {
    const a = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as object;
    const b = JSON.parse('{"__proto__": {"polluted": false}, "constructor": {"prototype": {"polluted": true}}}') as object;
    expect(argsHash([a])).not.to.equal(argsHash([b]));
    expect(argsHash([a])).not.to.equal(argsHash([{}]));
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });
});
