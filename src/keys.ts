/**
 * Key names and argument hashing. Every key hermes touches is built here:
 *
 * - entries: `{prefix}:entry:{name}:{argsHash}`
 * - tags:    `{prefix}:tag:{tag}`
 * - locks:   `{prefix}:lock:{name}:{argsHash}`
 *
 * @module
 */

import { hash as oneShotHash, randomBytes } from 'node:crypto';
import { ArgumentError } from './errors.js';

/** Builds the key names of one cache (one prefix). */
export class Keyspace {
  /** The cache's prefix. */
  readonly prefix: string;
  readonly #entry: string;
  readonly #tag: string;
  readonly #lock: string;

  /** @param prefix - the cache's prefix, non-empty */
  constructor(prefix: string) {
    this.prefix = prefix;
    this.#entry = `${prefix}:entry:`;
    this.#tag = `${prefix}:tag:`;
    this.#lock = `${prefix}:lock:`;
  }

  /** `{prefix}:entry:{name}:{argsHash}` */
  entryKey(name: string, argsHash: string): string {
    return `${this.#entry}${name}:${argsHash}`;
  }

  /** `{prefix}:lock:{name}:{argsHash}` */
  lockKey(name: string, argsHash: string): string {
    return `${this.#lock}${name}:${argsHash}`;
  }

  /** `{prefix}:tag:{tag}` */
  tagKey(tag: string): string {
    return `${this.#tag}${tag}`;
  }

  /** The lock key that belongs to an entry key. */
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
}

/**
 * Encodes call arguments as a canonical string: equal arguments give equal strings, in any
 * process and run, whatever the order of object keys; values of different types never give
 * the same string (`1` / `'1'`, `null` / `undefined`, `[1,[2,3]]` / `[[1,2],3]`, Dates,
 * BigInts, Maps, Sets, Buffers and typed arrays are all told apart). Throws an
 * {@link ArgumentError} for functions, symbols, cycles and objects that have no stable content
 * (WeakMap, WeakSet, Promise).
 */
export function canonicalArgs(args: readonly unknown[]): string {
  // Fast path: a few strings and numbers, the common case.
  let out = '';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (typeof arg === 'number' && Number.isFinite(arg) && !Object.is(arg, -0)) out += `${i ? ',' : ''}${arg}`;
    else if (typeof arg === 'string') out += `${i ? ',' : ''}${JSON.stringify(arg)}`;
    else return canonicalSlow(args);
  }
  return out;
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
  seen.add(obj);
  try {
    return encodeObject(obj, seen, path);
  } finally {
    seen.delete(obj);
  }
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
    return `${Buffer.isBuffer(obj) ? 'Buffer' : obj.constructor.name}(${bytes})`;
  }
  if (obj instanceof ArrayBuffer) return `ArrayBuffer(${Buffer.from(obj).toString('base64')})`;
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
  if (Object.getOwnPropertySymbols(obj).some((s) => Object.prototype.propertyIsEnumerable.call(obj, s))) {
    throw new ArgumentError(path, 'An object with symbol keys cannot be part of a cache key');
  }
  const proto = Object.getPrototypeOf(obj) as { constructor?: { name?: string } } | null;
  // Class instances are told apart from plain objects (and from each other) by class name.
  const className = proto === null || proto === Object.prototype ? '' : (proto.constructor?.name ?? '?');
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
