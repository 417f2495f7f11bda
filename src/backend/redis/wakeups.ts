/**
 * Lock wake-ups of the Redis backend, by pub/sub on a channel of each lock, named as the lock's
 * stored key: a process subscribes to it only while it has waiters for that lock (one
 * subscription shared by them, dropped when the last one leaves), and the scripts that delete
 * a lock publish on it only when somebody listens (`PUBSUB NUMSUB`), so a release reaches the
 * waiters of that lock and nobody else, and an uncontended miss publishes nothing. On a cluster
 * the subscriptions are sharded (`SSUBSCRIBE`, one connection per master that holds a waited
 * lock, ioredis' `shardedSubscribers`) and the scripts `SPUBLISH`, so that a release stays on
 * the shard of its entry; a server without sharded pub/sub (before Redis 7) refuses
 * `SSUBSCRIBE` and gets classic `SUBSCRIBE`s, which its scripts' classic `PUBLISH` reaches.
 * One subscriber connection per backend (a `duplicate()` of the client), opened on the first
 * wait, dispatches the messages to the waiters of this process.
 *
 * A release can be missed: published before the subscription (the first waiter of a lock then
 * checks that the lock still exists), between the read that found the lock and the wait (the
 * releases of the last seconds are remembered), while the subscriber was reconnecting or, on a
 * cluster, while ioredis moved the subscription to another node (every waiter is then woken,
 * and reads again).
 *
 * @module
 */

import { Cluster, type Redis } from 'ioredis';
import { RedisBackendClosedError } from './errors.js';

/** The channel Redis sends a RESP2 redirect target the keys that tracking clients must drop. */
export const INVALIDATE_CHANNEL = '__redis__:invalidate';

/**
 * What the near-cache needs from the subscriber connection: it is opened with RESP2 (ioredis
 * drops RESP3 `invalidate` pushes) and without ioredis' automatic resubscription, so that each
 * new connection first tells its client id (a subscribed RESP2 connection can no longer ask),
 * then subscribes to {@link INVALIDATE_CHANNEL} and the release channels of the locks waited for.
 */
export interface InvalidationListener {
  /** A (re)connected subscriber is subscribed: tracking may be redirected to `clientId` on the server `runId`. */
  sessionStarted(subscriber: Redis, clientId: number, runId: string): void;
  /** The subscriber connection closed: invalidations may have been missed. */
  sessionLost(): void;
  /** An invalidation message: the keys, or `null` for a flush of everything. */
  invalidated(keys: Buffer[] | null): void;
  /** The server refused what tracking needs on the subscriber (an ACL): the near-cache stays off. */
  unavailable(error: unknown): void;
}

type Waiter = (woken: boolean) => void;

/** A subscription to one lock's channel, shared by the waiters of this process. */
interface Subscription {
  ready: Promise<void>;
  subscribed: boolean;
  /** On a cluster: taken with `SSUBSCRIBE` (else classic `SUBSCRIBE`, to be undone likewise). */
  sharded: boolean;
}

/**
 * Read misses of one lock that did not take it, remembered until their callers wait for the lock
 * (several calls of one process may read the same lock before any of them waits).
 */
interface PendingWait {
  /** When the earliest of them was sent (`Date.now()`): releases seen since then count as a wake-up. */
  sentAt: number;
  /** When the lock expires by itself, by the earliest report of the reads (`Date.now()` time; `Infinity`: no expiry). */
  expiresAt: number;
  /** The reads whose callers have not waited yet. */
  reads: number;
}

/** How long release messages are remembered for the missed-wake-up check, in ms (×2 at most). */
const RELEASE_MEMORY_MS = 10_000;
const MAX_PENDING_WAITS = 10_000;

