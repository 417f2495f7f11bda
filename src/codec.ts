/**
 * Entry encoding: a fixed-width ASCII header followed by the (possibly compressed) serialised
 * payload. The header is fixed-width so that a Redis Lua script can read the tag hash, the
 * fresh-until time and the computation time with `string.sub`, without decoding the payload.
 *
 * ```
 * offset  size  field
 * 0       1     'h'            magic
 * 1       1     '2'            format version ('1': the 33-byte header, fields up to fresh until)
 * 2       1     serialiser     'j' JSON, 'v' V8 structured clone, 'r' V8 structured clone of
 *                              [value, instance table] (registered classes), 'c' custom serializer
 * 3       1     compression    '0' none, 'z' the configured compressor
 * 4       16    tag hash       16 lowercase hex digits (see tagHash)
 * 20      13    fresh until    milliseconds since the epoch, 13 decimal digits
 * 33      13    stored at      v2 only: milliseconds since the epoch (the writer's clock), 13
 *                              decimal digits; 13 spaces when unknown
 * 46      7     compute ms     v2 only: how long the function took, milliseconds, 7 decimal
 *                              digits (capped at 9999999); 7 spaces when unknown
 * 33 / 53 ...   payload        (v1 / v2)
 * ```
 *
 * Every version shares the first 33 bytes ({@link HEADER_LENGTH}): readers that only need the
 * tag hash and the fresh-until time (the Redis scripts, the Memcached and in-process stores)
 * read both versions alike. {@link EntryCodec.encode} writes v2; {@link EntryCodec.decode}
 * reads v1 (stored-at and compute time `undefined`) and v2.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { types } from 'node:util';
import { deserialize as v8Deserialize, serialize as v8Serialize } from 'node:v8';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { OptionError } from './errors.js';

/**
 * Length of the header prefix every format version shares (magic, version, serialiser,
 * compression, tag hash, fresh-until): the whole header of a v1 entry, and the shortest bytes
 * that can be an entry.
 */
export const HEADER_LENGTH = 33;
/** Length of the v2 header: {@link HEADER_LENGTH} plus stored-at (13) and compute time (7). */
export const HEADER_V2_LENGTH = 53;
/**
 * The current entry format version, the header's second byte (one ASCII character): what
 * {@link EntryCodec.encode} writes. {@link EntryCodec.decode} also reads {@link FORMAT_VERSION_1}.
 */
export const FORMAT_VERSION = '2';
/** The first entry format version (a 33-byte header without stored-at and compute time), still decoded. */
export const FORMAT_VERSION_1 = '1';
/** Offset of the 16-hex-digit tag hash in the header. */
export const TAG_HASH_OFFSET = 4;
/** Offset of the 13-digit fresh-until time in the header. */
export const FRESH_UNTIL_OFFSET = 20;
/** Offset of the 13-digit stored-at time in a v2 header. */
export const STORED_AT_OFFSET = 33;
/** Offset of the 7-digit compute time in a v2 header. */
export const COMPUTE_MS_OFFSET = 46;
/** The largest compute time a v2 header holds, in milliseconds (longer ones are written as this). */
export const MAX_COMPUTE_MS = 9_999_999;

const MAGIC = 0x68; // 'h'
const VERSION_BYTE = FORMAT_VERSION.charCodeAt(0);
const VERSION_1_BYTE = FORMAT_VERSION_1.charCodeAt(0);
const SER_JSON = 0x6a; // 'j'
const SER_V8 = 0x76; // 'v'
const SER_CUSTOM = 0x63; // 'c'
const SER_REVIVE = 0x72; // 'r'
const COMP_NONE = 0x30; // '0'
const COMP_ZLIB = 0x7a; // 'z'

/** An entry as the core sees it: the cached value and the facts the header carries. */
export interface EntryRecord {
  /** The hash of the entry's tag versions when its value was computed ({@link tagHash}). */
  readonly tagHash: string;
  /** When the entry stops being fresh, in milliseconds since the epoch. */
  readonly freshUntil: number;
  /** The cached value; `undefined` and `null` are values like any other. */
  readonly value: unknown;
  /**
   * When the value was stored, in milliseconds since the epoch (the writer's clock): a hit's
   * age. `undefined` for an entry written without it.
   */
  readonly storedAt?: number | undefined;
  /**
   * How long the function took to compute the value, in milliseconds: early refresh weighs by
   * it. `undefined` for an entry written without it.
   */
  readonly computeMs?: number | undefined;
}

