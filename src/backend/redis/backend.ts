/**
 * The Redis backend: every operation is one Lua script from the package's `lua/` folder, so
 * that each costs one request:
 *
 * - **read** (`read.lua`): tag versions (the missing ones created), tag hash, entry, and on a
 *   miss the entry's lock (`SET NX PX`), atomically. A hit, tagged or not, is one request.
 * - **write** (`write-2.lua`): store the entry with its TTL and release the lock
 *   (compare-and-delete on the token), publishing the release. A miss is therefore two
 *   requests: the read and the write.
 * - **release** (`release-1.lua`), **invalidate** (`invalidate-2.lua`), **cleanTags**
 *   (`cleanTags.lua`): one request each.
 *
 * The first call of each script on a connection is sent as EVAL with the script's body (one
 * request, which also caches it on the server), the later ones as EVALSHA; an EVALSHA answered
 * NOSCRIPT (SCRIPT FLUSH, a restart or failover) is sent again as EVAL, once per script and
 * connection however many calls were in flight (see `script-caller.ts`).
 *
 * Lock waiters are woken by pub/sub: the scripts that delete a lock PUBLISH the lock key on the
 * channel `{prefix}:unlock` (a channel is not a key; an ACL `&{prefix}:*` covers it). One
 * subscriber connection per backend (a `duplicate()` of the client), opened on the first wait,
 * dispatches the messages to the waiters of this process.
 *
 * Every key a script touches is in its KEYS, so the backend runs under an ACL user confined
 * to `~{prefix}:*` and `&{prefix}:*`. The commands it needs: `eval`, `evalsha`, `scan`,
 * `unlink`, `get`, `exists`, `publish`, `subscribe` (and `wait` with `invalidationReplicas`),
 * and inside the scripts `get`, `set`, `del`, `unlink`, `pttl`, `publish` and `time`.
 *
 * Standalone servers, Sentinel (through ioredis' own `sentinels` options) and Redis Cluster
 * (the `cluster` option, or an ioredis `Cluster` as `client`) are supported. On a cluster the
 * keys are laid out in hash-tag buckets (see `buckets.ts` and the `buckets` option) so that
 * every script still touches one slot and every read is still one request; `clean(tags)` is
 * one pipelined request per master, and `clear()` and `dump()` scan every master.
 *
 * @module
 */

import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { EntryCodec } from '../../codec.js';
import { CorruptEntryError, OptionError } from '../../errors.js';
import { uniqueToken } from '../../keys.js';
import type { Backend, BackendContext, ReadReply, ReadRequest, WriteRequest } from '../backend.js';
import { BucketLayout, CLUSTER_SLOTS, slotOf } from './buckets.js';
import { RedisBackendClosedError, RedisReplicationError, RedisUnavailableError } from './errors.js';
import { type ScriptArgument, ScriptCaller } from './script-caller.js';
import { type RedisScript, type RedisScripts, redisScripts } from './scripts.js';

/**
 * Options of the {@link RedisBackend}: ioredis' own connection options (`host`, `port`, `db`,
 * `username`, `password`, `tls`, `sentinels`, `name`, `connectionName`, …), or a `url`, or an
 * existing `client`; plus the few below. The backend always connects lazily (`lazyConnect`):
 * constructing it opens nothing.
 */