/** The waiters of one backend and its subscriber connection. */
export class LockWakeups {
  readonly #client: Redis | Cluster;
  readonly #onError: (error: unknown) => void;
  /** Whether the lock (its stored key) still exists; rejects when the backend cannot ask. */
  readonly #lockExists: (lockKey: string) => Promise<number>;
  #closed = false;
  #subscriber: Redis | Cluster | undefined;
  #subscriberReadies = 0;
  #nodeTroubleAt = 0;
  /** The channels subscribed to (or being), one per lock this process waits for. */
  readonly #subscriptions = new Map<string, Subscription>();
  /** Unsubscriptions in flight: a new subscription to the channel is sent after it. */
  readonly #unsubscribing = new Map<string, Promise<void>>();
  /** On a cluster whose server refused `SSUBSCRIBE` (before Redis 7): classic subscriptions. */
  #classic = false;
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #pendingWaits = new Map<string, PendingWait>();
  #released = new Map<string, number>();
  #releasedBefore = new Map<string, number>();
  #releasedRotatedAt = Date.now();
  readonly #tracking: InvalidationListener | undefined;
  /** With tracking: the current connection's handshake (client id, subscriptions). */
  #session: Promise<void> | undefined;

  /**
   * @param client - the backend's client, duplicated for the subscriber
   * @param onError - the subscriber's error listener
   * @param lockExists - whether a lock still exists (EXISTS on the backend's client)
   * @param tracking - the near-cache's listener: the subscriber also receives invalidations
   */
  constructor(
    client: Redis | Cluster,
    onError: (error: unknown) => void,
    lockExists: (lockKey: string) => Promise<number>,
    tracking?: InvalidationListener,
  ) {
    this.#client = client;
    this.#onError = onError;
    this.#lockExists = lockExists;
    this.#tracking = tracking;
  }

