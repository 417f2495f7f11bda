/**
 * Keeps the near-cache (`near-cache.ts`) true: server-assisted client-side caching on the
 * backend's two connections.
 *
 * - The subscriber connection (the one that carries lock wake-ups, see `wakeups.ts`) speaks
 *   RESP2, tells its client id, and subscribes to `__redis__:invalidate`.
 * - The data connection (the one that runs the scripts) then sends
 *   `CLIENT TRACKING ON REDIRECT <that id>`: from then on, Redis remembers every key a read
 *   touched (the entry and its tags, read by `read.lua`) and, when one changes — a write, an
 *   invalidation, `clean(tags)`, expiry, eviction — sends its name to the subscriber, once.
 *   A flush of the database sends `null`. Default mode (not BCAST): a process hears only of the
 *   keys it read, so its cost does not grow with the fleet; without NOLOOP, so that this
 *   process' own writes reach its near-cache and its reads in flight too.
 * - Both connections must be on the same server (the client id is the server's): the tracking
 *   command is sent with `INFO server` and `TIME` in the same round trip, and the near-cache is
 *   trusted only if the `run_id`s match. `TIME` bounds how far the server's clock may be ahead
 *   of this process', so that entries leave memory at their fresh-until time on the server's
 *   clock, as `read.lua` judges it.
 * - Whenever an invalidation may have been missed — either connection closes, the subscriber
 *   reconnects (a new id), a heartbeat goes unanswered — the near-cache is emptied and bypassed
 *   until tracking is established again on the connections as they are now.
 * - The heartbeat: every `heartbeatMs`, a PING on the subscriber and `CLIENT TRACKINGINFO` on
 *   the data connection. The PING's answer proves that every invalidation sent before it has
 *   arrived, TRACKINGINFO that the server still tracks this connection's reads for that
 *   subscriber (a server that dropped the data connection, or a broken redirect, shows there);
 *   entries are served only until twice the heartbeat after the last good beat was sent, so
 *   that a silent network failure of either connection cannot make memory serve a changed
 *   value for longer.
 *
 * @module
 */

import type { Redis } from 'ioredis';
import { NearCache, type NearCacheSettings } from './near-cache.js';
import { type InvalidationListener, runIdOf } from './wakeups.js';

/** How long to wait before trying again when the two connections are on different servers (a failover), in ms. */
const RETRY_MS = 100;

/** The near-cache of a backend and the tracking that keeps it true; see the module documentation. */
export class NearTracking implements InvalidationListener {
  /** The entries held in memory. */
  readonly cache: NearCache;
  readonly #client: Redis;
  readonly #heartbeatMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #open: () => void;
  #started = false;
  #closed = false;
  #subscriber: Redis | undefined;
  /** Where tracking must be redirected: the subscriber's id on its server. */
  #redirect: { readonly clientId: number; readonly runId: string } | undefined;
  /** Grows on every change of either connection: an answer for an older one is ignored. */
  #generation = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #pingPending = false;
  #missedPings = 0;
  /** Failed attempts to turn tracking on since the last success. */
  #failures = 0;
  #warned = false;

  /**
   * @param client - the data connection (a standalone or Sentinel client)
   * @param options - the near-cache's bounds and heartbeat
   * @param onError - the backend's error listener
   * @param open - opens the subscriber connection (the lock wake-ups' `open`)
   */
  constructor(
    client: Redis,
    options: NearCacheSettings,
    onError: (error: unknown) => void,
    open: () => void,
  ) {
    this.cache = new NearCache(options);
    this.#client = client;
    this.#heartbeatMs = options.heartbeatMs;
    this.#onError = onError;
    this.#open = open;
  }

