/**
 * The keys one Memcached backend wrote or created, remembered for `clear(prefix)` and
 * `dump(prefix)`: memcached cannot list its keys, so these are the only ones the backend can
 * name. The memory is bounded; the oldest keys are forgotten first.
 *
 * @module
 */

import { idStart } from '../../keys.js';
import { memcachedKey } from './keys.js';

/** The keys of one prefix that a `clear` or `dump` reaches, from {@link TrackedKeys.under}. */
export interface KeysUnder {
  /** The tracked keys under the prefix, to forget once they are deleted. */
  readonly tracked: readonly string[];
  /** Key → memcached key: the tracked keys under the prefix, and the lock of each tracked entry. */
  readonly reached: ReadonlyMap<string, string>;
}

/** A bounded, oldest-first memory of keys (original key → its memcached key). */
export class TrackedKeys {
  readonly #limit: number;
  readonly #keys = new Map<string, string>();

  /** @param limit - how many keys are remembered; `0` remembers none */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Remembers `key` (stored as `mcKey`) as the newest, forgetting the oldest beyond the limit. */
  track(key: string, mcKey: string): void {
    if (this.#limit === 0) return;
    const keys = this.#keys;
    if (keys.has(key)) keys.delete(key);
    keys.set(key, mcKey);
    if (keys.size > this.#limit) {
      const oldest = keys.keys().next();
      if (oldest.done !== true) keys.delete(oldest.value);
    }
  }

  /** {@link track}s each of `keys` with the memcached key at the same index of `mcKeys`. */
  trackAll(keys: readonly string[], mcKeys: readonly string[]): void {
    for (let i = 0; i < keys.length; i++) this.track(keys[i] as string, mcKeys[i] as string);
  }

  /**
   * The tracked keys under `${prefix}:`, with the lock of each tracked entry (which another
   * process may hold, so it is reached even when this process never took it).
   */
  under(prefix: string): KeysUnder {
    const start = `${prefix}:`;
    const entryStart = `${prefix}:entry:`;
    const tracked: string[] = [];
    const reached = new Map<string, string>();
    for (const [key, mcKey] of this.#keys) {
      if (!key.startsWith(start)) continue;
      tracked.push(key);
      reached.set(key, mcKey);
      if (key.startsWith(entryStart)) {
        const lockKey = `${prefix}:lock:${key.slice(idStart(prefix, 'entry'))}`;
        reached.set(lockKey, memcachedKey(lockKey));
      }
    }
    return { tracked, reached };
  }

  /** Forgets `keys` (those no longer on any server). */
  forget(keys: readonly string[]): void {
    for (const key of keys) this.#keys.delete(key);
  }
}
