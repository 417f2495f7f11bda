/**
 * Keeps the near-cache (`near-cache.ts`) true: server-assisted client-side caching, one
 * {@link TrackedPair} per data connection — the backend's client on a standalone or Sentinel
 * server, each master's connection on a cluster (`tracking-cluster.ts`).
 *
 * - A subscriber connection on the same server speaks RESP2, tells its client id, and
 *   subscribes to `__redis__:invalidate` (on one server it is the connection that carries lock
 *   wake-ups, see `wakeups.ts`).
 * - The data connection (the one that runs the scripts) then sends
 *   `CLIENT TRACKING ON REDIRECT <that id>`: from then on, Redis remembers every key a read
 *   touched (the entry and its tags, read by `read.lua`) and, when one changes — a write, an
 *   invalidation, `clean(tags)`, expiry, eviction — sends its name to the subscriber, once.
 *   A flush of the database sends `null`. Default mode (not BCAST): a process hears only of the
 *   keys it read, so its cost does not grow with the fleet; without NOLOOP, so that this
 *   process' own writes reach its near-cache and its reads in flight too.
 * - Both connections must be on the same server (the client id is the server's): the tracking
 *   command is sent with `INFO server` and `TIME` in the same round trip, and the pair is trusted
 *   only if the `run_id`s match. `TIME` bounds how far the server's clock may be ahead of this
 *   process', so that entries leave memory at their fresh-until time on the server's clock, as
 *   `read.lua` judges it.
 * - Whenever an invalidation may have been missed — either connection closes, the subscriber
 *   reconnects (a new id), a heartbeat goes unanswered — the pair is no longer trusted, and the
 *   near-cache is emptied and bypassed until tracking is established again on the connections
 *   as they are now.
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

/** How long to wait before trying again when turning tracking on failed, by failure, in ms (at most 2 s). */
const RETRY_MS = 100;

/** What a {@link TrackedPair} tells the near-cache tracking that owns it. */
export interface PairEvents {
  /** The pair became trusted, or stopped being trusted. */
  changed(pair: TrackedPair): void;
  /** A heartbeat extended the pair's trust ({@link TrackedPair.until}). */
  extended(pair: TrackedPair): void;
  /** A failure worth the backend's error listener. */
  error(error: unknown): void;
  /** Tracking keeps failing: worth one warning. */
  failing(error: unknown): void;
}

/**
 * One data connection and the subscriber its invalidations are redirected to; see the module
 * documentation. Trusted once tracking is on, redirected to a live subscriber on the same server.
 */