/**
 * Turns values into bytes and back. The default handles JSON values plus Date, Map, Set,
 * BigInt, undefined, Buffer and typed arrays.
 */
export interface Serializer {
  /** Encodes a value; throws if the value cannot be represented. */
  serialize(value: unknown): Uint8Array;
  /** Decodes what {@link Serializer.serialize} produced; throws on bytes it cannot read. */
  deserialize(bytes: Uint8Array): unknown;
}

/** A class that can be registered in {@link CodecOptions.classes}. */
export type RevivableClass = abstract new (...args: never[]) => object;

/** Compresses payloads above {@link CodecOptions.compressThreshold}. */
export interface Compressor {
  /** Compresses bytes. */
  compress(bytes: Uint8Array): Uint8Array;
  /** Restores what {@link Compressor.compress} produced; throws on bytes it cannot read. */
  decompress(bytes: Uint8Array): Uint8Array;
}

/** zlib's raw deflate at the default level: the default {@link Compressor}. */
export const zlibCompressor: Compressor = {
  compress: (bytes) => deflateRawSync(bytes),
  decompress: (bytes) => inflateRawSync(bytes),
};

/** Options of an {@link EntryCodec}; they are the `Hermes` options of the same names. */
export interface CodecOptions {
  /**
   * Serialiser of cached values. The default writes plain JSON values as JSON (fast to read)
   * and everything else (Date, Map, Set, BigInt, undefined, -0, NaN, Buffer, typed arrays,
   * cycles) with V8's structured serialiser.
   * @default the built-in serialiser
   */
  serializer?: Serializer | undefined;
  /**
   * Classes whose instances the built-in serialiser gives back as instances of the class, on
   * every backend: an array (each class is known by its `name`) or a record of names to classes
   * (names that survive minification). An instance of a registered class is written with the
   * class name and, when read, its own enumerable properties are restored and its prototype set
   * to the class' (the constructor is not called; `#private` fields are not kept). Only these
   * classes are ever revived: an entry naming a class that is not registered reads as a
   * {@link CorruptEntryError} (a miss). Subclasses of `Map`, `Set` and `Array` are revived
   * too; subclasses of `Error`, `Date` and other built-ins are not. Not used with a custom
   * `serializer`.
   * @default none: class instances come back as plain objects (a `LossyValueError` says so)
   */
  classes?: readonly RevivableClass[] | Readonly<Record<string, RevivableClass>> | undefined;
  /**
   * Compressor of payloads larger than `compressThreshold`; `false` disables compression.
   * @default zlib raw deflate
   */
  compressor?: Compressor | false | undefined;
  /**
   * Payloads of at least this many bytes are compressed (and kept compressed only if that
   * makes them smaller).
   * @default 1024
   */
  compressThreshold?: number | undefined;
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Whether `value` survives `JSON.stringify` / `JSON.parse` unchanged: strings, booleans, null,
 * finite numbers other than -0, dense arrays and plain objects of those, without cycles.
 */
export function isPlainJson(value: unknown, depth = 0): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object': {
      if (value === null) return true;
      if (depth > 64) return false; // deep (or cyclic): let the structured serialiser decide
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value) || !isPlainJson(value[i], depth + 1)) return false;
        }
        return true;
      }
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return false;
      if (Object.getOwnPropertySymbols(value).length > 0) return false;
      for (const key in value) {
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * A part of a value that the built-in serialiser does not give back as it was: an instance of a
 * class (its prototype and methods are lost, it comes back as a plain object) or a
 * symbol-keyed property (dropped). See {@link findLossyPart}.
 */
export interface LossyPart {
  /** `'class'`: an instance of a class; `'symbol'`: a symbol-keyed property. */
  readonly kind: 'class' | 'symbol';
  /** The class name, or the symbol's description (`Symbol(tag)`). */
  readonly what: string;
  /** Where it sits in the value, as a path such as `result.items[2].price`. */
  readonly path: string;
}

const TYPED_ARRAYS = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];

