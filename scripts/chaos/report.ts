/**
 * Figures shared by the chaos scripts: percentiles, and the window a near-cache process is
 * allowed to serve a value after another process' acknowledged invalidation.
 *
 * @module
 */

import { keepWorst, type LateReads } from './load.js';

/**
 * How long after another process' invalidation was acknowledged a near-cache process may still
 * serve the old value: it hears of the invalidation one network hop later (Redis writes the
 * message to its subscriber as it answers the invalidating caller), plus the time its event loop
 * takes to read that socket. Counted beyond how late the caller's own thread woke for the call:
 * a thread the machine holds up reads no socket either, and serves what it holds as soon as it
 * runs again, before the poll phase reads the message.
 *
 * Chosen on measurements (Nov 2026; 2 cores shared with other jobs at load average 5–12, with
 * and without a `node -e 'for(;;);'` beside; loopback), 24 chaos runs: raw lags up to 210 ms
 * when the machine was at load average 10–12, always in a thread that had itself just woken
 * that late (event-loop delays of 100–670 ms were seen in every process then, plain ones too);
 * beyond the caller's own wake delay, at most 32 ms. A thread whose callers chain near hits
 * reads no socket until they all wait for I/O: there only the trust bound, 2 × `heartbeatMs`,
 * holds (up to 479 ms with `heartbeatMs: 250` in `npm run test:chaos -- --between=chained`;
 * see also `scripts/join-window.ts`).
 */
export const WINDOW_ALLOWANCE_MS = 50;

/** The `p`th percentile of `values` (nearest rank), formatted; `–` when empty. */
export function pct(values: readonly number[], p: number, digits = 1): string {
  if (values.length === 0) return '–';
  const sorted = Float64Array.from(values).sort();
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return (sorted[index] as number).toFixed(digits);
}

/** Every lag of a set of late reads. */
export function allLags(late: LateReads): number[] {
  return [...late.near, ...late.joined, ...late.backend];
}

/** `n (near a / joined b / backend c)`. */
export function bySource(late: LateReads): string {
  return `${allLags(late).length} (near ${late.near.length} / joined ${late.joined.length} / backend ${late.backend.length})`;
}

/** `p50 / p99 / max ms`. */
export function lagFigures(lags: readonly number[]): string {
  return lags.length === 0 ? '–' : `${pct(lags, 50, 2)} / ${pct(lags, 99)} / ${pct(lags, 100)} ms`;
}

/** Several sets of late reads, merged (the examples: the largest lags). */
export function mergeLate(sets: readonly LateReads[]): LateReads {
  return {
    near: sets.flatMap((late) => late.near),
    joined: sets.flatMap((late) => late.joined),
    backend: sets.flatMap((late) => late.backend),
    acks: sets.flatMap((late) => late.acks),
    examples: sets.flatMap((late) => late.examples).reduce<string[]>((worst, example) => {
      keepWorst(worst, Number(/, ([\d.]+) ms late\)/.exec(example)?.[1] ?? 0), example);
      return worst;
    }, []),
  };
}