export class TrackedPair {
  /** The data connection. */
  readonly data: Redis;
  readonly #heartbeatMs: number;
  readonly #events: PairEvents;
  #subscriber: Redis | undefined;
  #redirect: { readonly clientId: number; readonly runId: string } | undefined;
  /** Grows on every change of either connection: an answer for an older one is ignored. */
  #generation = 0;
  #trusted = false;
  #until = 0;
  #clockAhead = 0;
  #pingPending = false;
  #missedBeats = 0;
  /** Failed attempts to turn tracking on since the last success. */
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  /**
   * @param data - the data connection
   * @param heartbeatMs - see {@link NearCacheOptions.heartbeatMs}
   * @param events - the owner's listener
   */
  constructor(data: Redis, heartbeatMs: number, events: PairEvents) {
    this.data = data;
    this.#heartbeatMs = heartbeatMs;
    this.#events = events;
    data.on('close', this.#onDataClose);
    data.on('ready', this.#onDataReady);
  }

  /** Whether tracking is on and vouched for. */
  get trusted(): boolean {
    return this.#trusted;
  }

  /** Until when (`Date.now()` time) the last good heartbeat vouches for the pair. */
  get until(): number {
    return this.#until;
  }

  /** How far the server's clock may be ahead of this process', in ms. */
  get clockAhead(): number {
    return this.#clockAhead;
  }

  /** A (re)connected subscriber is subscribed: redirect tracking to it. */
  sessionStarted(subscriber: Redis, clientId: number, runId: string): void {
    this.#subscriber = subscriber;
    this.#redirect = { clientId, runId };
    this.#lost();
    this.#enable();
  }

  /** The subscriber connection closed: invalidations may have been missed. */
  sessionLost(): void {
    this.#redirect = undefined;
    this.#lost();
  }

  /**
   * The heartbeat: a PING on the subscriber and `CLIENT TRACKINGINFO` on the data connection.
   * Both answered, with tracking on and redirected to the subscriber, extend the trust. Tracking
   * found off or redirected elsewhere is turned on again; two beats unanswered replace the
   * subscriber connection (the data connection is left to its owner: while it does not answer,
   * the trust lapses and memory is bypassed).
   */
  beat(): void {
    const subscriber = this.#subscriber;
    const redirect = this.#redirect;
    if (this.#closed || subscriber === undefined || redirect === undefined || !this.#trusted) return;
    if (this.#pingPending) {
      if (++this.#missedBeats >= 2) {
        this.#lost();
        subscriber.disconnect(true);
      }
      return;
    }
    this.#pingPending = true;
    const generation = this.#generation;
    const sentAt = Date.now();
    Promise.all([subscriber.ping(), this.data.call('CLIENT', 'TRACKINGINFO')]).then(
      ([, info]) => {
        if (generation !== this.#generation) return;
        this.#pingPending = false;
        this.#missedBeats = 0;
        if (!trackingRedirectedTo(info, redirect.clientId)) {
          this.#lost();
          this.#enable();
          return;
        }
        this.#until = sentAt + 2 * this.#heartbeatMs;
        this.#events.extended(this);
      },
      () => {
        if (generation === this.#generation) this.#pingPending = false;
      },
    );
  }

  /** Stops listening and trying; no longer trusted. Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.data.off('close', this.#onDataClose);
    this.data.off('ready', this.#onDataReady);
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
    this.#missedBeats = 0;
    if (!this.#trusted) return;
    this.#trusted = false;
    this.#until = 0;
    this.#events.changed(this);
  }

  /** Turns tracking on, redirected to the subscriber, once both connections are ready; then trusted. */
  #enable(): void {
    const redirect = this.#redirect;
    const data = this.data;
    if (this.#closed || redirect === undefined) return;
    if (data.status !== 'ready') {
      // The data connection's `ready` comes back here; a lazy one is connected now.
      if (data.status === 'wait') data.connect().catch(() => undefined);
      return;
    }
    this.#lost();
    const generation = this.#generation;
    const sentAt = Date.now();
    Promise.all([
      data.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(redirect.clientId)),
      data.info('server'),
      data.time(),
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
        this.#clockAhead = serverMs - sentAt + 1;
        this.#until = sentAt + 2 * this.#heartbeatMs;
        this.#trusted = true;
        this.#events.changed(this);
      },
      (error: unknown) => {
        if (generation !== this.#generation || this.#closed) return;
        // Often a reconnection seen on one connection before the other (the redirect target
        // is gone); else the server refuses tracking (an ACL, Redis < 6): warned about.
        this.#events.error(error);
        this.#retryLater(generation, error);
      },
    );
  }

  /** Tries {@link TrackedPair.#enable} again, later and later (at most every 2 s); warns after 5 failures in a row. */
  #retryLater(generation: number, error: unknown): void {
    const failures = ++this.#failures;
    if (failures === 5) this.#events.failing(error);
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => {
      if (generation === this.#generation) this.#enable();
    }, Math.min(RETRY_MS * failures, 2000));
    this.#retry.unref();
  }
}

/** What the backend holds of its near-cache, on one server or a cluster. */
export interface NearTracker {
  /** The entries held in memory. */
  readonly cache: NearCache;
  /** Opens what tracking needs and starts the heartbeat, once: on the backend's first read. */
  start(): void;
  /** Stops everything and empties the near-cache for good. Idempotent. */
  close(): void;
}

/**
 * The near-cache of a backend on one server (standalone or Sentinel): one {@link TrackedPair},
 * whose subscriber is the lock wake-ups' connection.
 */
export class NearTracking implements NearTracker, InvalidationListener, PairEvents {
  readonly cache: NearCache;
  readonly #pair: TrackedPair;
  readonly #heartbeatMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #open: () => void;
  #heartbeat: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  #warned = false;

  /**
   * @param client - the data connection (a standalone or Sentinel client)
   * @param settings - the near-cache's settings
   * @param onError - the backend's error listener
   * @param open - opens the subscriber connection (the lock wake-ups' `open`)
   */
  constructor(client: Redis, settings: NearCacheSettings, onError: (error: unknown) => void, open: () => void) {
    this.cache = new NearCache(settings);
    this.#heartbeatMs = settings.heartbeatMs;
    this.#onError = onError;
    this.#open = open;
    this.#pair = new TrackedPair(client, settings.heartbeatMs, this);
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#heartbeat = setInterval(() => {
      this.#pair.beat();
    }, this.#heartbeatMs);
    this.#heartbeat.unref();
    this.#open();
  }

  sessionStarted(subscriber: Redis, clientId: number, runId: string): void {
    this.#pair.sessionStarted(subscriber, clientId, runId);
  }

  sessionLost(): void {
    this.#pair.sessionLost();
  }

  invalidated(keys: Buffer[] | null): void {
    this.cache.invalidated(keys === null ? null : keys.map((key) => key.toString('utf8')));
  }

  unavailable(error: unknown): void {
    this.#onError(error);
    this.failing(error);
  }

  changed(pair: TrackedPair): void {
    if (pair.trusted) this.cache.trust(pair.until, pair.clockAhead);
    else this.cache.distrust();
  }

  extended(pair: TrackedPair): void {
    this.cache.extend(pair.until);
  }

  error(error: unknown): void {
    this.#onError(error);
  }

  failing(error: unknown): void {
    if (this.#warned) return;
    this.#warned = true;
    warnTrackingOff(error);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#pair.close();
    this.cache.distrust();
  }
}

/** The one warning of a near-cache whose tracking cannot be turned on. */
export function warnTrackingOff(error: unknown): void {
  const reason = error instanceof Error ? error.message : String(error);
  process.emitWarning(`hermes near-cache: tracking could not be turned on (${reason}); every read goes to Redis until it is`, {
    type: 'HermesWarning',
    code: 'NEAR_CACHE_TRACKING',
  });
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
