/**
 * Property-based tests (fast-check): the argument hash (equal arguments ⇔ equal key, per the
 * canonical rules of src/keys.ts), the escaping of names, tags and custom keys (injective, safe
 * characters only), and the entry codec (encode → decode gives back an equal value).
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { EntryCodec, type EntryRecord } from '../src/codec.js';
import { argsHash, canonicalArgs, encodeKeyPart, encodeName, Keyspace, MAX_KEY_PART_LENGTH } from '../src/keys.js';
import { percentDecode } from './helpers/percent.js';

const RUNS = 300;

/** Builds an object from entries with defineProperty, so that a `__proto__` key is an own data property. */
function objectOf(entries: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return obj;
}

const KEY_NAMES = ['a', 'b', 'c', '__proto__', 'constructor', 'prototype', '0', '1', 'x y', ''];

/** Map keys and Set items: primitives, so that the reference equality below can match them one to one. */
function primitives(small: boolean): fc.Arbitrary<unknown> {
  return small
    ? fc.constantFrom(0, -0, 1, NaN, Infinity, 'a', '1', '', true, null, undefined, 1n, 0n)
    : fc.oneof(
        fc.integer(),
        fc.double(), // includes -0, NaN and the infinities
        fc.string(),
        fc.boolean(),
        fc.constantFrom(null, undefined),
        fc.bigInt(),
      );
}

/**
 * Argument values: primitives, Dates, Buffers, typed arrays, Maps, Sets, arrays (sparse too)
 * and plain objects with hostile keys, nested. `small` draws from small domains, so that two
 * independent draws are often equal.
 */
function values(small: boolean): fc.Arbitrary<unknown> {
  const bytes = small ? fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 1 }).map((b) => new Uint8Array(b)) : fc.uint8Array({ maxLength: 16 });
  const leaf = fc.oneof(
    { arbitrary: primitives(small), weight: small ? 12 : 2 },
    (small ? fc.integer({ min: 0, max: 1 }) : fc.integer({ min: -8.64e15, max: 8.64e15 })).map((t) => new Date(t)),
    fc.constant(new Date(NaN)),
    bytes.map((b) => Buffer.from(b)),
    bytes,
    bytes.map((b) => new Int8Array(b.buffer)),
    small ? bytes.map((b) => new Uint16Array([...b])) : fc.float64Array({ maxLength: 8 }),
    small ? bytes.map((b) => new BigInt64Array([...b].map(BigInt))) : fc.bigInt64Array({ maxLength: 4 }),
  );
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      { arbitrary: leaf, weight: small ? 10 : 1 },
      fc.array(tie('value'), { maxLength: small ? 2 : 5 }),
      fc.sparseArray(tie('value'), { maxLength: small ? 3 : 6 }),
      fc
        .uniqueArray(fc.tuple(fc.constantFrom(...KEY_NAMES), tie('value')), { selector: ([k]) => k, maxLength: small ? 2 : 5 })
        .map(objectOf),
      fc
        .array(fc.tuple(primitives(small), tie('value')), { maxLength: small ? 2 : 4 })
        .map((pairs) => new Map(pairs)),
      fc.array(primitives(small), { maxLength: small ? 3 : 5 }).map((items) => new Set(items)),
    ),
  }));
  return value;
}

function typedKind(value: ArrayBufferView): string {
  return Buffer.isBuffer(value) ? 'Buffer' : Object.prototype.toString.call(value);
}

function bytesOf(value: ArrayBufferView): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * Equality per the canonical rules of keys.ts, written independently of them: numbers by
 * `Object.is` (so 0 ≠ -0 and NaN = NaN), types never mix, Dates by time, byte views by kind and
 * bytes, arrays by index (a hole equals `undefined`), plain objects by their own enumerable
 * keys in any order, Maps and Sets by content in any order.
 */
