import { expect } from 'chai';
import { createHash } from 'node:crypto';
import * as v8 from 'node:v8';
import { OptionError } from '../src/index.js';
import {
  EntryCodec,
  findLossyPart,
  FORMAT_VERSION,
  FORMAT_VERSION_1,
  FRESH_UNTIL_OFFSET,
  computeMsOf,
  COMPUTE_MS_OFFSET,
  HEADER_LENGTH,
  HEADER_V2_LENGTH,
  isPlainJson,
  MAX_COMPUTE_MS,
  STORED_AT_OFFSET,
  storedAtOf,
  tagHash,
  UNTAGGED_HASH,
} from '../src/backend/index.js';

describe('EntryCodec', function () {
  const codec = new EntryCodec();
  const roundTrip = (value: unknown, c = codec): unknown =>
    c.decode(c.encode({ tagHash: UNTAGGED_HASH, freshUntil: 1_700_000_000_000, value })).value;

  const values: Array<[string, unknown]> = [
    ['a number', 42],
    ['a string', 'héllo ✓'],
    ['null', null],
    ['undefined', undefined],
    ['a plain object', { a: 1, b: [true, null, 'x'], c: { d: 2.5 } }],
    ['an object with an undefined property', { a: undefined, b: 1 }],
    ['a Date', new Date(123456)],
    ['a Map', new Map<unknown, unknown>([[1, 'one'], ['two', { n: 2 }]])],
    ['a Set', new Set([1, 'a', 2n])],
    ['a BigInt', 2n ** 100n],
    ['a Buffer', Buffer.from([0, 1, 255])],
    ['a Uint16Array', new Uint16Array([1, 65535])],
    ['a Float64Array', new Float64Array([1.5, -0])],
    ['-0', -0],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a sparse array', [1, , 3]], // eslint-disable-line no-sparse-arrays
    ['nested extended types', { when: [new Date(0)], ids: new Map([['x', new Set([1n])]]) }],
  ];
  for (const [title, value] of values) {
    it(`round-trips ${title}`, function () {
      const back = roundTrip(value);
      if (typeof value === 'number' && Number.isNaN(value)) expect(Number.isNaN(back)).to.equal(true);
      else if (Object.is(value, -0)) expect(Object.is(back, -0)).to.equal(true);
      else expect(back).to.deep.equal(value);
      if (Buffer.isBuffer(value)) expect(Buffer.isBuffer(back)).to.equal(true);
    });
  }

  it('keeps __proto__ keys as data and pollutes nothing', function () {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const back = roundTrip(value) as Record<string, unknown>;
    expect(Object.keys(back)).to.deep.equal(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
    expect(Object.getPrototypeOf(back)).to.equal(Object.prototype);
  });

  it('writes the 53-byte v2 header: magic, version, serializer, compression, tag hash, fresh-until, stored-at, compute time', function () {
    const record = { tagHash: '0123456789abcdef', freshUntil: 1_700_000_000_123, value: [1], storedAt: 1_699_999_999_000, computeMs: 42 };
    const bytes = Buffer.from(codec.encode(record));
    expect(HEADER_LENGTH).to.equal(33);
    expect(HEADER_V2_LENGTH).to.equal(53);
    expect([STORED_AT_OFFSET, COMPUTE_MS_OFFSET]).to.deep.equal([33, 46]);
    expect(bytes.toString('latin1', 0, HEADER_V2_LENGTH)).to.equal('h2j00123456789abcdef170000000012316999999990000000042');
    expect(bytes.toString('utf8', HEADER_V2_LENGTH)).to.equal('[1]');
    expect(codec.decode(bytes)).to.deep.equal(record);
    expect(storedAtOf(bytes)).to.equal(1_699_999_999_000);
    expect(computeMsOf(bytes)).to.equal(42);
    expect(Buffer.from(codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value: new Date(0) }))[2]).to.equal(
      'v'.charCodeAt(0),
    );
  });

  it('writes unknown stored-at and compute times as spaces (undefined when read) and caps the compute time', function () {
    const bytes = Buffer.from(codec.encode({ tagHash: '0123456789abcdef', freshUntil: 1_700_000_000_123, value: [1] }));
    expect(bytes.toString('latin1', STORED_AT_OFFSET, HEADER_V2_LENGTH)).to.equal(' '.repeat(20));
    expect(codec.decode(bytes)).to.deep.equal({ tagHash: '0123456789abcdef', freshUntil: 1_700_000_000_123, value: [1], storedAt: undefined, computeMs: undefined });
    expect(computeMsOf(bytes)).to.equal(undefined);
    const slow = Buffer.from(codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value: 1, storedAt: 5, computeMs: 1e12 }));
    expect(codec.decode(slow)).to.include({ storedAt: 5, computeMs: MAX_COMPUTE_MS });
    const bad = Buffer.from(slow);
    bad.write('x', COMPUTE_MS_OFFSET + 3, 'latin1');
    expect(() => codec.decode(bad)).to.throw(Error, /^bad compute time field$/);
  });

  it('still reads v1 entries (the 33-byte header, written before v2): no stored-at, no compute time', function () {
    const v1 = Buffer.from('h1j00123456789abcdef1700000000123[1]', 'latin1');
    expect(codec.decode(v1)).to.deep.equal({ tagHash: '0123456789abcdef', freshUntil: 1_700_000_000_123, value: [1], storedAt: undefined, computeMs: undefined });
    expect(computeMsOf(v1)).to.equal(undefined);
    expect(storedAtOf(v1)).to.equal(undefined);
    const compressed = new EntryCodec({ compressThreshold: 1 });
    const v2 = Buffer.from(compressed.encode({ tagHash: UNTAGGED_HASH, freshUntil: 7, value: 'x'.repeat(200), storedAt: 1, computeMs: 2 }));
    const asV1 = Buffer.concat([Buffer.from(`h${FORMAT_VERSION_1}`), v2.subarray(2, HEADER_LENGTH), v2.subarray(HEADER_V2_LENGTH)]);
    expect(compressed.decode(asV1)).to.deep.equal({ tagHash: UNTAGGED_HASH, freshUntil: 7, value: 'x'.repeat(200), storedAt: undefined, computeMs: undefined });
  });

  it('writes FORMAT_VERSION as the second header byte and reads no other version than it and v1', function () {
    const bytes = Buffer.from(codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value: 1 }));
    expect(FORMAT_VERSION).to.have.length(1);
    expect(FORMAT_VERSION).to.equal('2');
    expect(bytes.toString('latin1', 0, 2)).to.equal(`h${FORMAT_VERSION}`);
    const other = String.fromCharCode(FORMAT_VERSION.charCodeAt(0) + 1);
    bytes.write(other, 1, 'latin1');
    expect(() => codec.decode(bytes)).to.throw(Error, `unsupported format version '${other}'`);
  });

  it('compresses payloads above the threshold, only when smaller', function () {
    const big = 'abc'.repeat(2000);
    const compressed = codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value: big });
    expect(String.fromCharCode(compressed[3] ?? 0)).to.equal('z');
    expect(compressed.length).to.be.below(big.length / 10);
    expect(roundTrip(big)).to.equal(big);
    const random = createHash('sha512').update('x').digest('base64').repeat(1); // small: not compressed
    expect(String.fromCharCode(codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value: random })[3] ?? 0)).to.equal('0');
    const off = new EntryCodec({ compressor: false });
    expect(String.fromCharCode(off.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value: big })[3] ?? 0)).to.equal('0');
  });

  it('uses a custom serializer and compressor', function () {
    const calls: string[] = [];
    const custom = new EntryCodec({
      serializer: {
        serialize: (v) => (calls.push('ser'), Buffer.from(String(v))),
        deserialize: (b) => (calls.push('de'), `<${Buffer.from(b).toString()}>`),
      },
      compressor: {
        compress: (b) => (calls.push('c'), Buffer.from(b).subarray(0, 1)),
        decompress: (b) => (calls.push('d'), Buffer.concat([Buffer.from(b), Buffer.from('yz')])),
      },
      compressThreshold: 3,
    });
    expect(roundTrip('xyz', custom)).to.equal('<xyz>');
    expect(calls).to.deep.equal(['ser', 'c', 'd', 'de']);
  });

  it('rejects truncated, foreign, newer-format and mismatched bytes with a reason', function () {
    const good = Buffer.from(codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value: { a: 1 } }));
    // Each with the error class and the reason it gives (the core wraps them into a
    // CorruptEntryError whose message carries the reason).
    const cases: Array<[string, Buffer, new (...args: never[]) => Error, RegExp]> = [
      ['truncated', good.subarray(0, 10), Error, /^10 bytes is shorter than the header$/],
      ['foreign', Buffer.from('x'.repeat(40)), Error, /^not a hermes entry \(bad magic byte\)$/],
      ['v2 truncated', good.subarray(0, 40), Error, /^40 bytes is shorter than the version 2 header$/],
      ['newer format', Buffer.concat([Buffer.from('h3'), good.subarray(2)]), Error, /^unsupported format version '3'$/],
      ['bad JSON', Buffer.concat([good.subarray(0, HEADER_V2_LENGTH), Buffer.from('{"a":')]), SyntaxError, /JSON/],
      ['custom serializer', Buffer.concat([Buffer.from('h2c0'), good.subarray(4)]), Error, /^entry was written by a custom serializer that is not configured$/],
      ['not deflate', Buffer.concat([Buffer.from('h2jz'), good.subarray(4)]), Error, /^unexpected end of file$/],
      ['not UTF-8', Buffer.concat([good.subarray(0, HEADER_V2_LENGTH), Buffer.from([0xff, 0xfe])]), TypeError, /not valid for encoding utf-8/],
    ];
    for (const [title, bytes, ErrorClass, reason] of cases) expect(() => codec.decode(bytes), title).to.throw(ErrorClass, reason);
    // The fresh-until field is checked too.
    const badTime = Buffer.from(good);
    badTime.write('x', FRESH_UNTIL_OFFSET, 'latin1');
    expect(() => codec.decode(badTime)).to.throw(Error, /^bad fresh-until field$/);
  });

  it('throws when a value cannot be serialised', function () {
    expect(() => codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value: { f: () => 1 } })).to.throw(Error, /could not be cloned/);
    expect(() => codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value: Symbol('s') })).to.throw(Error, /Symbol\(s\) could not be cloned/);
    expect(() => codec.encode({ tagHash: 'short', freshUntil: 0, value: 1 })).to.throw(TypeError, /tag hash must be 16 hex digits, got 'short'/);
  });
});

