/**
 * What one call learned about its value, for `wrapped.withInfo(...args)`: how it was answered
 * (`Cache-Status`), how old the value is (`Age`) and how long it stays fresh. Collected only by
 * calls made through `withInfo`: a plain call carries no {@link InfoSink} and pays one
 * `undefined` check at each place one is filled.
 *
 * @module
 */

import type { EntryRecord } from '../codec.js';

/**
 * How a call was answered:
 *
 * - `'hit'`: a fresh value read from the store (or the near-cache);
 * - `'miss'`: computed by this call (stored when this call held the lock);
 * - `'stale'`: a value past its fresh time, served under `grace` or `staleWhileRevalidate`;
 * - `'fallback'`: the function ran without the cache, the store failing or its circuit open;
 * - `'joined'`: the value of another caller's computation — a call in flight in this process
 *   that this call joined, or another process' write this call waited for.
 */
export type CacheStatus = 'hit' | 'miss' | 'stale' | 'fallback' | 'joined';

/** What `wrapped.withInfo(...args)` resolves to. */
export interface CallInfo<Value> {
  /** The value, as the plain call would have resolved. */
  readonly value: Value;
  /** How the call was answered. */
  readonly status: CacheStatus;
  /**
   * Seconds since the value was stored (fractional; the writer's clock): 0 for a value this
   * call computed. `undefined` when unknown: a fallback, an entry stored without its time (an
   * entry written by a version of hermes that did not record it), a call in flight that this
   * call joined and that did not collect information itself.
   */
  readonly age: number | undefined;
  /**
   * Seconds until the value stops being fresh (fractional): negative for a stale value (how
   * long ago it stopped). `undefined` when unknown or not cached: a fallback, a value computed
   * but not stored, a call in flight joined without information.
   */
  readonly ttlLeft: number | undefined;
}

/**
 * Collects what one `withInfo` call learns on its way through the read path. The first answer
 * recorded wins: a stale value served while a refresh runs on stays `'stale'` when that
 * refresh stores later.
 */
export class InfoSink {
  #status: CacheStatus | undefined;
  #storedAt: number | undefined;
  #freshUntil: number | undefined;
  /** The sink of the call in flight this call joined, if that call collected one. */
  #joined: InfoSink | undefined;
  #sealed = false;

  /** A fresh value read (`'hit'`), or read after waiting for another's write (`'joined'`). */
  read(record: EntryRecord, status: 'hit' | 'joined'): void {
    if (this.#status !== undefined) return;
    this.#status = status;
    this.#storedAt = record.storedAt;
    this.#freshUntil = record.freshUntil;
  }

  /** A stale value served. */
  stale(record: EntryRecord): void {
    if (this.#status !== undefined) return;
    this.#status = 'stale';
    this.#storedAt = record.storedAt;
    this.#freshUntil = record.freshUntil;
  }

  /** A value this call computed (before it is stored, if it is). */
  computed(): void {
    if (this.#status !== undefined) return;
    this.#status = 'miss';
    this.#storedAt = Date.now();
  }

  /** The value this call computed was stored with this record. */
  stored(record: EntryRecord): void {
    if (this.#status !== 'miss' || this.#sealed) return;
    this.#storedAt = record.storedAt ?? this.#storedAt;
    this.#freshUntil = record.freshUntil;
  }

  /** The function ran without the cache. */
  fallback(): void {
    if (this.#status !== undefined) return;
    this.#status = 'fallback';
  }

  /** This call joined a call in flight in this process (`sink`: that call's, if it has one). */
  joined(sink: InfoSink | undefined): void {
    if (this.#status !== undefined) return;
    this.#status = 'joined';
    this.#joined = sink;
  }

  /** The information, as of now, with the call's value; nothing recorded after counts. */
  result<Value>(value: Value): CallInfo<Value> {
    this.#sealed = true;
    const status = this.#status ?? 'miss';
    // A call in flight joined here: its information, if it collected any (else none is known).
    const source = this.#joined ?? this;
    const now = Date.now();
    const storedAt = source.#storedAt;
    const age = status === 'miss' ? 0 : storedAt === undefined ? undefined : Math.max(0, now - storedAt) / 1000;
    const freshUntil = source.#freshUntil;
    const ttlLeft = freshUntil === undefined ? undefined : (freshUntil - now) / 1000;
    return { value, status, age, ttlLeft };
  }
}
