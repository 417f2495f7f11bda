/**
 * The near-cache on Redis Cluster: tracking per master. Each master's connection of the cluster
 * client (the one that runs the scripts of that master's slots) is a {@link TrackedPair} with a
 * RESP2 subscriber of its own on the same master, so that the invalidations of a key come from
 * the node that holds it.
 *
 * The near-cache is trusted only while every master of the slot map has its pair trusted, and
 * the slot map is the one they were trusted under: a node added, removed, failed over or
 * promoted, or a slot moved (ioredis refreshes its map on MOVED and on node failures), empties it
 * and bypasses it until every master is tracked again. Keys are stored in hash-tag buckets on a
 * cluster, so the near-cache is indexed by the stored keys (each bucket's copy of a tag is a key
 * of its own): `clean(tags)` deletes every copy, and each master names the copies its
 * processes read.
 *
 * @module
 */

import type { Cluster, Redis } from 'ioredis';
import { CLUSTER_SLOTS } from './buckets.js';
import { NearCache, type NearCacheSettings } from './near-cache.js';
import { type NearTracker, type PairEvents, TrackedPair, warnTrackingOff } from './tracking.js';
import { INVALIDATE_CHANNEL, runIdOf } from './wakeups.js';

/**
 * The cluster client's events after which the masters or the slot map may have changed: a node
 * added or removed, the slot map refreshed (on MOVED, on a node failure), the client (re)connected.
 */
const CLUSTER_EVENTS = ['+node', '-node', 'refresh', 'ready'] as const;

/** One master: its tracked data connection and the subscriber its invalidations go to. */
interface TrackedMaster {
  readonly pair: TrackedPair;
  readonly subscriber: Redis;
}

/** See the module documentation. */
export class ClusterNearTracking implements NearTracker, PairEvents {
  readonly cache: NearCache;
  readonly #cluster: Cluster;
  readonly #heartbeatMs: number;
  readonly #onError: (error: unknown) => void;
  readonly #masters = new Map<Redis, TrackedMaster>();
  /** The slot map the masters were tracked under: each run of slots with its master. */
  #slotMap = '';
  #trusted = false;
  #heartbeat: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  #warned = false;

  /**
   * @param cluster - the cluster client
   * @param settings - the near-cache's settings
   * @param onError - the backend's error listener
   */
  constructor(cluster: Cluster, settings: NearCacheSettings, onError: (error: unknown) => void) {
    this.cache = new NearCache(settings);
    this.#cluster = cluster;
    this.#heartbeatMs = settings.heartbeatMs;
    this.#onError = onError;
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const cluster = this.#cluster;
    for (const event of CLUSTER_EVENTS) cluster.on(event, this.#reconcile);
    this.#heartbeat = setInterval(() => {
      for (const master of this.#masters.values()) master.pair.beat();
    }, this.#heartbeatMs);
    this.#heartbeat.unref();
    this.#reconcile();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const event of CLUSTER_EVENTS) this.#cluster.off(event, this.#reconcile);
    for (const master of this.#masters.values()) this.#drop(master);
    this.#masters.clear();
    this.#trusted = false;
    this.cache.distrust();
  }

  changed(): void {
    this.#update();
  }

  extended(): void {
    if (this.#trusted) this.cache.extend(this.#until());
  }

  error(error: unknown): void {
    this.#onError(error);
  }

  failing(error: unknown): void {
    if (this.#warned) return;
    this.#warned = true;
    warnTrackingOff(error);
  }

  /**
   * The topology may have changed: masters tracked as the slot map says, and if the map or the
   * masters changed, the near-cache is emptied until every master is tracked again.
   */
  readonly #reconcile = (): void => {
    if (this.#closed) return;
    const cluster = this.#cluster;
    const slotMap = slotMapOf(cluster.slots);
    let changed = slotMap !== this.#slotMap;
    this.#slotMap = slotMap;
    const masters = new Set(cluster.status === 'ready' ? cluster.nodes('master') : []);
    for (const [node, master] of this.#masters) {
      if (masters.has(node)) continue;
      changed = true;
      this.#drop(master);
      this.#masters.delete(node);
    }
    for (const node of masters) {
      if (this.#masters.has(node)) continue;
      changed = true;
      const pair = new TrackedPair(node, this.#heartbeatMs, this);
      this.#masters.set(node, { pair, subscriber: this.#openSubscriber(node, pair) });
    }
    if (changed && this.#trusted) {
      this.#trusted = false;
      this.cache.distrust();
    }
    this.#update();
  };

  /** Trusts the near-cache when every master is tracked under a known slot map; distrusts it when one is not. */
  #update(): void {
    let all = this.#masters.size > 0 && this.#slotMap !== '';
    for (const master of this.#masters.values()) if (!master.pair.trusted) all = false;
    if (all && !this.#trusted) {
      this.#trusted = true;
      let clockAhead = 0;
      for (const master of this.#masters.values()) clockAhead = Math.max(clockAhead, master.pair.clockAhead);
      this.cache.trust(this.#until(), clockAhead);
    } else if (!all && this.#trusted) {
      this.#trusted = false;
      this.cache.distrust();
    }
  }

  /** The earliest time a master's last heartbeat vouches for. */
  #until(): number {
    let until = Infinity;
    for (const master of this.#masters.values()) until = Math.min(until, master.pair.until);
    return until === Infinity ? 0 : until;
  }

  /**
   * A master's own invalidation subscriber: RESP2, without ioredis' resubscription; on each
   * connection its id and server are read before it subscribes (a subscribed RESP2 connection
   * can no longer ask), then the pair redirects the master's tracking to it.
   */
  #openSubscriber(node: Redis, pair: TrackedPair): Redis {
    const subscriber = node.duplicate({ protocol: 2, autoResubscribe: false, lazyConnect: true, readOnly: false });
    subscriber.on('error', this.#onError);
    subscriber.on('messageBuffer', (channel: Buffer, message: unknown) => {
      if (channel.toString('latin1') !== INVALIDATE_CHANNEL) return;
      this.cache.invalidated(Array.isArray(message) ? (message as Buffer[]).map((key) => key.toString('utf8')) : null);
    });
    subscriber.on('close', () => {
      pair.sessionLost();
    });
    subscriber.on('ready', () => {
      Promise.all([subscriber.client('ID'), subscriber.info('server')])
        .then(async ([clientId, info]) => {
          await subscriber.subscribe(INVALIDATE_CHANNEL);
          pair.sessionStarted(subscriber, clientId, runIdOf(info));
        })
        .catch((error: unknown) => {
          this.#onError(error);
          // Refused (an ACL): this master's reads stay on Redis; else the connection was lost and
          // its next `ready` starts again.
          if (subscriber.status === 'ready') this.failing(error);
        });
    });
    subscriber.connect().catch(() => undefined); // retried by ioredis; failures reach `error`
    return subscriber;
  }

  #drop(master: TrackedMaster): void {
    master.pair.close();
    master.subscriber.disconnect();
  }
}

/** The slot map as text, each run of slots with its master ('' while no slot is known). */
function slotMapOf(slots: readonly (readonly string[] | undefined)[]): string {
  let text = '';
  let last: string | undefined;
  for (let slot = 0; slot < CLUSTER_SLOTS; slot++) {
    const master = slots[slot]?.[0];
    if (master === undefined) return '';
    if (master !== last) {
      text += `${slot}:${master};`;
      last = master;
    }
  }
  return text;
}