describe('tagHash', function () {
  it('is the first 16 hex digits of the SHA-1 of the versions joined by commas', function () {
    expect(tagHash(['a', 'b'])).to.equal(createHash('sha1').update('a,b').digest('hex').slice(0, 16));
    expect(tagHash([])).to.equal(UNTAGGED_HASH);
    expect(UNTAGGED_HASH).to.equal(createHash('sha1').update('').digest('hex').slice(0, 16));
    expect(tagHash(['a', 'b'])).not.to.equal(tagHash(['b', 'a']));
  });
});

describe('isPlainJson', function () {
  it('accepts JSON values and refuses what JSON would change', function () {
    expect(isPlainJson({ a: [1, 'x', null, { b: true }] })).to.equal(true);
    for (const v of [undefined, -0, NaN, new Date(0), new Map(), 1n, [1, , 2], { a: undefined }, Object.create({ x: 1 })]) { // eslint-disable-line no-sparse-arrays
      expect(isPlainJson(v), String(v)).to.equal(false);
    }
  });
});

describe('findLossyPart', function () {
  class Money {
    constructor(readonly cents: number) {}
    format(): string {
      return `${this.cents / 100}`;
    }
  }
  class NotFound extends Error {}

  it('finds nothing in values the built-in serialiser restores as they were', function () {
    const restored: unknown[] = [
      1,
      'x',
      null,
      undefined,
      2n,
      { a: [1, { b: null }], c: Object.create(null) as object },
      [new Date(0), /x/g, new Map([[{ k: 1 }, new Set([1])]]), new Set([[1]])],
      { buf: Buffer.from('ab'), u8: new Uint8Array(2), f64: new Float64Array(1), view: new DataView(new ArrayBuffer(2)) },
      { error: new TypeError('t'), boxed: [new Number(1), new String('s'), new Boolean(false)] },
    ];
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    restored.push(cyclic);
    for (const value of restored) expect(findLossyPart(value), String(value)).to.equal(undefined);
  });

  it('names the class or the symbol and where it sits', function () {
    expect(findLossyPart(new Money(1))).to.deep.equal({ kind: 'class', what: 'Money', path: 'result' });
    expect(findLossyPart({ items: [{ price: 1 }, { price: new Money(5) }] })).to.deep.equal({
      kind: 'class',
      what: 'Money',
      path: 'result.items[1].price',
    });
    expect(findLossyPart({ 'odd key': new Map([['eur', new Money(5)]]) })).to.deep.equal({
      kind: 'class',
      what: 'Money',
      path: 'result["odd key"].get("eur")',
    });
    expect(findLossyPart({ why: new NotFound('gone') })).to.deep.equal({ kind: 'class', what: 'NotFound', path: 'result.why' });
    expect(findLossyPart({ a: { [Symbol('meta')]: 1, b: 2 } })).to.deep.equal({ kind: 'symbol', what: 'Symbol(meta)', path: 'result.a' });
    expect(findLossyPart([Object.create({ inherited: 1 }) as object])).to.deep.equal({ kind: 'class', what: 'Object', path: 'result[0]' });
  });

  it('points at what the serialiser indeed changes', function () {
    const codec = new EntryCodec();
    const value = { total: new Money(5), tagged: { [Symbol('s')]: 1, n: 2 } };
    const back = codec.decode(codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value })).value as typeof value;
    expect(back.total).not.to.be.instanceOf(Money);
    expect(Object.getOwnPropertySymbols(back.tagged)).to.have.length(0);
    expect(findLossyPart(value)?.path).to.equal('result.total');
  });
});

