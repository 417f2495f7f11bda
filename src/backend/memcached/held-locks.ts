/**
 * The locks a Memcached backend holds, by token, with the CAS unique each was taken with: a
 * lock is released by a compare-and-delete on that unique, so a write or release of a lock
 * taken by this backend needs no `gets` first.
 *
 * @module
 */

import type { MemcachedServer } from './server.js';

/** A CAS unique as memcache-client reports it. */
export type CasUnique = string | number;

/** How often, in locks remembered, the expired ones are swept (a lock may never be released). */
const SWEEP_EVERY = 1024;

/** The CAS unique of each lock this backend took, by token, until released or expired. */
export class HeldLocks {
  readonly #byToken = new Map<string, { casUnique: CasUnique; expiresAt: number }>();

  /** Remembers the lock taken with `token` for `ttlMs`, and its CAS unique. */
  remember(token: string, casUnique: CasUnique, ttlMs: number): void {
    const byToken = this.#byToken;
    byToken.set(token, { casUnique, expiresAt: Date.now() + ttlMs });
    if (byToken.size % SWEEP_EVERY === 0) this.#sweep();
  }

  /** The CAS unique of the lock taken with `token`, when this backend took it. */
  casUniqueOf(token: string): CasUnique | undefined {
    return this.#byToken.get(token)?.casUnique;
  }

  /** Forgets the lock taken with `token` (released, or lost). */
  forget(token: string): void {
    this.#byToken.delete(token);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [token, lock] of this.#byToken) if (lock.expiresAt <= now) this.#byToken.delete(token);
  }
}

/**
 * The CAS unique of the lock `lockMcKey` on `server` (one `gets`) when it still holds `token`,
 * else `undefined`: for a lock taken by another backend instance.
 */
export async function lookUpCasUnique(server: MemcachedServer, lockMcKey: string, token: string): Promise<CasUnique | undefined> {
  const lock = (await server.gets([lockMcKey]))[lockMcKey];
  if (lock?.value !== token || lock.casUniq === undefined) return undefined;
  return lock.casUniq;
}