export interface RedisBackendOptions extends RedisOptions {
  /**
   * A `redis://` or `rediss://` URL, e.g. `redis://user:pass@host:6379/1`. Options given
   * beside it (`tls`, `db`, …) take precedence over what the URL says. Ignored with `client`.
   * @default undefined
   */
  url?: string | undefined;
  /**
   * An existing ioredis client to use instead of opening one: a `Redis` (standalone or
   * Sentinel) or a `Cluster`. Its own options apply (including its timeouts and offline queue:
   * give it `commandTimeout` and `maxRetriesPerRequest` for bounded fail-open), and `close()`
   * does not quit it: its owner does. The backend still opens one subscriber connection of its
   * own (`client.duplicate()`), on the first lock wait, and closes that. Must not use ioredis'
   * `keyPrefix`.
   * @default undefined
   */
  client?: Redis | Cluster | undefined;
  /**
   * Connect to a Redis Cluster through these startup nodes (`[{ host, port }, …]`, or
   * `'host:port'` strings, or ports): ioredis discovers the rest. The connection options beside
   * it (`username`, `password`, `tls`, `connectTimeout`, `commandTimeout`, …) apply to every
   * node; `clusterOptions` holds the cluster-wide ones. Keys are laid out in hash-tag buckets
   * (see `buckets`).
   * @default undefined (a standalone or Sentinel connection)
   */
  cluster?: readonly ClusterNode[] | undefined;
  /**
   * ioredis' own cluster options (`scaleReads`, `maxRedirections`, `retryDelayOnTryAgain`,
   * `natMap`, `slotsRefreshInterval`, `redisOptions`, …), used with `cluster`. The backend
   * sets `lazyConnect` and, unless given here, reconnects forever like a standalone
   * connection.
   * @default undefined
   */
  clusterOptions?: ClusterOptions | undefined;
  /**
   * On Redis Cluster, how many hash-tag buckets the keys are spread over. Each bucket is one
   * hash slot holding its entries, their locks and its own copy of each tag's version, so that
   * a read stays one script on one slot. More buckets spread the load over more masters, more
   * evenly, and move in smaller parts during a reshard; each bucket adds one key to delete per
   * tag on `clean(tags)` (sent as one pipelined request per master) and one copy of each tag's
   * version. Every process sharing a prefix must use the same count: one that uses another
   * count neither sees nor invalidates the others' copies. Ignored on a standalone server.
   * An integer from 1 to 16384.
   * @default 64
   */
  buckets?: number | undefined;
  /**
   * The longest a request may take, in milliseconds, before it fails and the core falls back
   * to the function. While the connection is down and being re-established, requests fail at
   * once instead (a {@link RedisUnavailableError}); requests sent while (re)connecting wait at
   * most this long. Applies to clients this backend opens.
   * @default 1000
   */
  commandTimeout?: number | undefined;
  /**
   * Commands issued in the same tick (concurrent reads, mostly) are written to the socket
   * together, in groups of at most this many: fewer write syscalls for the client and batched
   * reads for the server, while each read stays one request with its own reply. `1` writes
   * every command on its own, as ioredis does. Measured on loopback at 64 concurrent hits
   * (`npm run bench -- redis`), 8 to 32 serve best; a lone command is never delayed.
   * @default 16
   */
  writeBatch?: number | undefined;
  /**
   * Invalidations (`invalidate`, `clean(tags)`, `clean()`) resolve only once this many replicas
   * have them (`WAIT`, for at most half of `commandTimeout`), else they reject and the caller
   * retries. Redis replicates asynchronously: during a Sentinel failover, what the old primary
   * acknowledges between the replica's promotion and the clients' switch is lost, and a lost
   * invalidation would serve stale values. Costs one more round trip per invalidation, and the
   * WAIT holds up the commands queued behind it on the connection (reads too: up to half of
   * `commandTimeout` while replicas lag); with fewer replicas up than this, invalidations fail.
   * `0` disables it. Not used on a cluster.
   * @default 0
   */
  invalidationReplicas?: number | undefined;
  /**
   * How long to wait before reconnecting after the connection was lost, by attempt number
   * (ioredis' option). The backend reconnects forever: calls fail fast meanwhile and succeed
   * again once the server answers.
   * @default 50 ms × attempt, at most 1000 ms
   */
  retryStrategy?: ((times: number) => number | void | null) | null | undefined;
  /**
   * How long establishing a connection may take, in milliseconds (ioredis' option).
   * @default 2000
   */
  connectTimeout?: number | undefined;
  /**
   * ioredis' own reconnection retries per command; the backend sets `0` so that commands
   * caught by a connection loss fail at once rather than being resent later.
   * @default 0
   */
  maxRetriesPerRequest?: number | null | undefined;
}

type Waiter = (woken: boolean) => void;

interface Subscription {
  readonly ready: Promise<void>;
  subscribed: boolean;
}

/** Read misses that did not take the lock, remembered until the caller waits for the lock. */
interface PendingWait {
  /** When the read was sent (`Date.now()`): releases seen since then count as a wake-up. */
  readonly sentAt: number;
  /** The lock's remaining life reported by the read, in ms (-2: gone, -1: no expiry). */
  readonly lockTtl: number;
}

/** How long release messages are remembered for the missed-wake-up check, in ms (×2 at most). */
const RELEASE_MEMORY_MS = 10_000;
const MAX_PENDING_WAITS = 10_000;
/** The message of ioredis' `commandTimeout` rejections. */
const COMMAND_TIMED_OUT = 'Command timed out';

/**
 * The Redis backend, `hermes-cache/redis`: `new Hermes(RedisBackend, { host, port, db })`.
 * Needs the optional peer dependency `ioredis`.
 */
export class RedisBackend implements Backend {
  /** Always `true`: Redis stores the encoded entries. */
  readonly storesBytes = true;
  /** The ioredis client the backend sends its commands with (the given `client`, or its own). */
  readonly client: Redis | Cluster;
  /**
   * The bucket layout of the keys on Redis Cluster; `undefined` on a standalone server, where
   * keys are stored as the cache names them.
   */
  readonly buckets: BucketLayout | undefined;
  readonly #ownsClient: boolean;
  readonly #scripts: RedisScripts;
  readonly #caller: ScriptCaller;
  readonly #contexts = new Map<string, BackendContext>();
  #context: BackendContext | undefined;
  #lastError: unknown;
  #closed = false;

