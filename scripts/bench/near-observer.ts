/**
 * The observing side of the near-cache invalidation benchmark (`near.ts`): a Hermes with the
 * near-cache holding one tagged entry, and the moment its near-cache drops that entry.
 *
 * The moment is taken where the near-cache hears of the change: `NearCache.prototype.invalidated`
 * (called by the tracking subscriber for each `__redis__:invalidate` message) is wrapped, in
 * this process only, so that the clock is read right after the original has dropped the entry.
 * The clock is `process.hrtime.bigint()` (CLOCK_MONOTONIC, shared by every process of the
 * machine), so a time taken here compares with one taken in another process.
 *
 * Run as a forked process (`near-observer.ts <redis port> <prefix>`), it answers the parent's
 * `{ type: 'arm' }` with `{ type: 'armed' }` once the entry is served from its near-cache, and
 * reports each drop as `{ type: 'dropped', at }` (nanoseconds, as a string).
 */

import { pathToFileURL } from 'node:url';
import { Hermes } from '../../src/index.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { NearCache } from '../../src/backend/redis/near-cache.js';

/** The tag of the observed entry. */
export const OBSERVED_TAG = 'watched';

type Listener = (keys: readonly string[] | null, at: bigint) => void;
const listeners = new Set<Listener>();
let patched = false;

/** Wraps `NearCache.prototype.invalidated` once: the listeners hear every message after it was applied. */
function patchNearCache(): void {
  if (patched) return;
  patched = true;
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called with its own `this` below
  const original = NearCache.prototype.invalidated;
  NearCache.prototype.invalidated = function invalidated(this: NearCache, keys: readonly string[] | null): void {
    original.call(this, keys);
    const at = process.hrtime.bigint();
    for (const listener of listeners) listener(keys, at);
  };
}

/** One Hermes with the near-cache, one tagged entry, and the drops of that entry. */
export class NearObserver {
  readonly #cache: Hermes<unknown>;
  readonly #fn: (id: number) => Promise<unknown>;
  readonly #tagKey: string;
  #onDrop: ((at: bigint) => void) | undefined;
  readonly #listener: Listener;

  /**
   * @param port - redis-server port on 127.0.0.1
   * @param prefix - the key prefix, shared with the cleaner
   */
  constructor(port: number, prefix: string) {
    patchNearCache();
    this.#cache = new Hermes(RedisBackend, { host: '127.0.0.1', port, prefix, ttl: 3600, nearCache: true }) as Hermes<unknown>;
    this.#fn = this.#cache.wrap(async (id: number) => ({ id, text: 'x'.repeat(60) }), { name: 'observed', tags: [OBSERVED_TAG] });
    this.#tagKey = new Hermes(undefined, { prefix }).keyspace.tagKey(OBSERVED_TAG);
    this.#listener = (keys, at) => {
      if (keys !== null && !keys.includes(this.#tagKey)) return;
      const onDrop = this.#onDrop;
      if (onDrop === undefined) return;
      if ((this.#cache.stats().near?.entries ?? 0) !== 0) throw new Error('the near-cache kept the entry after its tag changed');
      this.#onDrop = undefined;
      onDrop(at);
    };
    listeners.add(this.#listener);
  }

  /**
   * Reads the entry until it is served from the near-cache (after a clean, the first read
   * recomputes, its own write draws an invalidation, the next read fills); then the next drop
   * is reported to `onDrop`.
   */
  async arm(onDrop: (at: bigint) => void): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const before = this.#cache.stats().near?.hits ?? 0;
      await this.#fn(0);
      if ((this.#cache.stats().near?.hits ?? 0) > before) break;
      if (attempt > 1000) throw new Error('the entry never reached the near-cache');
      if (attempt > 3) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    this.#onDrop = onDrop;
  }

  /** Closes the connections. */
  async close(): Promise<void> {
    listeners.delete(this.#listener);
    await this.#cache.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const observer = new NearObserver(Number(process.argv[2]), process.argv[3] ?? 'nearprop');
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'arm') {
      observer
        .arm((at) => process.send?.({ type: 'dropped', at: String(at) }))
        .then(() => process.send?.({ type: 'armed' }))
        .catch((error: unknown) => {
          console.error(error);
          process.exit(1);
        });
    } else if (message.type === 'exit') {
      void observer.close().then(() => process.exit(0));
    }
  });
  process.send?.({ type: 'ready' });
}
