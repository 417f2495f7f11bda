/**
 * Key names and argument hashing. Every key hermes touches is built here:
 *
 * - entries: `{prefix}:entry:{name}:{argsHash}`
 * - tags:    `{prefix}:tag:{tag}`
 * - locks:   `{prefix}:lock:{name}:{argsHash}`
 *
 * Function names, tags and custom keys come from callers and may hold anything, so they are
 * escaped into the key (see {@link encodeName} and {@link encodeKeyPart}): ordinary names and
 * tags (`foo`, `Example.bar`, `math`) and custom keys (`avg:2:10`) are kept exactly as they
 * are; any other text is percent-encoded, and very long text is shortened with a hash. The
 * result is that different names, tags or keys never share a key, no name can move a key
 * outside `{prefix}:entry:`, `{prefix}:tag:` or `{prefix}:lock:`, and no key carries a `{`/`}`
 * that would pick a Redis Cluster hash slot other than the prefix's own. The prefix is the
 * operator's and is used as it is.
 *
 * @module
 */

import { hash as oneShotHash, randomBytes } from 'node:crypto';
import { ArgumentError } from './errors.js';

/** Names and tags made only of these characters (and not too long) are used as they are. */
const PLAIN_NAME = /^[A-Za-z0-9._\-$#@/()]+$/;
/** Custom keys and argument hashes without these characters (and not too long) are used as they are. */
// eslint-disable-next-line no-control-regex
const KEY_PART_UNSAFE = /[%{}\x00-\x1f\x7f\ud800-\udfff]/;
/** 16 hex digits: the argument hash, the common case. */
const ARGS_HASH = /^[0-9a-f]{16}$/;

/**
 * Longest encoded name, tag or custom key kept readable in full; a longer one becomes its first
 * {@link HASHED_HEAD_LENGTH} characters, the marker `%%` and 32 hex digits of a SHA-256.
 */
export const MAX_KEY_PART_LENGTH = 200;
/** How much of a long name, tag or custom key stays readable in its hashed form. */
const HASHED_HEAD_LENGTH = 64;
const HEX = '0123456789ABCDEF';

/**
 * The form of a function name or a tag in a key. A name or tag of at most
 * {@link MAX_KEY_PART_LENGTH} characters from `A-Z a-z 0-9 . _ - $ # @ / ( )` is kept as it is.
 * Any other character is percent-encoded as its UTF-8 bytes (`:` → `%3A`, `{` → `%7B`,
 * space → `%20`, `é` → `%C3%A9`, `%` → `%25`; a lone surrogate as the three bytes WTF-8 gives
 * it), so the form holds neither `:` nor braces nor whitespace. An encoded form longer than
 * {@link MAX_KEY_PART_LENGTH} becomes `{first 64 characters}%%{32 hex digits}` (see
 * {@link hashLongPart}). Injective: every `%` of an encoded form is followed by two hex digits,
 * so `%%` marks a hashed form and nothing else, and percent-decoding gives the name back.
 */
export function encodeName(name: string): string {
  if (name.length <= MAX_KEY_PART_LENGTH && PLAIN_NAME.test(name)) return name;
  return hashLongPart(percentEncode(name, isNameChar));
}

/**
 * The form of a custom key (the result of a `key` option) or an argument hash in a key. Kept as
 * it is — `:`, spaces and non-ASCII letters included, so that `avg:2:10` stays `avg:2:10` —
 * unless it holds `%`, `{`, `}`, a control character (U+0000–U+001F, U+007F) or a lone
 * surrogate: those are percent-encoded as in {@link encodeName}. A form longer than
 * {@link MAX_KEY_PART_LENGTH} is hashed like a long name. The name before it holds no `:`, so
 * a custom key can never be confused with another name's key.
 */
export function encodeKeyPart(part: string): string {
  if (ARGS_HASH.test(part)) return part;
  if (part.length <= MAX_KEY_PART_LENGTH && !KEY_PART_UNSAFE.test(part)) return part;
  return hashLongPart(percentEncode(part, isKeyPartChar));
}

function isNameChar(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x2e || // .
    code === 0x5f || // _
    code === 0x2d || // -
    code === 0x24 || // $
    code === 0x23 || // #
    code === 0x40 || // @
    code === 0x2f || // /
    code === 0x28 || // (
    code === 0x29 // )
  );
}

function isKeyPartChar(code: number): boolean {
  return code > 0x1f && code !== 0x7f && code !== 0x25 && code !== 0x7b && code !== 0x7d && (code < 0xd800 || code > 0xdfff);
}