  /** Opens the subscriber and starts the heartbeat, once: on the backend's first read. */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#client.on('close', this.#onDataClose);
    this.#client.on('ready', this.#onDataReady);
    this.#heartbeat = setInterval(this.#beat, this.#heartbeatMs);
    this.#heartbeat.unref();
    this.#open();
  }

  sessionStarted(subscriber: Redis, clientId: number, runId: string): void {
    this.#subscriber = subscriber;
    this.#redirect = { clientId, runId };
    this.#lost();
    this.#enable();
  }

  sessionLost(): void {
    this.#redirect = undefined;
    this.#lost();
  }

  invalidated(keys: Buffer[] | null): void {
    this.cache.invalidated(keys === null ? null : keys.map((key) => key.toString('utf8')));
  }

  unavailable(error: unknown): void {
    this.#onError(error);
    this.#warnOnce(error);
  }

  /** Stops the heartbeat and empties the near-cache for good. Idempotent. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    clearTimeout(this.#retry);
    this.#client.off('close', this.#onDataClose);
    this.#client.off('ready', this.#onDataReady);
    this.#lost();
  }

  readonly #onDataClose = (): void => {
    this.#lost();
  };

  readonly #onDataReady = (): void => {
    this.#enable();
  };

  /** A connection changed: nothing heard so far can be vouched for. */
  #lost(): void {
    this.#generation++;
    this.#pingPending = false;
    this.#missedPings = 0;
    this.cache.distrust();
  }

  /** Turns tracking on, redirected to the subscriber, once both connections are ready; then trusts the near-cache. */
  #enable(): void {
    const redirect = this.#redirect;
    const client = this.#client;
    if (this.#closed || redirect === undefined) return;
    if (client.status !== 'ready') {
      // The data connection's `ready` comes back here; a lazy one is connected now.
      if (client.status === 'wait') client.connect().catch(() => undefined);
      return;
    }
    const generation = ++this.#generation;
    this.cache.distrust();
    const sentAt = Date.now();
    Promise.all([
      client.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(redirect.clientId)),
      client.info('server'),
      client.time(),
    ]).then(
      ([, info, time]) => {
        if (generation !== this.#generation || this.#closed) return;
        if (runIdOf(info) !== redirect.runId) {
          // The connections reached different servers (a failover under way): try again.
          this.#retryLater(generation, new Error('the data and subscriber connections are on different servers'));
          return;
        }
        this.#failures = 0;
        // The server read its clock after `sentAt`: it is at most this far ahead of ours.
        const serverMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
        this.cache.trust(sentAt + 2 * this.#heartbeatMs, serverMs - sentAt + 1);
      },
      (error: unknown) => {
        if (generation !== this.#generation || this.#closed) return;
        this.#onError(error);
        // Often a reconnection seen on one connection before the other (the redirect target
        // is gone); else the server refuses tracking (an ACL, Redis < 6): warned about.
        this.#retryLater(generation, error);
      },
    );
  }

  /** Tries {@link NearTracking.#enable} again, later and later (at most every 2 s); warns once after 5 failures in a row. */
  #retryLater(generation: number, error: unknown): void {
    const failures = ++this.#failures;
    if (failures === 5) this.#warnOnce(error);
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      if (generation === this.#generation) this.#enable();
    }, Math.min(RETRY_MS * failures, 2000));
    this.#retry.unref();
  }

  /**
   * The heartbeat: a PING on the subscriber and `CLIENT TRACKINGINFO` on the data connection.
   * Both answered, with tracking on and redirected to the subscriber, extend the trust: every
   * invalidation sent before the ping has arrived, and the server still tracks this process'
   * reads for it. Tracking found off or redirected elsewhere is turned on again; two beats
   * unanswered replace the subscriber connection (the data connection is left to its owner:
   * while it does not answer, the trust lapses and memory is bypassed).
   */
  readonly #beat = (): void => {
    const subscriber = this.#subscriber;
    const redirect = this.#redirect;
    if (this.#closed || subscriber === undefined || redirect === undefined || !this.cache.trusted) return;
    if (this.#pingPending) {
      if (++this.#missedPings >= 2) {
        this.#lost();
        subscriber.disconnect(true);
      }
      return;
    }
    this.#pingPending = true;
    const generation = this.#generation;
    const sentAt = Date.now();
    Promise.all([subscriber.ping(), this.#client.call('CLIENT', 'TRACKINGINFO')]).then(
      ([, info]) => {
        if (generation !== this.#generation) return;
        this.#pingPending = false;
        this.#missedPings = 0;
        if (!trackingRedirectedTo(info, redirect.clientId)) {
          this.#lost();
          this.#enable();
          return;
        }
        this.cache.extend(sentAt + 2 * this.#heartbeatMs);
      },
      () => {
        if (generation === this.#generation) this.#pingPending = false;
      },
    );
  };

  #warnOnce(error: unknown): void {
    if (this.#warned) return;
    this.#warned = true;
    const reason = error instanceof Error ? error.message : String(error);
    process.emitWarning(`hermes near-cache: tracking could not be turned on (${reason}); every read goes to Redis until it is`, {
      type: 'HermesWarning',
      code: 'NEAR_CACHE_TRACKING',
    });
  }
}

/**
 * Whether a `CLIENT TRACKINGINFO` reply says tracking is on, redirected to `clientId`, and not
 * broken (flat array or map, as the client's protocol gives it).
 */
export function trackingRedirectedTo(reply: unknown, clientId: number): boolean {
  let flags: unknown;
  let redirect: unknown;
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) {
      const field = String(reply[i]);
      if (field === 'flags') flags = reply[i + 1];
      else if (field === 'redirect') redirect = reply[i + 1];
    }
  } else if (reply !== null && typeof reply === 'object') {
    ({ flags, redirect } = reply as { flags?: unknown; redirect?: unknown });
  }
  if (!Array.isArray(flags)) return false;
  const names = flags.map(String);
  return names.includes('on') && !names.includes('broken_redirect') && Number(redirect) === clientId;
}
