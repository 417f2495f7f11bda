/**
 * The stale policy as a pure decision: what to do with a value past its fresh time that is
 * still kept for grace or stale-while-revalidate.
 *
 * @module
 */

/**
 * - `serve`: another caller holds the lock (and refreshes the entry): serve the stale value now;
 * - `revalidate`: this caller holds the lock, within stale-while-revalidate: serve the stale
 *   value now and refresh in the background;
 * - `recompute`: this caller holds the lock, within grace only: recompute now, and serve the
 *   stale value only if the function fails or passes its soft timeout.
 */
export type StaleAction = 'serve' | 'revalidate' | 'recompute';

/**
 * Decides what a caller does with a stale value.
 * @param locked - whether this caller's read took the entry's lock
 * @param freshUntil - when the value stopped being fresh (ms since the epoch)
 * @param now - the current time (ms since the epoch)
 * @param swrMs - the function's stale-while-revalidate window
 */
export function staleAction(locked: boolean, freshUntil: number, now: number, swrMs: number): StaleAction {
  if (!locked) return 'serve';
  return now - freshUntil <= swrMs ? 'revalidate' : 'recompute';
}