/**
 * Percent-encodes every UTF-16 code unit of `text` that `keep` refuses, as its UTF-8 bytes
 * (WTF-8 for a lone surrogate, which UTF-8 cannot hold: three bytes no valid UTF-8 has).
 */
function percentEncode(text: string, keep: (code: number) => boolean): string {
  let out = '';
  const byte = (b: number): void => {
    out += `%${HEX[b >> 4] ?? ''}${HEX[b & 15] ?? ''}`;
  };
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (keep(code)) {
      out += text.charAt(i);
      continue;
    }
    let point = code;
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        if (keep(0x10000)) {
          out += text.slice(i, i + 2); // a valid pair, kept whole (custom keys)
          i++;
          continue;
        }
        point = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    if (point < 0x80) byte(point);
    else if (point < 0x800) {
      byte(0xc0 | (point >> 6));
      byte(0x80 | (point & 63));
    } else if (point < 0x10000) {
      byte(0xe0 | (point >> 12));
      byte(0x80 | ((point >> 6) & 63));
      byte(0x80 | (point & 63));
    } else {
      byte(0xf0 | (point >> 18));
      byte(0x80 | ((point >> 12) & 63));
      byte(0x80 | ((point >> 6) & 63));
      byte(0x80 | (point & 63));
    }
  }
  return out;
}

/**
 * An encoded form longer than {@link MAX_KEY_PART_LENGTH} becomes its first 64 characters (cut
 * before a `%XX` escape, never inside one), `%%`, and the first 32 hex digits (128 bits) of the
 * SHA-256 of the whole encoded form. Shorter forms are returned as they are.
 */
export function hashLongPart(encoded: string): string {
  if (encoded.length <= MAX_KEY_PART_LENGTH) return encoded;
  let cut = HASHED_HEAD_LENGTH;
  const escape = encoded.lastIndexOf('%', cut - 1);
  if (escape >= 0 && escape > cut - 3) cut = escape;
  return `${encoded.slice(0, cut)}%%${oneShotHash('sha256', encoded, 'hex').slice(0, 32)}`;
}

/**
 * An entry as the cache names it, passed to backends so that they never parse a key: its
 * prefix and id, and the two keys built from them.
 */
export interface EntryRef {
  /** The cache's prefix. */
  readonly prefix: string;
  /** The entry's id under the prefix, `{name}:{argsHash}` (escaped). */
  readonly id: string;
  /** `{prefix}:entry:{id}`. */
  readonly entryKey: string;
  /** `{prefix}:lock:{id}`: the lock of the entry's computation. */
  readonly lockKey: string;
}

/** The kinds of key a cache writes. */
export type KeyKind = 'entry' | 'lock' | 'tag';

/** Where the id part of a key of this kind starts: just after `{prefix}:{kind}:`. */
export function idStart(prefix: string, kind: KeyKind): number {
  return prefix.length + kind.length + 2;
}

/** Builds the key names of one cache (one prefix). */
export class Keyspace {
  /** The cache's prefix. */
  readonly prefix: string;
  readonly #entry: string;
  readonly #tag: string;
  readonly #lock: string;
  /** Encoded forms of the names seen, so that a name is escaped once, not per call. */
  readonly #names = new Map<string, string>();

  /** @param prefix - the cache's prefix, non-empty; used as it is */
  constructor(prefix: string) {
    this.prefix = prefix;
    this.#entry = `${prefix}:entry:`;
    this.#tag = `${prefix}:tag:`;
    this.#lock = `${prefix}:lock:`;
  }

  /**
   * `{prefix}:entry:{name}:{argsHash}`, with `name` escaped by {@link encodeName} and
   * `argsHash` (an argument hash or a custom key) by {@link encodeKeyPart}.
   */
  entryKey(name: string, argsHash: string): string {
    return `${this.#entry}${this.#name(name)}:${encodeKeyPart(argsHash)}`;
  }