  #subscriber: Redis | Cluster | undefined;
  #subscriberReadies = 0;
  #nodeTroubleAt = 0;
  readonly #subscriptions = new Map<string, Subscription>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  readonly #pendingWaits = new Map<string, PendingWait>();
  #released = new Map<string, number>();
  #releasedBefore = new Map<string, number>();
  #releasedRotatedAt = Date.now();
  // The channel of the last lock key's prefix, memoised for the hot path.
  #lockStart = '';
  #channel = '';
  /** The socket corked by {@link RedisBackend.#coalesce} until the next tick, if any. */
  #corked: Redis['stream'] | undefined;
  /** The prefix of the last key placed into a bucket, with its colon (hot-path memo). */
  #placedPrefix = '';
  #batched = 0;
  /** On a cluster: the masters' sockets corked until the next tick, if any. */
  #corkedNodes: Array<Redis['stream']> | undefined;
  readonly #writeBatch: number;
  /** The wait for a cluster client to learn its slots, shared by the callers meanwhile. */
  #clusterReadying: Promise<void> | undefined;
  /** How long a cluster operation waits for the client to learn the slots, in ms. */
  readonly #connectWait: number;
  /** Replicas an invalidation must reach (`WAIT`) before it resolves; see the option. */
  readonly #invalidationReplicas: number;
  readonly #replicaWaitMs: number;

