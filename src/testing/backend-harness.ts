/**
 * The working parts of the direct Backend tier ({@link registerBackendClauses}): the request
 * builders — the only code that turns an entry's keys into Backend requests, so that a change
 * of the contract's request shapes is an edit of this file — the entries as the core encodes
 * them, and the per-test harness (a backend, a peer on the same store, keys and codec).
 *
 * @module
 */

import assert from 'node:assert/strict';
import type { Backend, EntryRef, ReadReply, ReadRequest, StoredEntry, WriteRequest } from '../backend/backend.js';
import { EntryCodec, type EntryRecord } from '../codec.js';
import { Keyspace } from '../keys.js';
import type { BackendContractOptions } from './contract.js';

/** The lock TTL of the tests' reads: long enough never to expire during a test. */
const LOCK_TTL_MS = 30_000;
/** The TTL of the entries the tests write. */
const ENTRY_TTL_MS = 60_000;

// --- The request helpers: the only code that builds requests from keys. ---

/** The entry `id` of a test function under the harness's prefix, and its lock. */
export function entryRef(keys: Keyspace, id: string): EntryRef {
  return keys.entryRef('clause', id);
}

/** A read of `ref` with these tags; with `lockToken`, a read that takes the lock on a miss. */
export function readRequest(ref: EntryRef, tagKeys: readonly string[], lockToken?: string, lockTtlMs = LOCK_TTL_MS): ReadRequest {
  return { ref, tagKeys, lockToken, lockTtlMs };
}

/** A write of `entry` under `ref`; with `lockToken`, only while that token holds the lock. */
function writeRequest(ref: EntryRef, entry: StoredEntry, lockToken?: string): WriteRequest {
  return { ref, entry, ttlMs: ENTRY_TTL_MS, lockToken };
}

/** Releases the lock of `ref` held with `token`. */
export function releaseLock(backend: Backend, ref: EntryRef, token: string): Promise<void> {
  return backend.release(ref, token);
}

/** Waits for the lock of `ref` to be released, at most `timeoutMs`. */
export function waitForLock(backend: Backend, ref: EntryRef, timeoutMs: number): Promise<boolean> {
  return backend.waitForRelease(ref, timeoutMs);
}

/** Invalidates the entry `ref` and its lock. */
export function invalidateEntry(backend: Backend, ref: EntryRef): Promise<void> {
  return backend.invalidate(ref);
}

// --- Entries, encoded as the core encodes them. ---

/** What the core hands to `write`: the codec's bytes when the backend stores bytes, else the record. */
function storedEntry(backend: Backend, codec: EntryCodec, record: EntryRecord): StoredEntry {
  return backend.storesBytes ? codec.encode(record) : record;
}

/** The cached value of a read's entry, decoded as the core decodes it. */
function valueOf(backend: Backend, codec: EntryCodec, reply: ReadReply): unknown {
  const { entry } = reply;
  if (entry === undefined) throw new Error('expected a hit, got a miss');
  return backend.storesBytes ? codec.decode(entry as Uint8Array).value : (entry as EntryRecord).value;
}

let prefixCounter = 0;

/** What the clause tests work with, rebuilt before each test. */
export class Harness {
  /** The backend under test, attached to a fresh prefix. */
  backend!: Backend;
  /** Another backend on the same store, as a second process has (the same one in-process). */
  peer!: Backend;
  /** The key names under the test's prefix. */
  keys!: Keyspace;
  /** The codec attached with the prefix: entries are encoded with it. */
  codec!: EntryCodec;
  /** The prefixes this test used, cleared after it. */
  readonly prefixes: string[] = [];
  readonly #opened: Backend[] = [];

  /** Opens the backend and its peer for one test, attached to a fresh prefix. */
  async open(options: BackendContractOptions): Promise<void> {
    const prefix = `clauses${process.pid}x${++prefixCounter}`;
    this.prefixes.push(prefix);
    this.keys = new Keyspace(prefix);
    this.codec = new EntryCodec();
    this.backend = await options.createBackend();
    this.#opened.push(this.backend);
    this.backend.attach({ prefix, codec: this.codec });
    this.peer = await options.createPeer(this.backend);
    if (this.peer !== this.backend) {
      this.#opened.push(this.peer);
      this.peer.attach({ prefix, codec: this.codec });
    }
  }

  /** Clears the test's prefixes and closes what {@link Harness.open} opened. */
  async close(): Promise<void> {
    for (const prefix of this.prefixes.splice(0)) await this.backend.clear(prefix).catch(() => undefined);
    for (const backend of this.#opened.splice(0)) await backend.close();
  }

  /** Reads `ref` on `on` (default: the backend) with its tags and, if given, a lock token. */
  read(ref: EntryRef, token?: string, tagKeys: readonly string[] = [], on: Backend = this.backend): Promise<ReadReply> {
    return on.read(readRequest(ref, tagKeys, token));
  }

  /** Writes `value` under `ref` with `tagHash`, fresh for a minute unless `freshUntil` says otherwise. */
  write(ref: EntryRef, value: unknown, tagHash: string, token?: string, freshUntil = Date.now() + ENTRY_TTL_MS): Promise<boolean> {
    return this.backend.write(writeRequest(ref, storedEntry(this.backend, this.codec, { tagHash, freshUntil, value }), token));
  }

  /** Reads `ref` and writes `value` with the tag hash the read reported: a valid entry. */
  async store(ref: EntryRef, value: unknown, tagKeys: readonly string[] = []): Promise<void> {
    const { tagHash } = await this.read(ref, undefined, tagKeys);
    assert.equal(await this.write(ref, value, tagHash), true);
  }

  /** The cached value of a hit. */
  value(reply: ReadReply): unknown {
    return valueOf(this.backend, this.codec, reply);
  }

  /** A second prefix on the backend: another cache sharing the store. */
  otherPrefix(): Keyspace {
    const other = new Keyspace(`${this.keys.prefix}other`);
    this.prefixes.push(other.prefix);
    this.backend.attach({ prefix: other.prefix, codec: this.codec });
    return other;
  }
}