/** Prototypes of the objects the built-in serialiser restores with their type. */
const RESTORED_PROTOTYPES: ReadonlySet<object | null> = new Set<object | null>([
  null,
  Object.prototype,
  Array.prototype,
  Date.prototype,
  RegExp.prototype,
  Map.prototype,
  Set.prototype,
  ArrayBuffer.prototype,
  DataView.prototype,
  Buffer.prototype,
  Error.prototype,
  EvalError.prototype,
  RangeError.prototype,
  ReferenceError.prototype,
  SyntaxError.prototype,
  TypeError.prototype,
  URIError.prototype,
  Number.prototype,
  String.prototype,
  Boolean.prototype,
  BigInt.prototype,
  ...TYPED_ARRAYS.map((type) => type.prototype),
]);

/** Deeper than this, the search gives up (the serialiser itself fails near 5,000 levels). */
const LOSSY_MAX_DEPTH = 1000;

/**
 * The first part of `value` that the built-in serialiser would not give back as it was: an
 * instance of a class other than the types it restores (plain objects, arrays, Date, RegExp,
 * Map, Set, ArrayBuffer, DataView, Buffer, typed arrays, the built-in errors, boxed primitives)
 * or a symbol-keyed property; `undefined` when there is none. Walks the whole value: call it
 * off the hot path (writes only, once {@link isPlainJson} said no).
 */
export function findLossyPart(value: unknown, registered: ReadonlySet<object> = NONE): LossyPart | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const found = lossyIn(value, new Set(), 0, registered);
  if (found === undefined) return undefined;
  return { kind: found.kind, what: found.what, path: `result${found.steps.reverse().join('')}` };
}

const NONE: ReadonlySet<object> = new Set();

/** A lossy part found, its path's steps gathered innermost first on the way back up. */
interface Found {
  kind: 'class' | 'symbol';
  what: string;
  steps: string[];
}