  /** Opens the subscriber connection now (the near-cache needs it before the first wait). */
  open(): void {
    if (!this.#closed && this.#subscriber === undefined) this.#openSubscriber();
  }

  /**
   * After a read that found the lock taken by another caller: remembered for its wait. Reads of
   * the same lock share one record, which keeps the earliest read's time (a release seen since
   * wakes each of their waits) until every one of them has waited.
   * @param lockTtl - the lock's remaining life reported by the read, in ms (-2: gone, -1: no expiry)
   */
  rememberMiss(lockKey: string, sentAt: number, lockTtl: number): void {
    const expiresAt = lockTtl >= 0 ? sentAt + lockTtl : lockTtl === -1 ? Infinity : sentAt;
    const known = this.#pendingWaits.get(lockKey);
    if (known !== undefined && sentAt - known.sentAt < RELEASE_MEMORY_MS) {
      known.sentAt = Math.min(known.sentAt, sentAt);
      known.expiresAt = Math.min(known.expiresAt, expiresAt);
      known.reads++;
      return;
    }
    if (this.#pendingWaits.size >= MAX_PENDING_WAITS) this.#pendingWaits.clear();
    this.#pendingWaits.set(lockKey, { sentAt, expiresAt, reads: 1 });
  }

  /**
   * Waits for a release of the lock (its stored key) published on its channel (named as the
   * key), or `timeoutMs`, or the lock's expiry (as reported by the read that found it taken),
   * whichever comes first; see {@link RedisBackend.waitForRelease}.
   */
  wait(lockKey: string, timeoutMs: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    const pending = this.#pendingWaits.get(lockKey);
    if (pending !== undefined && --pending.reads <= 0) this.#pendingWaits.delete(lockKey);
    const now = Date.now();
    const since = pending?.sentAt ?? now;
    if (this.#releasedSince(lockKey, since)) return Promise.resolve(true);
    let delay = Math.max(0, timeoutMs);
    let expires = false; // the wait ends with the lock's own expiry: that frees it too
    if (pending !== undefined) {
      const left = pending.expiresAt - now;
      if (left <= 0) return Promise.resolve(true); // gone, or expired, already
      if (left <= delay) {
        delay = left;
        expires = true;
      }
    }
    return new Promise<boolean>((resolve, reject) => {
      let waiters = this.#waiters.get(lockKey);
      if (!waiters) this.#waiters.set(lockKey, (waiters = new Set()));
      const set = waiters;
      let settled = false;
      const finish = (woken: boolean, error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(lockKey) === set) {
          this.#waiters.delete(lockKey);
          this.#unsubscribe(lockKey);
        }
        if (error === undefined) resolve(woken);
        else reject(error);
      };
      const done: Waiter = (woken) => {
        finish(woken);
      };
      const timer = setTimeout(() => {
        finish(expires);
      }, delay);
      set.add(done);
      let subscription: Subscription;
      try {
        subscription = this.#subscribe(lockKey);
      } catch (error) {
        finish(false, error);
        return;
      }
      if (subscription.subscribed) return;
      // Not subscribed when the lock was seen: a release may have been published unseen.
      subscription.ready.then(
        () => this.#lockExists(lockKey),
        (error: unknown) => {
          finish(false, error);
          return 1;
        },
      ).then(
        (exists) => {
          if (exists === 0) finish(true);
        },
        (error: unknown) => {
          finish(false, error);
        },
      );
    });
  }

  /**
   * Wakes the waiters of a lock deleted without a script (`clear()`): publishes on its channel,
   * sharded on a cluster (classic on a server before Redis 7).
   */
  async publish(lockKey: string): Promise<void> {
    const client = this.#client;
    if (!(client instanceof Cluster)) {
      await client.publish(lockKey, lockKey);
      return;
    }
    try {
      await client.spublish(lockKey, lockKey);
    } catch (error) {
      if (!isUnknownCommand(error)) throw error;
      await client.publish(lockKey, lockKey);
    }
  }

  /** Ends every wait with `false` and disconnects the subscriber (which keeps its error listener). */
  close(): void {
    this.#closed = true;
    for (const waiters of [...this.#waiters.values()]) for (const done of [...waiters]) done(false);
    this.#waiters.clear();
    this.#pendingWaits.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    this.#subscriptions.clear();
    this.#unsubscribing.clear();
    if (subscriber) subscriber.disconnect();
    this.#client.off('-node', this.#onNodeTrouble);
    this.#client.off('node error', this.#onNodeTrouble);
  }

  /** The subscription to a lock's channel: the one of this process, or a new one. */
  #subscribe(channel: string): Subscription {
    const existing = this.#subscriptions.get(channel);
    if (existing) return existing;
    const subscriber = this.#subscriber ?? this.#openSubscriber();
    // The last waiter's unsubscription may still be on its way: subscribing before it arrives
    // would be undone by it.
    const before = this.#unsubscribing.get(channel);
    const subscription: Subscription = { subscribed: false, sharded: false, ready: Promise.resolve() };
    const send = (): Promise<void> => this.#subscribeOn(subscriber, channel, subscription).then(() => {
      subscription.subscribed = true;
    });
    subscription.ready = before === undefined ? send() : before.then(send);
    subscription.ready.catch(() => {
      // Let a later wait try again.
      if (this.#subscriptions.get(channel) === subscription) this.#subscriptions.delete(channel);
    });
    this.#subscriptions.set(channel, subscription);
    return subscription;
  }

  /**
   * Subscribes to a release channel: at once, or with tracking after the connection's
   * handshake; on a cluster with `SSUBSCRIBE`, or `SUBSCRIBE` where the server refuses it.
   */
  async #subscribeOn(subscriber: Redis | Cluster, channel: string, subscription: Subscription): Promise<void> {
    if (subscriber instanceof Cluster) {
      if (!this.#classic) {
        try {
          await subscriber.ssubscribe(channel);
          subscription.sharded = true;
          return;
        } catch (error) {
          if (!isUnknownCommand(error)) throw error;
          this.#classic = true; // before Redis 7, or not granted: the scripts PUBLISH, classically
        }
      }
      await subscriber.subscribe(channel);
      return;
    }
    if (this.#tracking !== undefined) {
      // The near-cache's subscriber: only on a connection whose handshake is done. A SUBSCRIBE
      // queued while it reconnects would reach the next connection before its CLIENT ID, which a
      // subscribed RESP2 connection may no longer send (tracking would stay off). That handshake
      // subscribes every channel still waited for, this one included, and wakes every waiter.
      const session = this.#session;
      if (session !== undefined) await session;
      if (subscriber.status !== 'ready' || this.#session !== session) return;
    }
    await subscriber.subscribe(channel);
  }

  /** The last waiter of a lock has left: drops the subscription to its channel. */
  #unsubscribe(channel: string): void {
    const subscription = this.#subscriptions.get(channel);
    const subscriber = this.#subscriber;
    if (subscription === undefined || subscriber === undefined || this.#closed) return;
    this.#subscriptions.delete(channel);
    // The near-cache's subscriber resubscribes by hand on its next connection, to the channels
    // still waited for: a lost connection has nothing to undo (a command queued for the next
    // one would reach it before its handshake).
    if (this.#tracking !== undefined && !(subscriber instanceof Cluster) && subscriber.status !== 'ready') return;
    const unsubscribe = (): Promise<unknown> => {
      // As for SUBSCRIBE: nothing queued for the near-cache subscriber's next connection.
      if (this.#tracking !== undefined && !(subscriber instanceof Cluster) && subscriber.status !== 'ready') return Promise.resolve();
      return subscription.sharded && subscriber instanceof Cluster ? subscriber.sunsubscribe(channel) : subscriber.unsubscribe(channel);
    };
    const done: Promise<void> = subscription.ready
      .then(unsubscribe, () => undefined) // never subscribed: nothing to undo
      .then(
        () => undefined,
        () => undefined, // the connection was lost: its subscriptions went with it
      )
      .finally(() => {
        if (this.#unsubscribing.get(channel) === done) this.#unsubscribing.delete(channel);
      });
    this.#unsubscribing.set(channel, done);
  }

  #openSubscriber(): Redis | Cluster {
    if (this.#closed) throw new RedisBackendClosedError();
    const client = this.#client;
    const tracking = this.#tracking;
    if (tracking !== undefined && !(client instanceof Cluster)) return this.#openTrackingSubscriber(client, tracking);
    const subscriber: Redis | Cluster = client instanceof Cluster ? client.duplicate([], { shardedSubscribers: true }) : client.duplicate();
    subscriber.on('error', this.#onError);
    const onMessage = (channel: string): void => {
      this.#onRelease(channel);
    };
    subscriber.on('message', onMessage);
    subscriber.on('smessage', onMessage);
    subscriber.on('ready', () => {
      // After a reconnection, releases published while disconnected were lost: wake everyone
      // (they read again) rather than let them sleep until their timeout.
      if (++this.#subscriberReadies > 1) this.#wakeAll();
    });
    if (client instanceof Cluster) {
      // On a cluster the subscription lives on one node, and ioredis moves it to another node
      // when that one fails, silently: releases published meanwhile are lost. A node failing
      // or leaving, as the cluster clients see it, wakes everyone (they read again).
      subscriber.on('-node', this.#onNodeTrouble);
      client.on('-node', this.#onNodeTrouble);
      client.on('node error', this.#onNodeTrouble);
    }
    this.#subscriber = subscriber;
    return subscriber;
  }

  /**
   * The subscriber of a backend with a near-cache: RESP2, subscriptions renewed by hand on each
   * connection after its client id is known (see {@link InvalidationListener}).
   */
  #openTrackingSubscriber(client: Redis, tracking: InvalidationListener): Redis {
    const subscriber = client.duplicate({ protocol: 2, autoResubscribe: false, lazyConnect: true });
    subscriber.on('error', this.#onError);
    subscriber.on('messageBuffer', (channel: Buffer, message: unknown) => {
      if (channel.length === INVALIDATE_CHANNEL.length && channel.toString('latin1') === INVALIDATE_CHANNEL) {
        tracking.invalidated(Array.isArray(message) ? (message as Buffer[]) : null);
      } else if (Buffer.isBuffer(message)) {
        this.#onRelease(channel.toString('utf8'));
      }
    });
    let resolveSession: () => void = () => undefined;
    let rejectSession: (error: unknown) => void = () => undefined;
    /** Whether {@link LockWakeups.#session} is still to settle (one pending session at a time). */
    let pending = false;
    const newSession = (): void => {
      if (pending) return;
      pending = true;
      const session = new Promise<void>((resolve, reject) => {
        resolveSession = () => {
          pending = false;
          resolve();
        };
        rejectSession = (error: unknown) => {
          pending = false;
          reject(error);
        };
      });
      session.catch(() => undefined);
      this.#session = session;
    };
    newSession();
    subscriber.on('close', () => {
      // Subscriptions made from now on wait for the next connection's handshake.
      newSession();
      tracking.sessionLost();
    });
    subscriber.on('ready', () => {
      const first = ++this.#subscriberReadies === 1;
      newSession();
      const settle = { resolve: resolveSession, reject: rejectSession };
      this.#handshake(subscriber, tracking)
        .then((session) => {
          settle.resolve();
          if (!first) this.#wakeAll(); // releases published while disconnected were lost
          if (session !== undefined) tracking.sessionStarted(subscriber, session.clientId, session.runId);
        })
        .catch((error: unknown) => {
          settle.reject(error);
          this.#onError(error);
          // A connection that cannot subscribe is of no use: start again on a new one.
          if (!this.#closed && subscriber.status === 'ready') subscriber.disconnect(true);
        });
    });
    this.#subscriber = subscriber;
    subscriber.connect().catch(() => undefined); // retried by ioredis; failures reach `error`
    return subscriber;
  }

  /**
   * A new subscriber connection's set-up: its client id and server (a subscribed RESP2
   * connection can no longer ask), the invalidation channel, then the release channels. Tracking
   * refused (an ACL without `client|id`, `info` or the channel) leaves the near-cache off and the
   * lock wake-ups working; resolves with the session, or `undefined` then.
   */
  async #handshake(subscriber: Redis, tracking: InvalidationListener): Promise<{ clientId: number; runId: string } | undefined> {
    let session: { clientId: number; runId: string } | undefined;
    try {
      const [clientId, info] = await Promise.all([subscriber.client('ID'), subscriber.info('server')]);
      await subscriber.subscribe(INVALIDATE_CHANNEL);
      session = { clientId, runId: runIdOf(info) };
    } catch (error) {
      if (subscriber.status !== 'ready') throw error; // the connection was lost: the next one starts again
      tracking.unavailable(error);
    }
    const channels = [...this.#subscriptions.keys()];
    if (channels.length > 0) await subscriber.subscribe(...channels);
    return session;
  }

  /** See {@link LockWakeups.#openSubscriber}: wakes every waiter, at most every 50 ms. */
  readonly #onNodeTrouble = (): void => {
    const now = Date.now();
    if (now - this.#nodeTroubleAt < 50) return;
    this.#nodeTroubleAt = now;
    this.#wakeAll();
  };

  #onRelease(lockKey: string): void {
    const now = Date.now();
    if (now - this.#releasedRotatedAt > RELEASE_MEMORY_MS) {
      this.#releasedBefore = this.#released;
      this.#released = new Map();
      this.#releasedRotatedAt = now;
    }
    this.#released.set(lockKey, now);
    const waiters = this.#waiters.get(lockKey);
    if (waiters) for (const done of [...waiters]) done(true);
  }

  #releasedSince(lockKey: string, since: number): boolean {
    const at = this.#released.get(lockKey) ?? this.#releasedBefore.get(lockKey);
    return at !== undefined && at >= since;
  }

  #wakeAll(): void {
    for (const waiters of [...this.#waiters.values()]) for (const done of [...waiters]) done(true);
  }
}

/**
 * A server's refusal of a command it does not know (`SSUBSCRIBE`, `SPUBLISH` before Redis 7)
 * or that the ACL does not grant (a user set up with the ACL of earlier versions): the classic
 * command is used instead, as the scripts then do.
 */
function isUnknownCommand(error: unknown): boolean {
  return error instanceof Error && /unknown command|NOPERM/i.test(error.message);
}

/** The server's `run_id` in the text of `INFO server` ('' if absent). */
export function runIdOf(info: string): string {
  return /^run_id:(\S+)/m.exec(info)?.[1] ?? '';
}