describe('EntryCodec classes', function () {
  class Money {
    constructor(readonly cents: number) {}
    format(): string {
      return `${this.cents / 100}`;
    }
  }
  class Point {
    x = 1;
    y = 2;
  }
  class Registry extends Map<string, Point> {}
  const encode = (codec: EntryCodec, value: unknown): Uint8Array => codec.encode({ tagHash: UNTAGGED_HASH, freshUntil: 0, value });

  it('revives instances of registered classes, keeping shared objects and cycles', function () {
    const codec = new EntryCodec({ classes: [Money, Point, Registry] });
    const money = new Money(150);
    const registry = new Registry([['origin', new Point()]]);
    const value: Record<string, unknown> = { money, again: [money], registry, when: new Date(5), plain: { a: 1 } };
    value['self'] = value;
    const bytes = encode(codec, value);
    expect(String.fromCharCode(bytes[2] ?? 0)).to.equal('r');
    const back = codec.decode(bytes).value as typeof value & { money: Money; again: Money[]; registry: Registry };
    expect(back.money).to.be.instanceOf(Money);
    expect(back.money.format()).to.equal('1.5');
    expect(back.again[0]).to.equal(back.money);
    expect(back.registry).to.be.instanceOf(Registry);
    expect(back.registry.get('origin')).to.be.instanceOf(Point);
    expect(back['self']).to.equal(back);
    expect(back['when']).to.deep.equal(new Date(5));
    expect(Object.getPrototypeOf(back['plain'])).to.equal(Object.prototype);
    expect(codec.lossyPart(value)).to.equal(undefined);
  });

  it('writes values without registered instances as before', function () {
    const codec = new EntryCodec({ classes: { Money } });
    expect(String.fromCharCode(encode(codec, { a: 1 })[2] ?? 0)).to.equal('j');
    expect(String.fromCharCode(encode(codec, new Date(0))[2] ?? 0)).to.equal('v');
  });

  it('revives only registered classes: an unknown name or a foreign table is an error', function () {
    const writer = new EntryCodec({ classes: { Money, Point } });
    const bytes = encode(writer, { p: new Point() });
    expect(() => new EntryCodec({ classes: [Money] }).decode(bytes)).to.throw(Error, /class 'Point', which is not in this cache's \{ classes \}/);
    expect(() => new EntryCodec().decode(bytes)).to.throw(Error, /class 'Point'/);
    const forged = Buffer.concat([Buffer.from(bytes.subarray(0, HEADER_V2_LENGTH)), v8.serialize([{ p: { x: 1 } }, [5, 'Point']])]);
    expect(() => writer.decode(forged)).to.throw(Error, /instance table does not match/);
    const notTable = Buffer.concat([Buffer.from(bytes.subarray(0, HEADER_V2_LENGTH)), v8.serialize({ p: 1 })]);
    expect(() => writer.decode(notTable)).to.throw(Error, /bad instance table/);
  });

  it('refuses classes it cannot register, with an OptionError naming classes', function () {
    const bad: unknown[] = [
      [Date],
      [Money, Money],
      { A: Money, B: Money },
      [() => 1],
      [42],
      'Money',
    ];
    for (const classes of bad) {
      expect(() => new EntryCodec({ classes } as never), JSON.stringify(classes))
        .to.throw(OptionError)
        .with.property('option', 'classes');
    }
    const serializer = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Uint8Array) => JSON.parse(Buffer.from(b).toString()) as unknown };
    expect(() => new EntryCodec({ classes: [Money], serializer })).to.throw(OptionError, /built-in serializer only/);
  });
});