function lossyIn(value: object, seen: Set<object>, depth: number, registered: ReadonlySet<object>): Found | undefined {
  if (seen.has(value) || depth > LOSSY_MAX_DEPTH) return undefined;
  seen.add(value);
  const proto = Object.getPrototypeOf(value) as object | null;
  const isRegistered = proto !== null && registered.has(proto);
  if (!isRegistered && !RESTORED_PROTOTYPES.has(proto)) return { kind: 'class', what: classNameOf(proto), steps: [] };
  const symbols = Object.getOwnPropertySymbols(value);
  if (symbols.length > 0) return { kind: 'symbol', what: String(symbols[0]), steps: [] };
  const next = depth + 1;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'object' && item !== null) {
        const found = lossyIn(item, seen, next, registered);
        if (found) return stepped(found, `[${i}]`);
      }
    }
    return undefined;
  }
  if (value instanceof Map) {
    for (const [key, item] of value as Map<unknown, unknown>) {
      const found =
        (typeof key === 'object' && key !== null ? lossyIn(key, seen, next, registered) : undefined) ??
        (typeof item === 'object' && item !== null ? lossyIn(item, seen, next, registered) : undefined);
      if (found) return stepped(found, `.get(${describeKey(key)})`);
    }
    return undefined;
  }
  if (value instanceof Set) {
    for (const item of value as Set<unknown>) {
      if (typeof item === 'object' && item !== null) {
        const found = lossyIn(item, seen, next, registered);
        if (found) return stepped(found, '.<set member>');
      }
    }
    return undefined;
  }
  if (!isRegistered && proto !== Object.prototype && proto !== null) return undefined; // Date, Buffer, Error...
  for (const key of Object.keys(value)) {
    const item = (value as Record<string, unknown>)[key];
    if (typeof item === 'object' && item !== null) {
      const found = lossyIn(item, seen, next, registered);
      if (found) return stepped(found, /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`);
    }
  }
  return undefined;
}

function stepped(found: Found, step: string): Found {
  found.steps.push(step);
  return found;
}

function classNameOf(proto: object | null): string {
  const ctor = (proto as { constructor?: unknown } | null)?.constructor;
  const name = typeof ctor === 'function' ? ctor.name : '';
  return name || '(anonymous class)';
}

function describeKey(key: unknown): string {
  if (typeof key === 'string') return JSON.stringify(key);
  if (typeof key === 'object' && key !== null) return '<object key>';
  return String(key);
}

/**
 * Whether an encoded entry's payload was written by the built-in structured (V8) serialiser,
 * the one that turns class instances into plain objects: what {@link findLossyPart} is worth
 * running for. `false` for JSON payloads (plain data) and custom serialisers.
 */
export function isStructuredEntry(bytes: Uint8Array): boolean {
  return bytes[2] === SER_V8 || bytes[2] === SER_REVIVE;
}

/**
 * Whether an encoded entry is UTF-8 text from end to end: an ASCII header and an uncompressed
 * JSON payload (`JSON.stringify` escapes lone surrogates, so its UTF-8 is always well formed).
 * Such bytes can travel as the string they decode to, whose UTF-8 encoding is the same bytes.
 */
export function isTextEntry(bytes: Uint8Array): boolean {
  return bytes[0] === MAGIC && bytes[2] === SER_JSON && bytes[3] === COMP_NONE;
}

/**
 * Visits, depth first and in a fixed order, the objects of a value that the structured
 * serialiser keeps with their identity and whose own properties it writes: ordinary objects,
 * arrays, maps and sets (not Date, RegExp, Buffer, typed arrays, errors, boxed primitives).
 * `visit` receives each once, with its rank in that order. Run on a value before it is
 * serialised and on what was deserialised, it visits the same objects in the same order: the
 * rank is how the instance table of a `'r'` entry names an object.
 */
function eachContainer(root: unknown, visit: (object: object, rank: number) => void): void {
  const seen = new Set<object>();
  const walk = (value: unknown, depth: number): void => {
    if (typeof value !== 'object' || value === null || seen.has(value) || depth > LOSSY_MAX_DEPTH) return;
    if (
      types.isDate(value) ||
      types.isRegExp(value) ||
      types.isNativeError(value) ||
      types.isBoxedPrimitive(value) ||
      types.isAnyArrayBuffer(value) ||
      ArrayBuffer.isView(value)
    ) {
      return;
    }
    seen.add(value);
    visit(value, seen.size - 1);
    const next = depth + 1;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) if (i in value) walk(value[i], next);
    } else if (types.isMap(value)) {
      for (const [key, item] of value) {
        walk(key, next);
        walk(item, next);
      }
    } else if (types.isSet(value)) {
      for (const item of value) walk(item, next);
    } else {
      for (const key of Object.keys(value)) walk((value as Record<string, unknown>)[key], next);
    }
  };
  walk(root, 0);
}

/**
 * Encodes and decodes entries: header, serialiser and compressor together. One per cache;
 * backends that store bytes receive its output.
 */
export class EntryCodec {
  readonly #serializer: Serializer | undefined;
  readonly #compressor: Compressor | undefined;
  readonly #compressThreshold: number;
  /** The registered classes by name, and their names by prototype. */
  readonly #classes = new Map<string, RevivableClass>();
  readonly #classNames = new Map<object, string>();
  /** The prototypes of the registered classes: what {@link EntryCodec.lossyPart} lets through. */
  readonly #registered = new Set<object>();

  /**
   * @param options - serialiser, compressor, compression threshold, classes
   * @throws {@link OptionError} for `classes` that are not classes, share a name, are built-in
   *   types or come with a custom `serializer`
   */
  constructor(options: CodecOptions = {}) {
    this.#serializer = options.serializer;
    const classes = options.classes;
    if (classes !== undefined) {
      if (typeof classes !== 'object' || classes === null) {
        throw new OptionError('classes', 'classes must be an array of classes or a record of names to classes');
      }
      if (options.serializer !== undefined) {
        throw new OptionError('classes', 'classes work with the built-in serializer only: with a custom { serializer }, revive classes there');
      }
      const entries: Array<[string, unknown]> = Array.isArray(classes)
        ? (classes as unknown[]).map((c) => [typeof c === 'function' ? c.name : '', c])
        : Object.entries(classes);
      for (const [name, c] of entries) {
        const proto = typeof c === 'function' ? (c.prototype as unknown) : undefined;
        if (typeof proto !== 'object' || proto === null) {
          throw new OptionError('classes', `Every entry of classes must be a class, got ${typeof c === 'function' ? 'a function without prototype' : String(c)}`);
        }
        if (name.length === 0) throw new OptionError('classes', 'A class in classes has no name: pass a record { Name: Class } instead');
        if (RESTORED_PROTOTYPES.has(proto)) throw new OptionError('classes', `${name} is restored without being registered: remove it from classes`);
        if (this.#classes.has(name) || this.#classNames.has(proto)) {
          throw new OptionError('classes', `Two entries of classes share the name or the class '${name}'`);
        }
        this.#classes.set(name, c as RevivableClass);
        this.#classNames.set(proto, name);
        this.#registered.add(proto);
      }
    }
    this.#compressor = options.compressor === false ? undefined : (options.compressor ?? zlibCompressor);
    this.#compressThreshold = options.compressThreshold ?? 1024;
  }

  /** Encodes a record as header + payload. Throws if the value cannot be serialised. */
  encode(record: EntryRecord): Uint8Array {
    let serializerId: number;
    let payload: Uint8Array;
    if (this.#serializer) {
      serializerId = SER_CUSTOM;
      payload = this.#serializer.serialize(record.value);
    } else if (isPlainJson(record.value)) {
      const json = JSON.stringify(record.value);
      // The common case: uncompressed JSON, header and text written in one go.
      if (this.#compressor === undefined || json.length * 3 < this.#compressThreshold || Buffer.byteLength(json, 'utf8') < this.#compressThreshold) {
        return Buffer.from(headerText('j', '0', record) + json, 'utf8');
      }
      serializerId = SER_JSON;
      payload = Buffer.from(json, 'utf8');
    } else {
      const table = this.#classNames.size > 0 ? this.#instanceTable(record.value) : undefined;
      if (table === undefined) {
        serializerId = SER_V8;
        payload = v8Serialize(record.value);
      } else {
        serializerId = SER_REVIVE;
        payload = v8Serialize([record.value, table]);
      }
    }
    let compression = COMP_NONE;
    if (this.#compressor && payload.length >= this.#compressThreshold) {
      const compressed = this.#compressor.compress(payload);
      if (compressed.length < payload.length) {
        payload = compressed;
        compression = COMP_ZLIB;
      }
    }
    const out = Buffer.allocUnsafe(HEADER_V2_LENGTH + payload.length);
    out.write(headerText(String.fromCharCode(serializerId), String.fromCharCode(compression), record), 0, HEADER_V2_LENGTH, 'latin1');
    out.set(payload, HEADER_V2_LENGTH);
    return out;
  }

  /**
   * Decodes header + payload. Throws an `Error` saying what is wrong on bytes that are not an
   * entry of this format (the caller turns it into a {@link CorruptEntryError}).
   */
  decode(bytes: Uint8Array): EntryRecord {
    return this.#decode(bytes, undefined);
  }

  /**
   * Decodes as {@link EntryCodec.decode} does, but an instance of a class this codec does not
   * know is left a plain object (or the `Map`, `Set` or array it extends) instead of failing, and
   * its class's name is listed in `classNames`: for tools that read entries without the app's
   * classes (the CLI's `inspect --key`).
   */
  decodeNamingClasses(bytes: Uint8Array): EntryRecord & { readonly classNames: readonly string[] } {
    const classNames: string[] = [];
    return { ...this.#decode(bytes, classNames), classNames };
  }

  /** {@link EntryCodec.decode}; unknown classes are named in `unknown` when it is given. */
  #decode(bytes: Uint8Array, unknown: string[] | undefined): EntryRecord {
    const length = bytes.length;
    if (length < HEADER_LENGTH) throw new Error(`${length} bytes is shorter than the header`);
    if (bytes[0] !== MAGIC) throw new Error('not a hermes entry (bad magic byte)');
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, length);
    const tagHash = buf.toString('latin1', TAG_HASH_OFFSET, FRESH_UNTIL_OFFSET);
    const freshUntil = readFreshUntil(buf);
    let start: number;
    let storedAt: number | undefined;
    let computeMs: number | undefined;
    if (bytes[1] === VERSION_BYTE) {
      if (length < HEADER_V2_LENGTH) throw new Error(`${length} bytes is shorter than the version 2 header`);
      start = HEADER_V2_LENGTH;
      storedAt = readField(buf, STORED_AT_OFFSET, 13, 'stored-at');
      computeMs = readField(buf, COMPUTE_MS_OFFSET, 7, 'compute time');
    } else if (bytes[1] === VERSION_1_BYTE) {
      start = HEADER_LENGTH;
    } else {
      throw new Error(`unsupported format version '${String.fromCharCode(bytes[1] ?? 0)}'`);
    }
    const serializer = bytes[2];
    const compression = bytes[3];
    if (compression === COMP_NONE && serializer === SER_JSON) {
      // The common case, without a payload view: the JSON text straight from the bytes.
      return { tagHash, freshUntil, value: JSON.parse(utf8(buf, start, length)), storedAt, computeMs };
    }
    let payload: Uint8Array = buf.subarray(start);
    if (compression === COMP_ZLIB) {
      if (!this.#compressor) throw new Error('entry is compressed but compression is disabled');
      payload = this.#compressor.decompress(payload);
    } else if (compression !== COMP_NONE) {
      throw new Error('unknown compression flag');
    }
    let value: unknown;
    switch (serializer) {
      case SER_JSON:
        value = JSON.parse(textDecoder.decode(payload));
        break;
      case SER_V8:
        value = v8Deserialize(payload);
        break;
      case SER_REVIVE:
        value = this.#revive(v8Deserialize(payload), unknown);
        break;
      case SER_CUSTOM:
        if (!this.#serializer) throw new Error('entry was written by a custom serializer that is not configured');
        value = this.#serializer.deserialize(payload);
        break;
      default:
        throw new Error('unknown serializer flag');
    }
    return { tagHash, freshUntil, value, storedAt, computeMs };
  }

  /**
   * The first part of `value` that a store of bytes would not give back as it was, the
   * registered classes aside: see {@link findLossyPart}.
   */
  lossyPart(value: unknown): LossyPart | undefined {
    return findLossyPart(value, this.#registered);
  }

  /**
   * The instances of registered classes in `value`, as `[rank, name, rank, name...]` (ranks of
   * `eachContainer`); `undefined` when there is none.
   */
  #instanceTable(value: unknown): Array<number | string> | undefined {
    const table: Array<number | string> = [];
    eachContainer(value, (object, rank) => {
      const name = this.#classNames.get(Object.getPrototypeOf(object) as object);
      if (name !== undefined) table.push(rank, name);
    });
    return table.length > 0 ? table : undefined;
  }

  /**
   * Sets the prototypes of the instances named in a `'r'` payload; throws on a foreign table, and
   * on a class not registered here unless `unknown` collects their names (those stay plain).
   */
  #revive(decoded: unknown, unknown: string[] | undefined): unknown {
    if (!Array.isArray(decoded) || decoded.length !== 2 || !Array.isArray(decoded[1])) throw new Error('bad instance table');
    const [value, table] = decoded as [unknown, unknown[]];
    const byRank = new Map<number, RevivableClass>();
    for (let i = 0; i < table.length; i += 2) {
      const rank = table[i];
      const name = table[i + 1];
      if (typeof rank !== 'number' || typeof name !== 'string') throw new Error('bad instance table');
      const c = this.#classes.get(name);
      if (c !== undefined) byRank.set(rank, c);
      else if (unknown === undefined) throw new Error(`entry holds an instance of class '${name}', which is not in this cache's { classes }`);
      else if (!unknown.includes(name)) unknown.push(name);
    }
    let revived = 0;
    eachContainer(value, (object, rank) => {
      const c = byRank.get(rank);
      if (c === undefined) return;
      const proto = Object.getPrototypeOf(object) as unknown;
      const base = Object.getPrototypeOf(c.prototype) as unknown;
      // What the serialiser gave back: a plain object, or the Map, Set or array the class extends.
      if (proto !== Object.prototype && proto !== base) throw new Error('instance table does not match the value');
      Object.setPrototypeOf(object, c.prototype as object);
      revived++;
    });
    if (revived !== byRank.size) throw new Error('instance table does not match the value');
    return value;
  }
}

