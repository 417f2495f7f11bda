/**
 * The one check of a Redis URL, shared by the backend's `url` option and the CLI's `--url`:
 * `redis://` or `rediss://` (TLS), parsable as a URL. Imports nothing from ioredis, so that the
 * CLI can check its argument before loading it.
 *
 * @module
 */

/** The URL schemes a Redis URL may have: plain and TLS. */
export const REDIS_URL_SCHEMES: readonly string[] = ['redis:', 'rediss:'];

/**
 * What is wrong with `url` as a Redis URL, as the end of a sentence about it ("is not a URL…",
 * "must start with…"); `undefined` when it is a `redis://` or `rediss://` URL.
 */
export function redisUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL; expected redis://[user:password@]host[:port][/db] or rediss://…';
  }
  if (!REDIS_URL_SCHEMES.includes(parsed.protocol) || !url.includes('//')) return 'must start with redis:// or rediss://';
  return undefined;
}