  /**
   * @param options - connection options, a `url` or a `client`; see {@link RedisBackendOptions}.
   *   Omitted: `localhost:6379`, database 0.
   */
  constructor(options: RedisBackendOptions = {}) {
    if (options === null || typeof options !== 'object') throw new OptionError('options', 'options must be an object');
    const { client, url, writeBatch, cluster, clusterOptions, buckets, invalidationReplicas, ...rest } = options;
    this.#writeBatch = writeBatch ?? 16;
    if (!Number.isSafeInteger(this.#writeBatch) || this.#writeBatch < 1) {
      throw new OptionError('writeBatch', `writeBatch must be a positive integer, got ${String(writeBatch)}`);
    }
    if (rest.keyPrefix !== undefined && rest.keyPrefix !== '') {
      throw new OptionError(
        'keyPrefix',
        "RedisBackend does not support ioredis' keyPrefix (it would not apply to the pub/sub channel and SCAN); use the cache's prefix option",
      );
    }
    const commandTimeout = rest.commandTimeout ?? 1000;
    if (typeof commandTimeout !== 'number' || !Number.isFinite(commandTimeout) || commandTimeout <= 0) {
      throw new OptionError('commandTimeout', `commandTimeout must be a positive number of milliseconds, got ${String(commandTimeout)}`);
    }
    const bucketCount = buckets ?? 64;
    if (!Number.isSafeInteger(bucketCount) || bucketCount < 1 || bucketCount > CLUSTER_SLOTS) {
      throw new OptionError('buckets', `buckets must be an integer from 1 to ${CLUSTER_SLOTS}, got ${String(buckets)}`);
    }
    if (cluster !== undefined && (!Array.isArray(cluster) || cluster.length === 0)) {
      throw new OptionError('cluster', 'cluster must be a non-empty array of startup nodes, e.g. [{ host: "10.0.0.1", port: 7000 }]');
    }
    if (cluster !== undefined && (client !== undefined || url !== undefined || rest.sentinels !== undefined)) {
      throw new OptionError('cluster', 'cluster cannot be combined with client, url or sentinels: give one way to connect');
    }
    this.#connectWait = (typeof rest.connectTimeout === 'number' ? rest.connectTimeout : 2000) + commandTimeout;
    this.#invalidationReplicas = invalidationReplicas ?? 0;
    if (!Number.isSafeInteger(this.#invalidationReplicas) || this.#invalidationReplicas < 0) {
      throw new OptionError('invalidationReplicas', `invalidationReplicas must be a non-negative integer, got ${String(invalidationReplicas)}`);
    }
    this.#replicaWaitMs = Math.max(1, Math.floor(commandTimeout / 2));
    if (client !== undefined) {
      if (!(client instanceof Redis) && !(client instanceof Cluster)) {
        throw new OptionError('client', 'client must be an ioredis Redis or Cluster instance');
      }
      const prefix = client.options.keyPrefix;
      if (prefix !== undefined && prefix !== '') {
        throw new OptionError('client', "The given client uses ioredis' keyPrefix, which RedisBackend does not support; use the cache's prefix option");
      }
      this.client = client;
      this.#ownsClient = false;
    } else if (cluster !== undefined) {
      // Per-node connection options: the cluster decides addresses, retries and queueing.
      const nodeOptions: RedisOptions = { ...rest };
      delete nodeOptions.host;
      delete nodeOptions.port;
      delete nodeOptions.path;
      delete nodeOptions.retryStrategy;
      delete nodeOptions.enableOfflineQueue;
      delete nodeOptions.readOnly;
      const startupNodes = (cluster as readonly ClusterNode[]).slice();
      this.client = new Cluster(startupNodes, {
        clusterRetryStrategy: (times: number) => Math.min(50 * times, 1000),
        ...clusterOptions,
        redisOptions: {
          connectTimeout: 2000,
          ...nodeOptions,
          commandTimeout,
          maxRetriesPerRequest: rest.maxRetriesPerRequest === undefined ? 0 : rest.maxRetriesPerRequest,
          ...clusterOptions?.redisOptions,
        },
        enableOfflineQueue: true,
        lazyConnect: true,
      });
      this.#ownsClient = true;
    } else {
      if (url !== undefined && typeof url !== 'string') throw new OptionError('url', 'url must be a redis:// or rediss:// URL string');
      const clientOptions: RedisOptions = {
        connectTimeout: 2000,
        retryStrategy: (times: number) => Math.min(50 * times, 1000),
        ...rest,
        commandTimeout,
        maxRetriesPerRequest: rest.maxRetriesPerRequest === undefined ? 0 : rest.maxRetriesPerRequest,
        // Needed for the lazy first connection; bounded by commandTimeout, and the backend
        // refuses calls itself while a lost connection is being re-established.
        enableOfflineQueue: true,
        lazyConnect: true,
      };
      if (rest.sentinels !== undefined && rest.reconnectOnError === undefined) {
        // After a failover the old primary may answer as a replica before Sentinel disconnects
        // its clients: reconnect, through the sentinels, to the new primary.
        clientOptions.reconnectOnError = (error: Error) => error.message.startsWith('READONLY');
      }
      if (rest.sentinels !== undefined && rest.failoverDetector === undefined) {
        // Without it, connections stay on the old primary, which keeps accepting writes until
        // Sentinel demotes it (seconds later): those writes (invalidations too) are lost when
        // it resyncs from the new primary. On Sentinel's +switch-master, reconnect at once.
        clientOptions.failoverDetector = true;
      }
      this.client = url === undefined ? new Redis(clientOptions) : new Redis(url, clientOptions);
      this.#ownsClient = true;
    }
    this.client.on('error', this.#onClientError);
    this.#scripts = redisScripts();
    const own = this.client;
    this.#caller = new ScriptCaller(own, own instanceof Cluster ? () => this.#clusterReady(own) : undefined);
    this.buckets = this.client instanceof Cluster ? new BucketLayout(bucketCount) : undefined;
  }

  /** Binds the backend to a cache's key space; opens nothing. Several prefixes may share a backend. */
  attach(context: BackendContext): void {
    if (this.buckets !== undefined && /[{}]/.test(context.prefix)) {
      throw new OptionError(
        'prefix',
        `On Redis Cluster the cache's prefix must not contain '{' or '}' (got '${context.prefix}'): hermes places its own hash tags in the keys`,
      );
    }
    this.#context = context;
    this.#contexts.set(context.prefix, context);
  }

  /** One EVALSHA of `read.lua`: tags, tag hash, entry and (on a miss) the lock, atomically. */
  read(request: ReadRequest): Promise<ReadReply> {
    let { entryKey, lockKey, tagKeys } = request;
    const lockToken = request.lockToken;
    const layout = this.buckets;
    if (layout !== undefined) {
      // Cluster: the entry, its lock and its bucket's copies of the tags share one slot.
      const kindEnd = this.#prefixEnd(entryKey, 'entry') + 6;
      const bucket = layout.bucketOf(entryKey.slice(kindEnd));
      entryKey = layout.place(entryKey, kindEnd, bucket);
      lockKey = this.#place(lockKey, 'lock', bucket);
      tagKeys = tagKeys.map((key) => this.#place(key, 'tag', bucket));
    }
    const script = this.#scripts.read;
    const keys: string[] = [entryKey, lockKey];
    for (let i = 0; i < tagKeys.length; i++) keys.push(tagKeys[i] as string);
    // The versions of the tags this read creates are seeded afresh for every read, never by the
    // lock token: a call reads again with the same token after waiting for a lock, and a version
    // it created before a clean(tags) must not come back after it — every entry written with
    // that version meanwhile would be valid again.
    const argv = [lockToken ?? '', Math.max(1, Math.ceil(request.lockTtlMs)), tagKeys.length === 0 ? '' : uniqueToken()];
    const sentAt = Date.now();
    return this.#call(script, keys, argv).then(
      (reply) => {
        if (Buffer.isBuffer(reply)) {
          // A fresh hit: the entry, whose header holds the (equal) tag hash at bytes 4..20.
          return { entry: reply, tagHash: reply.toString('latin1', 4, 20), locked: false, stale: false };
        }
        if (!Array.isArray(reply) || reply.length < 3 || reply.length > 4 || !Buffer.isBuffer(reply[0])) {
          throw new Error(`Unexpected reply from ${script.file}: ${String(reply)}`);
        }
        const locked = reply[1] === 1;
        if (!locked && lockToken !== undefined) {
          if (this.#pendingWaits.size >= MAX_PENDING_WAITS) this.#pendingWaits.clear();
          this.#pendingWaits.set(lockKey, { sentAt, lockTtl: Number(reply[2]) });
        }
        const staleEntry: unknown = reply[3];
        if (Buffer.isBuffer(staleEntry)) return { entry: staleEntry, tagHash: reply[0].toString('latin1'), locked, stale: true };
        return { entry: undefined, tagHash: reply[0].toString('latin1'), locked, stale: false };
      },
      (error: unknown) => {
        // Timed out (a hung or overloaded server): the read is still queued and may take the
        // lock once the server answers, for a caller that has fallen open and will never write
        // nor release it, blocking every other caller of the key for the whole lock TTL. A
        // release sent now follows the read on the same connection and frees it.
        if (lockToken !== undefined && error instanceof Error && error.message === COMMAND_TIMED_OUT) {
          this.release(request.lockKey, lockToken).catch(() => undefined);
        }
        throw error;
      },
    );
  }

  /**
   * On a cluster: the master that serves the entry's bucket (`host:port`, from the client's
   * slot map), so that the core's circuit breaker trips per master; `undefined` on one server
   * (one breaker) or while the slots are unknown.
   */
  failureDomain(entryKey: string): string | undefined {
    const layout = this.buckets;
    if (layout === undefined || !(this.client instanceof Cluster)) return undefined;
    const kindEnd = this.#prefixEnd(entryKey, 'entry') + 6;
    return this.client.slots[layout.slots[layout.bucketOf(entryKey.slice(kindEnd))] ?? 0]?.[0];
  }

  /** One EVALSHA of `write-2.lua`: stores the entry (if the lock is still ours) and releases the lock. */
  async write(request: WriteRequest): Promise<boolean> {
    const { entry } = request;
    let { entryKey, lockKey } = request;
    if (this.buckets !== undefined) {
      entryKey = this.#place(entryKey, 'entry');
      lockKey = this.#place(lockKey, 'lock');
    }
    if (!(entry instanceof Uint8Array)) throw new TypeError('RedisBackend stores bytes: write() takes an encoded entry');
    const bytes = Buffer.isBuffer(entry) ? entry : Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength);
    const script = this.#scripts.write;
    const reply = await this.#call(
      script,
      [entryKey, lockKey],
      [bytes, Math.max(1, Math.ceil(request.ttlMs)), request.lockToken ?? '', this.#channelOf(lockKey)],
    );
    return reply === 1;
  }

  /** One EVALSHA of `release-1.lua`: compare-and-delete of the lock, publishing the release. */
  async release(lockKey: string, token: string): Promise<void> {
    if (this.buckets !== undefined) lockKey = this.#place(lockKey, 'lock');
    const script = this.#scripts.release;
    await this.#call(script, [lockKey], [token, this.#channelOf(lockKey)]);
  }

  /**
   * Waits for a release of the lock published on `{prefix}:unlock`, or `timeoutMs`, or the
   * lock's expiry (as reported by the read that found it taken), whichever comes first.
   * Sends nothing once this process is subscribed; the first wait on a prefix subscribes
   * (one request on the subscriber connection) and then checks that the lock still exists,
   * since a release published before the subscription is not delivered. A release seen after
   * the read was sent, or a reconnection of the subscriber, count as a wake-up.
   */
  waitForRelease(lockKey: string, timeoutMs: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.buckets !== undefined) lockKey = this.#place(lockKey, 'lock');
    const pending = this.#pendingWaits.get(lockKey);
    this.#pendingWaits.delete(lockKey);
    const since = pending?.sentAt ?? Date.now();
    if (this.#releasedSince(lockKey, since)) return Promise.resolve(true);
    let delay = Math.max(0, timeoutMs);
    let expires = false; // the wait ends with the lock's own expiry: that frees it too
    if (pending !== undefined) {
      if (pending.lockTtl === -2) return Promise.resolve(true); // gone already
      if (pending.lockTtl >= 0 && pending.lockTtl <= delay) {
        delay = pending.lockTtl;
        expires = true;
      }
    }
    const channel = this.#channelOf(lockKey);
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
        if (set.size === 0 && this.#waiters.get(lockKey) === set) this.#waiters.delete(lockKey);
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
      const subscription = this.#subscribe(channel);
      if (subscription.subscribed) return;
      // Not subscribed when the lock was seen: a release may have been published unseen.
      subscription.ready.then(
        () => this.#usableClient().exists(lockKey),
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

  /** One EVALSHA of `invalidate-2.lua`: deletes the entry and its lock, publishing the release. */
  async invalidate(entryKey: string, lockKey: string): Promise<void> {
    if (this.buckets !== undefined) {
      entryKey = this.#place(entryKey, 'entry');
      lockKey = this.#place(lockKey, 'lock');
    }
    const script = this.#scripts.invalidate;
    await this.#call(script, [entryKey, lockKey], [this.#channelOf(lockKey)]);
    await this.#replicated();
  }

  /**
   * One EVALSHA of `cleanTags.lua`: deletes the tag versions; nothing is sent for no tags.
   * On a cluster: deletes each tag's copy in every bucket, one `UNLINK` per bucket, the
   * buckets of each master sent as one pipeline, all masters in parallel — one request per
   * master. A bucket whose slot moved meanwhile is retried on its own, redirected.
   */
  async cleanTags(tagKeys: readonly string[]): Promise<void> {
    if (tagKeys.length === 0) return;
    if (this.client instanceof Cluster) {
      await this.#cleanTagsOnCluster(this.client, this.buckets as BucketLayout, tagKeys);
      return;
    }
    const script = this.#scripts.cleanTags;
    await this.#call(script, tagKeys, []);
    await this.#replicated();
  }

  async #cleanTagsOnCluster(cluster: Cluster, layout: BucketLayout, tagKeys: readonly string[]): Promise<void> {
    this.#usableClient();
    await this.#clusterReady(cluster);
    const kindEnds = tagKeys.map((key) => this.#prefixEnd(key, 'tag') + 4);
    const byMaster = new Map<string, string[][]>();
    for (let bucket = 0; bucket < layout.count; bucket++) {
      const keys = tagKeys.map((key, i) => layout.place(key, kindEnds[i] ?? 0, bucket));
      const group = cluster.slots[slotOf(keys[0] as string)]?.join(';') ?? '';
      let list = byMaster.get(group);
      if (!list) byMaster.set(group, (list = []));
      list.push(keys);
    }
    const retries: string[][] = [];
    await Promise.all(
      [...byMaster.values()].map(async (buckets) => {
        const pipeline = cluster.pipeline();
        for (const keys of buckets) pipeline.unlink(...keys);
        try {
          const results = (await pipeline.exec()) ?? [];
          buckets.forEach((keys, i) => {
            if (results[i]?.[0]) retries.push(keys);
          });
        } catch {
          retries.push(...buckets);
        }
      }),
    );
    // Moved, asked or failed: each bucket again, through the cluster's own redirections.
    await Promise.all(retries.map((keys) => cluster.unlink(...keys)));
  }

  /**
   * Removes every key under `${prefix}:` with SCAN (MATCH, batches of 1000) and UNLINK, never
   * FLUSHDB: other keys of the database stay. Locks removed this way are published as
   * released. Costs one SCAN per batch plus one UNLINK per non-empty batch.
   */
  async clear(prefix: string): Promise<void> {
    const client = this.#usableClient();
    const channel = `${prefix}:unlock`;
    const lockStart = `${prefix}:lock:`;
    await this.#scan(prefix, async (keys) => {
      const sends: Promise<unknown>[] = bySlot(client, keys).map((group) => client.unlink(...group));
      for (const key of keys) if (key.startsWith(lockStart)) sends.push(client.publish(channel, key));
      await Promise.all(sends);
    });
    await this.#replicated();
  }

  /**
   * Every key under `${prefix}:` (default: the attached cache's prefix) with its value:
   * entries decoded with the codec of the cache attached under that prefix (a
   * {@link CorruptEntryError} for bytes that do not decode), tag versions and lock tokens as
   * strings. Sorted by key. SCAN, then GET of each batch.
   */
  async dump(prefix?: string): Promise<Record<string, unknown>> {
    const context = prefix === undefined ? this.#context : (this.#contexts.get(prefix) ?? this.#context);
    if (!context) throw new Error('RedisBackend is not attached to a cache yet');
    const chosen = prefix ?? context.prefix;
    const client = this.#usableClient();
    const layout = this.buckets;
    const entryStart = `${chosen}:entry:`;
    const tagStart = `${chosen}:tag:`;
    const out: Record<string, unknown> = {};
    await this.#scan(chosen, async (keys) => {
      const values = await Promise.all(keys.map((key) => client.getBuffer(key)));
      keys.forEach((stored, i) => {
        const value = values[i];
        if (value === null || value === undefined) return; // expired meanwhile
        const key = layout === undefined ? stored : layout.unplace(stored, chosen);
        if (key.startsWith(entryStart)) out[key] = decodeForDump(context.codec, key, value);
        else if (layout !== undefined && key.startsWith(tagStart) && key in out) {
          // A tag's copies in several buckets: every version, in key order of the buckets.
          const known = out[key];
          out[key] = [...(Array.isArray(known) ? (known as string[]) : [known as string]), value.toString('utf8')];
        } else out[key] = value.toString('utf8');
      });
    });
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /**
   * Resolves pending waits as timed out, closes the subscriber connection and, if the backend
   * opened it, the client (a given `client` stays open). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiters of [...this.#waiters.values()]) for (const done of [...waiters]) done(false);
    this.#waiters.clear();
    this.#pendingWaits.clear();
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    this.#subscriptions.clear();
    // The connections the backend opened keep their error listener after close: a late error
    // on them (a write failing with EPIPE once the server is gone) is absorbed, never printed
    // by ioredis as an "Unhandled error event". A given client gets back its own listeners only.
    if (subscriber) subscriber.disconnect();
    if (this.#ownsClient) {
      const client = this.client;
      const ended = endOf(client, this.#connectWait);
      if (client.status === 'ready') await client.quit().catch(() => { client.disconnect(); });
      else client.disconnect();
      // ioredis' quit() leaves the failoverDetector's connections to the sentinels open (and
      // reconnecting): disconnect() closes them.
      if (client instanceof Redis && client.options.failoverDetector === true) client.disconnect();
      // quit() resolves with the server's OK, before the socket has closed: wait for that too.
      await ended;
    } else {
      this.client.off('error', this.#onClientError);
    }
    this.#caller.close();
    this.client.off('-node', this.#onNodeTrouble);
    this.client.off('node error', this.#onNodeTrouble);
  }

  readonly #onClientError = (error: unknown): void => {
    // Reported through the rejected calls (the core emits them); kept for their `cause`.
    this.#lastError = error;
  };

  /**
   * After an invalidation: resolves once `invalidationReplicas` replicas have every write this
   * connection sent so far (`WAIT`), else rejects: not acknowledged, the caller must retry.
   */
  async #replicated(): Promise<void> {
    const wanted = this.#invalidationReplicas;
    const client = this.client;
    if (wanted === 0 || client instanceof Cluster) return;
    const acked = await this.#usableClient().wait(wanted, this.#replicaWaitMs);
    if (acked < wanted) throw new RedisReplicationError(acked, wanted, this.#replicaWaitMs);
  }

  /** The client, or a fast rejection while a lost connection is being re-established. */
  #usableClient(): Redis | Cluster {
    if (this.#closed) throw new RedisBackendClosedError();
    const client = this.client;
    const status = client.status;
    if (status === 'reconnecting' || status === 'close') throw new RedisUnavailableError(status, this.#lastError);
    return client;
  }

  /**
   * One call of a script (EVAL the first time on a connection, EVALSHA after, NOSCRIPT handled
   * once per script and connection: see `script-caller.ts`), its socket write coalesced.
   */
  #call(script: RedisScript, keys: readonly string[], argv: readonly ScriptArgument[]): Promise<unknown> {
    let client: Redis | Cluster;
    try {
      client = this.#usableClient();
    } catch (error) {
      return Promise.reject(error);
    }
    this.#coalesce(client);
    return this.#caller.call(script, keys, argv);
  }

  /**
   * Coalesces the commands of one tick into few socket writes: the first command of a tick
   * corks the socket, every `writeBatch`-th command flushes it, and the end of the tick (after
   * the microtasks that issue the tick's commands) uncorks it. Each read is still one request
   * with its own reply; under concurrency the requests share write syscalls, and the server
   * reads them in batches. A lone command is written at the end of its tick, without delay.
   */
  #coalesce(client: Redis | Cluster): void {
    if (this.#writeBatch <= 1) return;
    if (client instanceof Cluster) {
      this.#coalesceNodes(client);
      return;
    }
    const stream = client.stream as Redis['stream'] | undefined;
    if (stream === undefined || stream.destroyed) return;
    if (this.#corked !== stream) {
      this.#corked = stream;
      this.#batched = 1;
      stream.cork();
      process.nextTick(() => {
        if (this.#corked === stream) this.#corked = undefined;
        stream.uncork();
      });
    } else if (++this.#batched >= this.#writeBatch) {
      this.#batched = 0;
      stream.uncork();
      stream.cork();
    }
  }

  /**
   * {@link RedisBackend.#coalesce} on a cluster: the first command of a tick corks the socket of
   * every master (a command goes to the one its slot lives on), the end of the tick uncorks
   * them, and every `writeBatch` × masters commands flushes them.
   */
  #coalesceNodes(cluster: Cluster): void {
    const corked = this.#corkedNodes;
    if (corked === undefined) {
      const streams: Array<Redis['stream']> = [];
      for (const node of cluster.nodes('master')) {
        const stream = node.stream as Redis['stream'] | undefined;
        if (stream === undefined || stream.destroyed) continue;
        stream.cork();
        streams.push(stream);
      }
      this.#corkedNodes = streams;
      this.#batched = 1;
      process.nextTick(() => {
        this.#corkedNodes = undefined;
        for (const stream of streams) stream.uncork();
      });
    } else if (++this.#batched >= this.#writeBatch * Math.max(1, corked.length)) {
      this.#batched = 0;
      for (const stream of corked) {
        stream.uncork();
        stream.cork();
      }
    }
  }

  /**
   * Calls `each` with every batch of keys under `${prefix}:`, in SCAN order; on a cluster,
   * every master is scanned (in parallel).
   */
  async #scan(prefix: string, each: (keys: string[]) => Promise<void>): Promise<void> {
    const client = this.#usableClient();
    const pattern = `${escapeGlob(prefix)}:*`;
    const scanNode = async (node: Redis): Promise<void> => {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await each(keys);
      } while (cursor !== '0');
    };
    if (client instanceof Cluster) {
      await this.#clusterReady(client);
      await Promise.all(client.nodes('master').map(scanNode));
    } else {
      await scanNode(client);
    }
  }

  /**
   * Resolves once the cluster client knows the slots (connecting it if it is lazy), or rejects
   * after the connect timeout plus `commandTimeout`. One wait shared by the callers meanwhile.
   */
  #clusterReady(cluster: Cluster): Promise<void> {
    if (cluster.status === 'ready' && cluster.slots.length > 0) return Promise.resolve();
    this.#clusterReadying ??= new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cluster.off('ready', onReady);
        reject(new RedisUnavailableError(cluster.status, this.#lastError));
      }, this.#connectWait);
      const onReady = (): void => {
        clearTimeout(timer);
        resolve();
      };
      cluster.once('ready', onReady);
      if (cluster.status === 'wait') cluster.connect().catch(() => undefined);
      else if (cluster.status === 'ready') onReady();
    }).finally(() => {
      this.#clusterReadying = undefined;
    });
    return this.#clusterReadying;
  }

  /**
   * The index just after `{prefix}:` in a key of the given kind: the attached prefix it starts
   * with (the longest one), else the text before the first `:{kind}:`.
   */
  #prefixEnd(key: string, kind: 'entry' | 'lock' | 'tag'): number {
    const memo = this.#placedPrefix;
    if (memo !== '' && this.#contexts.size <= 1 && key.startsWith(memo)) return memo.length;
    let prefix: string | undefined;
    for (const candidate of this.#contexts.keys()) {
      if (key.startsWith(`${candidate}:${kind}:`) && (prefix === undefined || candidate.length > prefix.length)) prefix = candidate;
    }
    if (prefix === undefined) {
      const at = key.indexOf(`:${kind}:`);
      if (at < 0) throw new TypeError(`Not a hermes ${kind} key: '${key}'`);
      return at + 1;
    }
    this.#placedPrefix = `${prefix}:`;
    return prefix.length + 1;
  }

  /** On a cluster, a key the cache names moved into its bucket (an entry's or lock's own, or `bucket`). */
  #place(key: string, kind: 'entry' | 'lock' | 'tag', bucket?: number): string {
    const layout = this.buckets as BucketLayout;
    const kindEnd = this.#prefixEnd(key, kind) + kind.length + 1;
    return layout.place(key, kindEnd, bucket ?? layout.bucketOf(key.slice(kindEnd)));
  }

  /**
   * The key under which Redis stores what the cache names `key` (an entry, lock or tag key):
   * the key itself on a standalone server; on a cluster, the key moved into its bucket — for a
   * tag, into the bucket of the entry named by `entryKey` (each bucket has its own copy).
   */
  storedKey(key: string, entryKey?: string): string {
    if (this.buckets === undefined) return key;
    for (const kind of ['entry', 'lock', 'tag'] as const) {
      const at = key.indexOf(`:${kind}:`);
      if (at < 0 || !key.startsWith(`${kind}:`, this.#prefixEnd(key, kind))) continue;
      if (kind !== 'tag') return this.#place(key, kind);
      if (entryKey === undefined) throw new TypeError('storedKey() of a tag key on a cluster needs the entry key whose bucket is meant');
      const kindEnd = this.#prefixEnd(entryKey, 'entry') + 6;
      return this.#place(key, 'tag', this.buckets.bucketOf(entryKey.slice(kindEnd)));
    }
    throw new TypeError(`Not a hermes key: '${key}'`);
  }

  /** The release channel of a lock key: `{prefix}:unlock` of the attached prefix it is under. */
  #channelOf(lockKey: string): string {
    if (this.#lockStart !== '' && lockKey.startsWith(this.#lockStart)) return this.#channel;
    let prefix: string | undefined;
    for (const candidate of this.#contexts.keys()) {
      if (lockKey.startsWith(`${candidate}:lock:`) && (prefix === undefined || candidate.length > prefix.length)) {
        prefix = candidate;
      }
    }
    if (prefix === undefined) {
      const at = lockKey.indexOf(':lock:');
      prefix = at < 0 ? lockKey : lockKey.slice(0, at);
    }
    this.#lockStart = `${prefix}:lock:`;
    this.#channel = `${prefix}:unlock`;
    return this.#channel;
  }

  #subscribe(channel: string): Subscription {
    const existing = this.#subscriptions.get(channel);
    if (existing) return existing;
    const subscriber = this.#subscriber ?? this.#openSubscriber();
    const subscription: Subscription = {
      subscribed: false,
      ready: subscriber.subscribe(channel).then(() => {
        subscription.subscribed = true;
      }),
    };
    subscription.ready.catch(() => {
      // Let a later wait try again.
      if (this.#subscriptions.get(channel) === subscription) this.#subscriptions.delete(channel);
    });
    this.#subscriptions.set(channel, subscription);
    return subscription;
  }

  #openSubscriber(): Redis | Cluster {
    if (this.#closed) throw new RedisBackendClosedError();
    const client = this.client;
    const subscriber: Redis | Cluster = client instanceof Cluster ? client.duplicate() : client.duplicate();
    subscriber.on('error', this.#onClientError);
    subscriber.on('message', (_channel: string, lockKey: string) => {
      this.#onRelease(lockKey);
    });
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

  /** See {@link RedisBackend.#openSubscriber}: wakes every waiter, at most every 50 ms. */
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

/** Resolves once the client has ended (its 'end' event), or after `limitMs` at most. */
function endOf(client: Redis | Cluster, limitMs: number): Promise<void> {
  if (client.status === 'end') return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      client.off('end', done);
      resolve();
    };
    const timer = setTimeout(done, limitMs);
    client.once('end', done);
  });
}

/** Keys grouped by hash slot, for multi-key commands on a cluster (one group on a standalone server). */
function bySlot(client: Redis | Cluster, keys: string[]): string[][] {
  if (!(client instanceof Cluster)) return [keys];
  const groups = new Map<number, string[]>();
  for (const key of keys) {
    const slot = slotOf(key);
    const group = groups.get(slot);
    if (group) group.push(key);
    else groups.set(slot, [key]);
  }
  return [...groups.values()];
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function decodeForDump(codec: EntryCodec, key: string, bytes: Buffer): unknown {
  try {
    return codec.decode(bytes).value;
  } catch (error) {
    return new CorruptEntryError(key, error instanceof Error ? error.message : String(error), error);
  }
}