/** The fresh-until field: 13 ASCII digits, milliseconds since the epoch. */
function readFreshUntil(buf: Buffer): number {
  const freshUntil = digitsAt(buf, FRESH_UNTIL_OFFSET, HEADER_LENGTH);
  if (freshUntil === undefined) throw new Error('bad fresh-until field');
  return freshUntil;
}

/** The decimal number written in ASCII digits in `bytes[start, end)`; `undefined` if any is not a digit. */
function digitsAt(bytes: Uint8Array, start: number, end: number): number | undefined {
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = (bytes[i] as number) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    n = n * 10 + digit;
  }
  return n;
}

/** UTF-8 text of `buf[start, end)`; malformed sequences are an error, as `TextDecoder({ fatal })` makes them. */
function utf8(buf: Buffer, start: number, end: number): string {
  const text = buf.toString('utf8', start, end);
  // Buffer's decoder replaces malformed sequences with U+FFFD where TextDecoder (fatal) throws:
  // only text holding U+FFFD needs the strict check.
  if (text.includes('\ufffd')) return textDecoder.decode(buf.subarray(start, end));
  return text;
}

/** A v2 number field: `digits` ASCII digits, or spaces for unknown (`undefined`). */
function readField(buf: Buffer, offset: number, digits: number, name: string): number | undefined {
  if (buf[offset] === 0x20) {
    for (let i = offset + 1; i < offset + digits; i++) if (buf[i] !== 0x20) throw new Error(`bad ${name} field`);
    return undefined;
  }
  const n = digitsAt(buf, offset, offset + digits);
  if (n === undefined) throw new Error(`bad ${name} field`);
  return n;
}