function canonEqual(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a !== 'object' || a === null || b === null) return Object.is(a, b);
  const y = b as object;
  if (Array.isArray(a) || Array.isArray(y)) {
    if (!Array.isArray(a) || !Array.isArray(y) || a.length !== y.length) return false;
    for (let i = 0; i < a.length; i++) if (!canonEqual(a[i], y[i])) return false;
    return true;
  }
  if (a instanceof Date || y instanceof Date) {
    return a instanceof Date && y instanceof Date && Object.is(a.getTime(), y.getTime());
  }
  if (ArrayBuffer.isView(a) || ArrayBuffer.isView(y)) {
    return ArrayBuffer.isView(a) && ArrayBuffer.isView(y) && typedKind(a) === typedKind(y) && bytesOf(a).equals(bytesOf(y));
  }
  if (a instanceof Map || y instanceof Map) {
    if (!(a instanceof Map) || !(y instanceof Map) || a.size !== y.size) return false;
    const others = [...y.keys()];
    for (const [k, v] of a) {
      const at = others.findIndex((other) => canonEqual(k, other));
      if (at < 0 || !canonEqual(v, y.get(others[at]))) return false;
    }
    return true;
  }
  if (a instanceof Set || y instanceof Set) {
    if (!(a instanceof Set) || !(y instanceof Set) || a.size !== y.size) return false;
    for (const item of a) if (![...y].some((other) => canonEqual(item, other))) return false;
    return true;
  }
  const ka = Object.keys(a).sort();
  const kb = Object.keys(y).sort();
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => canonEqual((a as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]));
}

/** A deep copy with object keys, Map entries and Set items in another order. */
function shuffledClone(value: unknown, random: () => number): unknown {
  const shuffle = <T>(items: T[]): T[] => {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [items[i], items[j]] = [items[j] as T, items[i] as T];
    }
    return items;
  };
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) if (i in value) copy[i] = shuffledClone(value[i], random);
    return copy;
  }
  if (value instanceof Date) return new Date(value.getTime());
  if (Buffer.isBuffer(value)) return Buffer.from(value);
  if (ArrayBuffer.isView(value)) return (value as Uint8Array).slice();
  if (value instanceof Map) return new Map(shuffle([...value].map(([k, v]) => [k, shuffledClone(v, random)] as const)));
  if (value instanceof Set) return new Set(shuffle([...value]));
  return objectOf(shuffle(Object.entries(value).map(([k, v]) => [k, shuffledClone(v, random)] as const)));
}

describe('Properties: the argument hash', function () {
  this.timeout(60_000);

  it('gives equal keys to equal arguments built in another key, entry and item order', function () {
    fc.assert(
      fc.property(fc.array(values(false), { maxLength: 4 }), fc.integer(), (args, seed) => {
        let state = seed >>> 0 || 1;
        const random = (): number => ((state = (state * 1_103_515_245 + 12_345) >>> 0) % 10_000) / 10_000;
        const clone = shuffledClone(args, random) as unknown[];
        expect(canonEqual(args, clone)).to.equal(true);
        expect(argsHash(clone)).to.equal(argsHash(args));
      }),
      { numRuns: RUNS },
    );
  });

  it('gives equal keys exactly to equal arguments (small domains, so equal draws are common)', function () {
    let equalPairs = 0;
    fc.assert(
      fc.property(fc.array(values(true), { maxLength: 2 }), fc.array(values(true), { maxLength: 2 }), (a, b) => {
        const equal = canonEqual(a, b);
        if (equal) equalPairs++;
        expect(canonicalArgs(a) === canonicalArgs(b), `${canonicalArgs(a)} vs ${canonicalArgs(b)}`).to.equal(equal);
        expect(argsHash(a) === argsHash(b)).to.equal(equal);
      }),
      { numRuns: 5000 },
    );
    expect(equalPairs).to.be.above(200); // the property was exercised on both sides
  });

  it('tells apart every pair of near-miss values, bare and nested (exhaustive)', function () {
    const atoms: unknown[] = [
      0, -0, 1, NaN, Infinity, -Infinity, 'a', '1', '', 'undefined', 'null', '0n', true, false, 'true', null, undefined,
      1n, 0n, new Date(0), new Date(NaN), new Date(1), Buffer.from([0]), new Uint8Array([0]), new Int8Array([0]),
      new Uint16Array([0]), Buffer.alloc(0), new Uint8Array(0), [], [undefined], [[]], {}, objectOf([['a', undefined]]),
      objectOf([['__proto__', 1]]), objectOf([['a', 1]]), new Map(), new Map([['a', 1]]), new Set(), new Set(['a']),
      new Set([1]), ['a'], [1],
    ];
    const wrappers: Array<(v: unknown) => unknown[]> = [
      (v) => [v],
      (v) => [[v]],
      (v) => [v, 1],
      (v) => [objectOf([['k', v]])],
      (v) => [new Map([['k', v]])],
      (v) => [new Set([v])],
      (v) => [new Map([[v, 'k']])],
    ];
    for (const wrap of wrappers) {
      for (const a of atoms) {
        for (const b of atoms) {
          const x = wrap(a);
          const y = wrap(b);
          expect(canonicalArgs(x) === canonicalArgs(y), `${canonicalArgs(x)} / ${canonicalArgs(y)}`).to.equal(canonEqual(x, y));
        }
      }
    }
  });

  it('tells apart different arguments (full domains)', function () {
    fc.assert(
      fc.property(fc.array(values(false), { maxLength: 3 }), fc.array(values(false), { maxLength: 3 }), (a, b) => {
        expect(argsHash(a) === argsHash(b)).to.equal(canonEqual(a, b));
      }),
      { numRuns: RUNS },
    );
  });

  it('agrees between the fast path (strings and finite numbers) and the general path', function () {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.double(), fc.integer())), (args) => {
        // A trailing object sends the same arguments through the general path.
        expect(canonicalArgs([...args, {}])).to.equal(`${canonicalArgs(args)}${args.length ? ',' : ''}{}`);
      }),
      { numRuns: RUNS },
    );
  });
});


