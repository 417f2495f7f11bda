/**
 * Releasing the locks this process took: at once, or — when the store refused (failing over,
 * unreachable) — retried in the background, since a lock left behind blocks every caller of
 * its entry, in every process, until it expires (`lockTimeout`).
 *
 * @module
 */

import type { Backend, ReadReply, ReadRequest } from '../backend/backend.js';
import { BackendError } from '../errors.js';
import type { EntryRef } from '../keys.js';

/** First retry delay of a refused release, ms; doubled up to {@link MAX_RETRY_MS}. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 1000;

/** The lock releases of one cache, with their background retries (cleared by `close()`). */
export class LockReleaser {
  readonly #lockTimeoutMs: number;
  readonly #report: (error: BackendError) => void;
  readonly #timers = new Set<NodeJS.Timeout>();
  #closing = false;

  /**
   * @param lockTimeoutMs - how long a lock lives: retries stop once it has expired anyway
   * @param report - where a refused release is reported
   */
  constructor(lockTimeoutMs: number, report: (error: BackendError) => void) {
    this.#lockTimeoutMs = lockTimeoutMs;
    this.#report = report;
  }

  /**
   * Releases a lock held with `lockToken`; if the store refuses, the failure is reported and
   * the release retried in the background. Never rejects.
   */
  async release(backend: Backend, ref: EntryRef, lockToken: string, quiet = false): Promise<void> {
    try {
      await backend.release(ref, lockToken);
    } catch (error) {
      if (!quiet) this.#report(new BackendError('release', ref.lockKey, error));
      this.retryLater(backend, ref, lockToken);
    }
  }

  /**
   * A read that passed its deadline may still take the lock for a caller who has fallen open
   * and will never write nor release it: a release sent now follows the read on the same
   * connection and frees it. A client that retries commands (Redis Cluster during a failover)
   * may run the read after that release: if its late reply says it took the lock, released again.
   */
  releaseAfterLateRead(backend: Backend, request: ReadRequest, read: Promise<ReadReply>): void {
    const { ref, lockToken } = request;
    if (lockToken === undefined) return;
    void this.release(backend, ref, lockToken, true);
    read.then(
      (reply) => {
        if (reply.locked) void this.release(backend, ref, lockToken, true);
      },
      () => undefined,
    );
  }

  /**
   * Retries a refused release — after 100 ms, then doubling up to 1 s — until it succeeds, the
   * lock has expired anyway, or the cache closes. Safe to repeat: a release deletes the lock
   * only while it still holds this token.
   */
  retryLater(backend: Backend, ref: EntryRef, lockToken: string): void {
    const giveUpAt = Date.now() + this.#lockTimeoutMs;
    let delay = FIRST_RETRY_MS;
    const attempt = (): void => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        backend.release(ref, lockToken).catch(() => {
          delay = Math.min(delay * 2, MAX_RETRY_MS);
          if (Date.now() + delay < giveUpAt && !this.#closing) attempt();
        });
      }, delay);
      timer.unref();
      this.#timers.add(timer);
    };
    attempt();
  }

  /** Stops every background retry. */
  close(): void {
    this.#closing = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}