/** A v2 number field's text: the value (rounded down, clamped to [0, max]) in `digits` digits, or spaces when unknown. */
function formatField(value: number | undefined, digits: number, max: number): string {
  if (value === undefined || !Number.isFinite(value)) return ' '.repeat(digits);
  return String(Math.max(0, Math.min(max, Math.floor(value)))).padStart(digits, '0');
}

/** A tag hash as a header holds it: 16 hex digits. */
const TAG_HASH_TEXT = /^[0-9a-f]{16}$/i;

/**
 * A version 2 header as text (53 ASCII characters): magic, version, the serialiser's and the
 * compression's flags as given, then the record's tag hash, fresh-until, stored-at and compute
 * time. Throws a `TypeError` for a tag hash that is not 16 characters.
 */
function headerText(serializer: string, compression: string, record: EntryRecord): string {
  const hash = record.tagHash;
  if (!TAG_HASH_TEXT.test(hash)) throw new TypeError(`tag hash must be 16 hex digits, got '${hash}'`);
  // 'h': MAGIC.
  return `h${FORMAT_VERSION}${serializer}${compression}${hash}${formatFreshUntil(record.freshUntil)}${formatField(record.storedAt, 13, 9_999_999_999_999)}${formatField(record.computeMs, 7, MAX_COMPUTE_MS)}`;
}