  /** The {@link EntryRef} of `name` and `argsHash`, escaped as {@link Keyspace.entryKey} does. */
  entryRef(name: string, argsHash: string): EntryRef {
    const id = `${this.#name(name)}:${encodeKeyPart(argsHash)}`;
    return { prefix: this.prefix, id, entryKey: this.#entry + id, lockKey: this.#lock + id };
  }

  /**
   * The {@link EntryRef} of an entry key of this keyspace (for tools and tests that hold a key).
   * @throws TypeError if `entryKey` is not an entry key under this prefix
   */
  refOf(entryKey: string): EntryRef {
    if (!entryKey.startsWith(this.#entry)) throw new TypeError(`Not an entry key of prefix '${this.prefix}': '${entryKey}'`);
    const id = entryKey.slice(this.#entry.length);
    return { prefix: this.prefix, id, entryKey, lockKey: this.#lock + id };
  }

  /** `{prefix}:lock:{name}:{argsHash}`, escaped as {@link Keyspace.entryKey} does. */
  lockKey(name: string, argsHash: string): string {
    return `${this.#lock}${this.#name(name)}:${encodeKeyPart(argsHash)}`;
  }

  /** `{prefix}:tag:{tag}`, with `tag` escaped by {@link encodeName}. */
  tagKey(tag: string): string {
    return `${this.#tag}${this.#name(tag)}`;
  }

  /** The lock key that belongs to an entry key: the same name and argument part. */
  lockKeyOf(entryKey: string): string {
    return this.#lock + entryKey.slice(this.#entry.length);
  }

  /** What kind of key `key` is, or `undefined` if it is not under this prefix. */
  kindOf(key: string): 'entry' | 'tag' | 'lock' | undefined {
    if (key.startsWith(this.#entry)) return 'entry';
    if (key.startsWith(this.#tag)) return 'tag';
    if (key.startsWith(this.#lock)) return 'lock';
    return undefined;
  }

  #name(name: string): string {
    let encoded = this.#names.get(name);
    if (encoded === undefined) {
      encoded = encodeName(name);
      if (name.length <= MAX_KEY_PART_LENGTH) {
        if (this.#names.size >= 1024) this.#names.clear(); // names and tags are few; stay bounded anyway
        this.#names.set(name, encoded);
      }
    }
    return encoded;
  }
}

/**
 * How deep arguments may nest (objects, arrays, Maps and Sets inside each other). Deeper
 * arguments reject the call with an {@link ArgumentError} instead of overflowing the stack.
 */
export const MAX_ARGUMENT_DEPTH = 1000;

/**
 * Encodes call arguments as a canonical string: equal arguments give equal strings, in any
 * process and run, whatever the order of object keys; values of different types never give
 * the same string (`1` / `'1'`, `null` / `undefined`, `[1,[2,3]]` / `[[1,2],3]`, Dates,
 * BigInts, Maps, Sets, Buffers and typed arrays are all told apart). Throws an
 * {@link ArgumentError} for functions, symbols, cycles, objects that have no stable content
 * (WeakMap, WeakSet, Promise), arguments nested deeper than {@link MAX_ARGUMENT_DEPTH} and
 * arguments too large to encode (a canonical form over V8's longest string).
 */
export function canonicalArgs(args: readonly unknown[]): string {
  try {
    // Fast path: a few strings and numbers, the common case.
    let out = '';
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      if (typeof arg === 'number' && Number.isFinite(arg) && !Object.is(arg, -0)) out += `${i ? ',' : ''}${arg}`;
      else if (typeof arg === 'string') out += `${i ? ',' : ''}${JSON.stringify(arg)}`;
      else return canonicalSlow(args);
    }
    return out;
  } catch (error) {
    // "Invalid string length" (over V8's longest string) or a stack overflow in a getter.
    if (error instanceof RangeError) {
      throw new ArgumentError('args', `Arguments too large or too deep to hash (${error.message})`);
    }
    throw error;
  }
}

function canonicalSlow(args: readonly unknown[]): string {
  const seen = new Set<object>();
  let out = '';
  for (let i = 0; i < args.length; i++) {
    out += (i ? ',' : '') + encodeValue(args[i], seen, `args[${i}]`);
  }
  return out;
}

function encodeValue(value: unknown, seen: Set<object>, path: string): string {
  switch (typeof value) {
    case 'number':
      // Finite numbers print as themselves; -0, NaN and the infinities get a marker.
      if (Number.isFinite(value)) return Object.is(value, -0) ? '#-0' : String(value);
      return `#${String(value)}`;
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return 'undefined';
    case 'bigint':
      return `${value}n`;
    case 'function':
      throw new ArgumentError(path, 'A function cannot be part of a cache key');
    case 'symbol':
      throw new ArgumentError(path, 'A symbol cannot be part of a cache key');
    case 'object':
      break;
  }
  if (value === null) return 'null';
  const obj = value;
  if (seen.has(obj)) throw new ArgumentError(path, 'A cyclic structure cannot be part of a cache key');
  // `seen` holds the objects on the path from the arguments to this one: its size is the depth.
  if (seen.size >= MAX_ARGUMENT_DEPTH) {
    throw new ArgumentError(shortPath(path), `Arguments nested deeper than ${MAX_ARGUMENT_DEPTH} levels cannot be hashed`);
  }
  seen.add(obj);
  try {
    return encodeObject(obj, seen, path);
  } finally {
    seen.delete(obj);
  }
}

function shortPath(path: string): string {
  return path.length <= 200 ? path : `${path.slice(0, 100)}…${path.slice(-60)}`;
}

/** A type name as it appears in the canonical form: quoted unless it is a plain identifier. */
function typeName(name: unknown): string {
  const text = typeof name === 'string' ? name : '?';
  return /^[\p{ID_Start}$_][\p{ID_Continue}$\u200c\u200d]*$/u.test(text) ? text : JSON.stringify(text);
}

function constructorName(obj: object): unknown {
  const proto = Object.getPrototypeOf(obj) as { constructor?: { name?: unknown } } | null;
  return proto?.constructor?.name;
}

function encodeObject(obj: object, seen: Set<object>, path: string): string {
  if (Array.isArray(obj)) {
    let out = '[';
    for (let i = 0; i < obj.length; i++) out += (i ? ',' : '') + encodeValue(obj[i], seen, `${path}[${i}]`);
    return `${out}]`;
  }
  if (obj instanceof Date) return `Date(${obj.getTime()})`;
  if (ArrayBuffer.isView(obj)) {
    const bytes = Buffer.from(obj.buffer, obj.byteOffset, obj.byteLength).toString('base64');
    return `${Buffer.isBuffer(obj) ? 'Buffer' : typeName(constructorName(obj))}(${bytes})`;
  }
  if (obj instanceof ArrayBuffer) return `ArrayBuffer(${Buffer.from(obj).toString('base64')})`;
  if (obj instanceof SharedArrayBuffer) return `SharedArrayBuffer(${Buffer.from(obj).toString('base64')})`;
  if (obj instanceof Map) {
    const pairs: string[] = [];
    for (const [k, v] of obj) {
      pairs.push(`${encodeValue(k, seen, `${path}.<key>`)}=>${encodeValue(v, seen, `${path}.get(…)`)}`);
    }
    return `Map{${pairs.sort().join(',')}}`;
  }
  if (obj instanceof Set) {
    const items: string[] = [];
    for (const v of obj) items.push(encodeValue(v, seen, `${path}.<item>`));
    return `Set{${items.sort().join(',')}}`;
  }
  if (obj instanceof RegExp) return `RegExp(${JSON.stringify(obj.source)},${obj.flags})`;
  if (obj instanceof WeakMap || obj instanceof WeakSet || obj instanceof WeakRef || obj instanceof Promise) {
    throw new ArgumentError(path, `A ${obj.constructor.name} has no stable content to hash`);
  }
  // Objects whose content lives in internal slots, not in properties: without this, every
  // `new Number(n)` or `new URL(u)` would look like an empty object, and share one key.
  if (obj instanceof Number || obj instanceof String || obj instanceof Boolean || obj instanceof BigInt) {
    return `${typeName(constructorName(obj))}(${encodeValue(obj.valueOf(), seen, path)})`;
  }
  if (obj instanceof URL || obj instanceof URLSearchParams) {
    return `${typeName(constructorName(obj))}(${JSON.stringify(obj.toString())})`;
  }
  if (Object.getOwnPropertySymbols(obj).some((s) => Object.prototype.propertyIsEnumerable.call(obj, s))) {
    throw new ArgumentError(path, 'An object with symbol keys cannot be part of a cache key');
  }
  const proto = Object.getPrototypeOf(obj) as { constructor?: { name?: unknown } } | null;
  // Class instances are told apart from plain objects (and from each other) by class name.
  const className = proto === null || proto === Object.prototype ? '' : typeName(proto.constructor?.name);
  const keys = Object.keys(obj).sort();
  let out = `${className}{`;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    out += `${i ? ',' : ''}${JSON.stringify(k)}:${encodeValue((obj as Record<string, unknown>)[k], seen, `${path}.${k}`)}`;
  }
  return `${out}}`;
}

/**
 * The argument hash of an entry key: the first 16 hex digits (64 bits) of the SHA-1 of the
 * canonical form of the arguments ({@link canonicalArgs}).
 */
export function argsHash(args: readonly unknown[]): string {
  return hashString(canonicalArgs(args));
}

/** The first 16 hex digits of the SHA-1 of a string. */
export function hashString(text: string): string {
  return oneShotHash('sha1', text, 'hex').slice(0, 16);
}

const processId = randomBytes(8).toString('hex');
let counter = 0;

/**
 * A token unique across processes and calls, for lock tokens and tag versions: 64 random
 * bits drawn once per process followed by a counter. Cheaper than drawing random bytes per call.
 */
export function uniqueToken(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${processId}${counter.toString(36)}`;
}