describe('Properties: names, tags and custom keys in keys', function () {
  this.timeout(60_000);
  // UTF-16 code units, lone surrogates included, from an alphabet where escapes and plain text meet.
  const tricky = fc.string({
    unit: fc.oneof(
      fc.constantFrom(':', '%', '3', 'A', 'a', 'b', '{', '}', ' ', '\n', 'é', '\ud800', '\ufffd', '%', '2', '5'),
      fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
    ),
    maxLength: 12,
  });
  const long = fc.tuple(fc.integer({ min: 150, max: 400 }), tricky).map(([n, tail]) => 'x'.repeat(n) + tail);
  const text = fc.oneof(tricky, long);
  const isWellFormed = (s: string): boolean => Buffer.from(s, 'utf8').toString('utf8') === s;

  it('encodes names and tags injectively, into safe characters, at most 200 long', function () {
    fc.assert(
      fc.property(text, text, (a, b) => {
        const ea = encodeName(a);
        expect(ea === encodeName(b)).to.equal(a === b);
        expect(encodeKeyPart(a) === encodeKeyPart(b)).to.equal(a === b);
        expect(ea).to.match(/^[A-Za-z0-9._\-$#@/()%]*$/);
        expect(ea.length).to.be.at.most(MAX_KEY_PART_LENGTH);
        expect(encodeKeyPart(a)).not.to.match(/[{}\x00-\x1f\x7f]/); // eslint-disable-line no-control-regex
        if (!ea.includes('%%') && isWellFormed(a)) expect(percentDecode(ea)).to.equal(a);
      }),
      { numRuns: 2000 },
    );
  });

  it('never gives two (name, key) pairs one entry key, and keeps each lock beside its entry', function () {
    const keys = new Keyspace('p');
    fc.assert(
      fc.property(text, text, text, text, (n1, k1, n2, k2) => {
        const same = keys.entryKey(n1, k1) === keys.entryKey(n2, k2);
        expect(same).to.equal(n1 === n2 && k1 === k2);
        expect(keys.lockKeyOf(keys.entryKey(n1, k1))).to.equal(keys.lockKey(n1, k1));
        expect(keys.kindOf(keys.entryKey(n1, k1))).to.equal('entry');
        expect(keys.kindOf(keys.tagKey(n1))).to.equal('tag');
        expect(keys.tagKey(n1) === keys.tagKey(n2)).to.equal(n1 === n2);
      }),
      { numRuns: 2000 },
    );
    // The pairs that would meet without escaping.
    fc.assert(
      fc.property(tricky, tricky, tricky, (a, b, c) => {
        if (b === '') return;
        expect(keys.entryKey(`${a}:${b}`, c)).not.to.equal(keys.entryKey(a, `${b}:${c}`));
      }),
      { numRuns: RUNS },
    );
  });
});

/** Strict structural equality for codec round trips: prototypes, own keys (holes), order of Maps and Sets. */
function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a !== 'object' || a === null || b === null) return Object.is(a, b);
  const y = b as object;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(y)) return false;
  if (a instanceof Date) return Object.is(a.getTime(), (y as Date).getTime());
  if (ArrayBuffer.isView(a)) return typedKind(a) === typedKind(y as ArrayBufferView) && bytesOf(a).equals(bytesOf(y as ArrayBufferView));
  if (a instanceof Map) {
    const ea = [...a];
    const eb = [...(y as Map<unknown, unknown>)];
    return ea.length === eb.length && ea.every(([k, v], i) => sameValue(k, eb[i]?.[0]) && sameValue(v, eb[i]?.[1]));
  }
  if (a instanceof Set) {
    const ia = [...a];
    const ib = [...(y as Set<unknown>)];
    return ia.length === ib.length && ia.every((v, i) => sameValue(v, ib[i]));
  }
  if (Array.isArray(a) && a.length !== (y as unknown[]).length) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(y);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => sameValue((a as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]));
}