function formatFreshUntil(ms: number): string {
  const n = Math.max(0, Math.min(9_999_999_999_999, Math.floor(ms)));
  return String(n).padStart(13, '0');
}

/** The tag hash of an entry without tags: `tagHash([])`. */
export const UNTAGGED_HASH = 'da39a3ee5e6b4b0d';

/**
 * Hashes tag versions, in tag order: the first 16 hex digits of the SHA-1 of the versions
 * joined by `,`. The Redis scripts compute the same with `redis.sha1hex`.
 */
export function tagHash(versions: readonly string[]): string {
  if (versions.length === 0) return UNTAGGED_HASH;
  return createHash('sha1').update(versions.join(',')).digest('hex').slice(0, 16);
}

/**
 * The compute time in an encoded entry's header (milliseconds), read without decoding the
 * payload; `undefined` for a v1 entry, an unknown time or bytes that are not a v2 header.
 */
export function computeMsOf(bytes: Uint8Array): number | undefined {
  if (bytes.length < HEADER_V2_LENGTH || bytes[1] !== VERSION_BYTE) return undefined;
  return digitsAt(bytes, COMPUTE_MS_OFFSET, HEADER_V2_LENGTH);
}

/**
 * The stored-at time in an encoded entry's header (milliseconds since the epoch), read without
 * decoding the payload; `undefined` for a v1 entry, an unknown time or bytes that are not a v2 header.
 */
export function storedAtOf(bytes: Uint8Array): number | undefined {
  if (bytes.length < HEADER_V2_LENGTH || bytes[1] !== VERSION_BYTE) return undefined;
  return digitsAt(bytes, STORED_AT_OFFSET, COMPUTE_MS_OFFSET);
}

/**
 * The fresh-until time in an encoded entry's header (milliseconds since the epoch), read
 * without decoding the payload; `undefined` for bytes that are not a header.
 */
export function freshUntilOf(bytes: Uint8Array): number | undefined {
  if (bytes.length < HEADER_LENGTH) return undefined;
  return digitsAt(bytes, FRESH_UNTIL_OFFSET, HEADER_LENGTH);
}
