/**
 * The measuring helpers every benchmark shares.
 */

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** The `p`-th percentile (0–100, nearest rank) of a non-empty list. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] as number;
}

/** A number for the tables: thousands separated, `digits` decimals. */
export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Calls per second of `body` run by `concurrency` loops for `ms` milliseconds. */
export async function throughput(concurrency: number, ms: number, body: (i: number) => Promise<unknown>): Promise<number> {
  let calls = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      let i = worker * 97;
      while (performance.now() < end) {
        await body(i++);
        calls++;
      }
    }),
  );
  return (calls * 1000) / ms;
}

/**
 * Throughput of several subjects at one concurrency: a warm-up round each, then `rounds` rounds
 * interleaved (round r of every subject before round r+1 of any, so machine noise hits all
 * alike); the median calls per second of each, in the subjects' order.
 */
export async function interleavedThroughput(
  runs: ReadonlyArray<(i: number) => Promise<unknown>>,
  concurrency: number,
  ms: number,
  rounds: number,
): Promise<number[]> {
  const samples = runs.map(() => [] as number[]);
  for (const run of runs) await throughput(concurrency, ms, run); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (let s = 0; s < runs.length; s++) (samples[s] as number[]).push(await throughput(concurrency, ms, runs[s] as (i: number) => Promise<unknown>));
  }
  return samples.map((xs) => median(xs));
}