describe('Properties: the entry codec', function () {
  this.timeout(60_000);
  const record = fc.record({
    tagHash: fc.stringMatching(/^[0-9a-f]{16}$/),
    freshUntil: fc.integer({ min: 0, max: 9_999_999_999_999 }),
    value: values(false),
  });
  const codecs: Array<[string, EntryCodec]> = [
    ['the default codec', new EntryCodec()],
    ['compressing every payload', new EntryCodec({ compressThreshold: 0 })],
    ['without compression', new EntryCodec({ compressor: false })],
  ];

  for (const [title, codec] of codecs) {
    it(`round-trips values, tag hash and fresh-until through ${title}`, function () {
      fc.assert(
        fc.property(record, (rec: EntryRecord) => {
          const back = codec.decode(codec.encode(rec));
          expect(back.tagHash).to.equal(rec.tagHash);
          expect(back.freshUntil).to.equal(rec.freshUntil);
          expect(sameValue(back.value, rec.value), canonicalArgs([rec.value]).slice(0, 200)).to.equal(true);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('round-trips the values the README promises, with __proto__ keys kept as data', function () {
    const promised: unknown[] = [-0, NaN, Infinity, undefined, [1, , 3], 2n ** 70n, new Date(0), Buffer.from('x'), new Float32Array([1.5])]; // eslint-disable-line no-sparse-arrays
    const codec = new EntryCodec();
    for (const value of promised) {
      expect(sameValue(codec.decode(codec.encode({ tagHash: '0123456789abcdef', freshUntil: 0, value })).value, value)).to.equal(true);
    }
    fc.assert(
      fc.property(fc.constantFrom('__proto__', 'constructor', 'prototype'), values(true), (key, inner) => {
        const value = objectOf([[key, inner], ['polluted', 'no']]);
        const back = codec.decode(codec.encode({ tagHash: '0123456789abcdef', freshUntil: 0, value })).value;
        expect(sameValue(back, value)).to.equal(true);
        expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
      }),
      { numRuns: RUNS },
    );
  });

  it('decodes arbitrary bytes to a record or an Error, never anything else', function () {
    const codec = new EntryCodec();
    const header = fc
      .tuple(fc.constantFrom('h1', 'h0', 'h2', 'x1'), fc.constantFrom('j', 'v', 'c', '?'), fc.constantFrom('0', 'z', '?'))
      .map(([a, b, c]) => Buffer.from(`${a}${b}${c}da39a3ee5e6b4b0d1700000000000`, 'latin1'));
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b)),
      fc.tuple(header, fc.uint8Array({ maxLength: 80 })).map(([h, b]) => Buffer.concat([h, b])),
    );
    fc.assert(
      fc.property(bytes, (input) => {
        try {
          const out = codec.decode(input);
          expect(out.tagHash).to.have.length(16);
        } catch (error) {
          expect(error).to.be.instanceOf(Error);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
