/**
 * Plumbing every backend needs, written once: a registry of lock waiters, the decoding and
 * ordering of `dump()`, and option validators whose errors name the option. Exported for
 * backend writers as `hermes-cache/backend`, beside the contract itself.
 *
 * @module
 */

import { type EntryCodec, FRESH_UNTIL_OFFSET, TAG_HASH_OFFSET } from '../codec.js';
import { CorruptEntryError, OptionError } from '../errors.js';
import { describeValue } from '../options.js';
import type { StoredEntry } from './backend.js';

/** Settles one waiter: `woken` (the lock was released, or may have been), or an error. */
export type SettleWait = (woken: boolean, error?: unknown) => void;

/**
 * The waiters of one process on locks, by lock key. Each waiter is settled once — by
 * {@link LockWaiters.wake}, {@link LockWaiters.wakeAll}, {@link LockWaiters.closeAll}, its
 * timer, or the backend's own watch (a poll, a subscription) — and forgotten then.
 */
export class LockWaiters {
  readonly #byKey = new Map<string, Set<SettleWait>>();

  /**
   * Waits for a wake-up of `lockKey`, at most `timeoutMs`.
   * @param lockKey - the lock waited for
   * @param timeoutMs - when the wait ends by itself
   * @param timedOut - what the wait resolves to when `timeoutMs` passes first: `false` (timed
   *   out) or `true` (the lock expires then, which frees it too)
   * @param watch - started once the waiter is registered: the backend's own watch of the lock,
   *   which calls `settle` when it learns something; may return a clean-up run on settlement
   */
  wait(
    lockKey: string,
    timeoutMs: number,
    timedOut = false,
    watch?: (settle: SettleWait) => (() => void) | void,
  ): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      let set = this.#byKey.get(lockKey);
      if (!set) this.#byKey.set(lockKey, (set = new Set()));
      const waiters = set;
      let settled = false;
      let cleanUp: (() => void) | void = undefined;
      const settle: SettleWait = (woken, error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        waiters.delete(settle);
        if (waiters.size === 0 && this.#byKey.get(lockKey) === waiters) this.#byKey.delete(lockKey);
        if (cleanUp) cleanUp();
        if (error === undefined) resolve(woken);
        else reject(error);
      };
      const timer = setTimeout(() => {
        settle(timedOut);
      }, Math.max(0, timeoutMs));
      waiters.add(settle);
      if (watch) cleanUp = watch(settle);
      if (settled && cleanUp) cleanUp();
    });
  }

  /** Wakes every waiter of `lockKey` (`true`). */
  wake(lockKey: string): void {
    const waiters = this.#byKey.get(lockKey);
    if (waiters) for (const settle of [...waiters]) settle(true);
  }

  /** Wakes every waiter (`true`): a release may have been missed, they read again. */
  wakeAll(): void {
    for (const waiters of [...this.#byKey.values()]) for (const settle of [...waiters]) settle(true);
  }

  /** Ends every wait as timed out (`false`): the backend closes. */
  closeAll(): void {
    for (const waiters of [...this.#byKey.values()]) for (const settle of [...waiters]) settle(false);
    this.#byKey.clear();
  }

  /** The number of lock keys waited for. */
  get size(): number {
    return this.#byKey.size;
  }
}

/**
 * A stored entry as `dump()` shows it: the cached value, or the {@link CorruptEntryError}
 * that says why its bytes do not decode.
 */
export function decodeForDump(codec: EntryCodec | undefined, key: string, stored: StoredEntry): unknown {
  if (!(stored instanceof Uint8Array)) return stored.value;
  if (codec === undefined) return stored;
  try {
    return codec.decode(stored).value;
  } catch (error) {
    return new CorruptEntryError(key, error instanceof Error ? error.message : String(error), error);
  }
}

/** A dump's record with its keys in code-unit order, whatever order the store gave them in. */
export function sortedByKey(out: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * `value`, checked to be an integer from `min` to `max`.
 * @throws {@link OptionError} naming `option` otherwise
 */
export function integerOption(value: unknown, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new OptionError(option, `${option} must be an integer ${range}, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * `value`, checked to be a finite number above `min` (or at least `min`, with `inclusive`).
 * @throws {@link OptionError} naming `option` otherwise
 */
export function numberOption(value: unknown, option: string, min: number, inclusive = false, unit = ''): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || (!inclusive && value === min)) {
    const bound = inclusive ? `>= ${min}` : min === 0 ? 'positive' : `> ${min}`;
    const what = bound === 'positive' ? `a positive number${unit}` : `a number${unit} ${bound}`;
    throw new OptionError(option, `${option} must be ${what}, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * An entry given to `Backend.set` with its tag hash replaced by `hash` (16 characters):
 * a copy of the bytes with the header's tag-hash field overwritten, or a copy of the record.
 */
export function withTagHash(entry: StoredEntry, hash: string): StoredEntry {
  if (!(entry instanceof Uint8Array)) return { ...entry, tagHash: hash };
  const bytes = Buffer.from(entry);
  if (bytes.length >= FRESH_UNTIL_OFFSET) bytes.write(hash, TAG_HASH_OFFSET, FRESH_UNTIL_OFFSET - TAG_HASH_OFFSET, 'latin1');
  return bytes;
}
