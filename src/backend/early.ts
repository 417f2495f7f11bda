/**
 * Early refresh (probabilistic early recomputation, "XFetch"): whether a read of a fresh entry
 * should refresh it before it expires. The decision every backend makes when a
 * {@link ReadRequest} asks for it (`earlyRefresh`); the Redis backend makes the same one inside
 * `read.lua` with the server's clock.
 *
 * @module
 */

import type { ReadRequest } from './backend.js';

/**
 * XFetch: `true` when `now - computeMs × beta × ln(random) >= freshUntil`. As `ln(random)` is
 * negative, each read looks ahead of `now` by a random span that is usually small and rarely
 * long, scaled by how long the value takes to compute: the closer the expiry and the slower
 * the function, the likelier one of the many reads of a hot entry refreshes it in time.
 * @param now - the store's clock, ms since the epoch
 * @param freshUntil - the entry's fresh-until time, ms since the epoch
 * @param computeMs - the header's compute time; `undefined` (not recorded) never refreshes early
 * @param beta - the weight (`earlyRefresh.beta`); `> 1` refreshes earlier, `0` never
 * @param random - uniform in (0, 1]
 */
export function refreshEarly(now: number, freshUntil: number, computeMs: number | undefined, beta: number, random: number): boolean {
  if (computeMs === undefined || !(computeMs > 0) || !(beta > 0) || !(random > 0)) return false;
  return now - computeMs * beta * Math.log(random) >= freshUntil;
}

/**
 * A uniform random number in (0, 1], as {@link refreshEarly} takes it (`Math.random()` can be
 * 0, whose logarithm is -Infinity).
 */
export function earlyRandom(): number {
  return 1 - Math.random();
}

/**
 * Whether a read that found `freshUntil` fresh should refresh it early, by the local clock:
 * only a read that asks for it and may take the lock (the in-process and Memcached stores).
 */
export function wantsEarlyRefresh(request: ReadRequest, freshUntil: number, computeMs: number | undefined, now: number): boolean {
  const beta = request.earlyRefresh;
  if (beta === undefined || request.lockToken === undefined) return false;
  return refreshEarly(now, freshUntil, computeMs, beta, earlyRandom());
}
