/**
 * Waiting for another process's lock on Memcached: memcached cannot push a wake-up, so the
 * lock key is polled, one key in the tick's multi-get of its server, at growing intervals.
 * Waiters in the same process as the lock's holder are woken by the release itself (through
 * the backend's `LockWaiters`), without polling.
 *
 * @module
 */

import type { SettleWait } from '../kit.js';
import type { MemcachedServer } from './server.js';

/** What {@link pollLock} needs: where the lock is, how long to wait, how often to look. */
export interface LockPoll {
  /** The server holding the lock. */
  readonly server: MemcachedServer;
  /** The lock's memcached key. */
  readonly lockMcKey: string;
  /** When the wait ends (`Date.now()` time, in ms): a poll that finds the lock then settles `false`. */
  readonly deadline: number;
  /** How long the wait may take from now, in ms: bounds the first pause. */
  readonly timeoutMs: number;
  /** The first pause, in ms; each next one doubles, up to `pollMax`. */
  readonly pollMin: number;
  /** The longest pause between two polls, in ms. */
  readonly pollMax: number;
}

/**
 * A watch for `LockWaiters.wait`: polls the lock key after `pollMin` ms, then at doubling
 * intervals up to `pollMax`, and settles `true` once the key is gone, `false` when a poll
 * finds it still there at the deadline, or with the error of a failed poll. Returns the
 * clean-up that stops the polling.
 */
export function pollLock(poll: LockPoll, settle: SettleWait): () => void {
  const { server, lockMcKey, deadline, pollMax } = poll;
  let delay = poll.pollMin;
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  const check = (): void => {
    server.getBatched(lockMcKey).then(
      (found) => {
        if (settled) return;
        if (found[lockMcKey] === undefined) {
          settle(true);
          return;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          settle(false);
          return;
        }
        timer = setTimeout(check, Math.min(delay, remaining));
        delay = Math.min(delay * 2, pollMax);
      },
      (error: unknown) => {
        settle(false, error);
      },
    );
  };
  timer = setTimeout(check, Math.min(delay, Math.max(0, poll.timeoutMs)));
  delay = Math.min(delay * 2, pollMax);
  return () => {
    settled = true;
    clearTimeout(timer);
  };
}
