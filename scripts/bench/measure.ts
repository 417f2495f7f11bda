/**
 * The measuring helpers every benchmark shares.
 */

/** The median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
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
