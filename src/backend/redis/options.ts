/**
 * The options of the Redis backend: their documentation, their defaults (one object), their
 * validation, and the ioredis client they describe.
 *
 * @module
 */

import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { OptionError } from '../../errors.js';
import { describeValue, rejectUnknownOptions } from '../../options.js';
import { CLUSTER_SLOTS } from './buckets.js';
import { redisUrlProblem } from './url.js';
import { NEAR_CACHE_DEFAULTS, type NearCacheOptions, type NearCacheSettings } from './near-cache.js';

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
   * Commands issued in the same tick while the connection has others awaiting their replies
   * (concurrent reads, mostly) are written to the socket together, in groups of at most this
   * many: fewer write syscalls for the client and batched reads for the server, while each read
   * stays one request with its own reply. A command on an idle connection is written at once.
   * `1` writes every command on its own, as ioredis does. Measured on loopback at 64 concurrent
   * hits (`npm run bench -- redis`), 8 to 32 serve best.
   * @default 16
   */
  writeBatch?: number | undefined;
  /**
   * Reads and writes of entries that concurrent calls issue in the same tick go to Redis
   * together: one call of `readMany.lua` (or `writeMany.lua`) per slot, at most 256 entries
   * each, instead of one script call each — a fraction of the client's and the server's work
   * per call. Each entry keeps its own answer, lock and failure, exactly as its own script would
   * give them. A lone call (nothing else issued in its tick, none in the tick before) goes out
   * at once as its own `read.lua` or `write-2.lua`, so the figures at concurrency 1 do not
   * change. `false` sends every read and write as its own script call. Off by default with
   * `nearCache`: on a connection with CLIENT TRACKING on, Redis spends much longer per entry in
   * a batched script than in separate ones (`npm run bench -- tick`, 64 concurrent misses: 45–47
   * against 25–27 µs of script time per miss), and the near-cache's misses ran no faster for it
   * (17k against 21k a second in one run, 18k against 17k in another).
   * @default true; false with nearCache
   */
  batch?: boolean | undefined;
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
   * Keep fresh hits in this process' memory and serve them without a request, kept true by
   * Redis itself: the connection that runs the scripts turns `CLIENT TRACKING` on, and Redis
   * tells this process (on its subscriber connection) every key it read that has changed since —
   * written, invalidated, cleaned by tag, expired, evicted, flushed. `true` for the defaults, or
   * the bounds and heartbeat ({@link NearCacheOptions}). Whenever the process cannot be sure it
   * heard every change (a connection lost or replaced, a failover, a missed heartbeat) it empties
   * the near-cache and reads from Redis until tracking is back. Standalone and Sentinel servers
   * and Redis Cluster (tracking per master); Redis 6 or later, and the ACL of `docs/near-cache.md`.
   * @default false
   */
  nearCache?: boolean | NearCacheOptions | undefined;
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

/** The defaults of the backend's own options and of the ioredis options it sets. */
export const REDIS_DEFAULTS = Object.freeze({
  /** See {@link RedisBackendOptions.commandTimeout}. */
  commandTimeout: 1000,
  /** See {@link RedisBackendOptions.connectTimeout}. */
  connectTimeout: 2000,
  /** See {@link RedisBackendOptions.maxRetriesPerRequest}. */
  maxRetriesPerRequest: 0,
  /** See {@link RedisBackendOptions.writeBatch}. */
  writeBatch: 16,
  /** See {@link RedisBackendOptions.batch} (without `nearCache`). */
  batch: true,
  /** See {@link RedisBackendOptions.buckets}. */
  buckets: 64,
  /** See {@link RedisBackendOptions.invalidationReplicas}. */
  invalidationReplicas: 0,
  /** See {@link RedisBackendOptions.retryStrategy}: 50 ms × attempt, at most 1000 ms. */
  retryStrategy: (times: number): number => Math.min(50 * times, 1000),
});

/** The backend's options, validated, with the client they describe. */
export interface ResolvedRedisOptions {
  /** The client to send commands with. */
  readonly client: Redis | Cluster;
  /** Whether the backend opened the client (and so closes it). */
  readonly ownsClient: boolean;
  /** See {@link RedisBackendOptions.writeBatch}. */
  readonly writeBatch: number;
  /** See {@link RedisBackendOptions.batch}. */
  readonly batch: boolean;
  /** See {@link RedisBackendOptions.buckets}. */
  readonly buckets: number;
  /** See {@link RedisBackendOptions.invalidationReplicas}; `0` on a cluster, where it is not used. */
  readonly invalidationReplicas: number;
  /** How long an invalidation waits for its replicas (`WAIT`): half of `commandTimeout`, in ms. */
  readonly replicaWaitMs: number;
  /** How long a cluster operation waits for the client to learn the slots, in ms. */
  readonly connectWait: number;
  /** The near-cache's settings, or `undefined` when it is off. */
  readonly nearCache: NearCacheSettings | undefined;
}

/**
 * ioredis' connection options (`RedisOptions`), by name. Typed as a record of every key of the
 * installed ioredis' `RedisOptions`, so that an ioredis upgrade that adds or drops an option
 * fails to compile here until the list follows it.
 */
const IOREDIS_OPTION_NAMES: Record<keyof RedisOptions, true> = {
  Connector: true, retryStrategy: true, commandTimeout: true, blockingTimeout: true, blockingTimeoutGrace: true,
  socketTimeout: true, keepAlive: true, noDelay: true, connectionName: true, disableClientInfo: true, clientInfoTag: true,
  username: true, password: true, db: true, autoResubscribe: true, autoResendUnfulfilledCommands: true,
  reconnectOnError: true, readOnly: true, stringNumbers: true, protocol: true, replyMapping: true, connectTimeout: true,
  monitor: true, maxRetriesPerRequest: true, maxLoadingRetryTime: true, enableAutoPipelining: true,
  autoPipeliningIgnoredCommands: true, offlineQueue: true, commandQueue: true, enableOfflineQueue: true,
  enableReadyCheck: true, lazyConnect: true, scripts: true, keyPrefix: true, showFriendlyErrorStack: true,
  port: true, host: true, path: true, family: true, tls: true, disconnectTimeout: true, name: true, role: true,
  sentinelUsername: true, sentinelPassword: true, sentinels: true, sentinelRetryStrategy: true,
  sentinelReconnectStrategy: true, preferredSlaves: true, sentinelCommandTimeout: true, enableTLSForSentinelMode: true,
  sentinelTLS: true, natMap: true, updateSentinels: true, sentinelMaxConnections: true, failoverDetector: true,
  himportFieldsets: true,
};

/**
 * Every option name the backend takes: its own ({@link RedisBackendOptions}), ioredis' typed
 * ones, and, at run time, the names of the installed ioredis' defaults (`Redis.defaultOptions`,
 * when it exposes them), so that an option a newer ioredis adds is not refused.
 */
export const REDIS_OPTION_NAMES: ReadonlySet<string> = new Set([
  ...Object.keys(IOREDIS_OPTION_NAMES),
  ...Object.keys((Redis as unknown as { defaultOptions?: object }).defaultOptions ?? {}),
  'url', 'client', 'cluster', 'clusterOptions', 'buckets', 'writeBatch', 'batch', 'invalidationReplicas', 'nearCache',
]);

/**
 * Validates the options (an {@link OptionError} naming the bad one) and opens nothing: the
 * client is created lazy (`lazyConnect`), or is the given one.
 */
export function resolveRedisOptions(options: RedisBackendOptions): ResolvedRedisOptions {
  const checked = validateRedisOptions(options);
  rejectUnknownOptions(options, REDIS_OPTION_NAMES);
  const { client, url, cluster, clusterOptions } = options;
  const { rest, commandTimeout } = checked;
  const created = createClient(client, url, cluster, clusterOptions, rest, commandTimeout);
  return {
    ...created,
    nearCache: checked.nearCache,
    writeBatch: checked.writeBatch,
    batch: checked.batch,
    buckets: checked.buckets,
    invalidationReplicas: created.client instanceof Cluster ? 0 : checked.invalidationReplicas,
    replicaWaitMs: Math.max(1, Math.floor(commandTimeout / 2)),
    connectWait: (typeof rest.connectTimeout === 'number' ? rest.connectTimeout : REDIS_DEFAULTS.connectTimeout) + commandTimeout,
  };
}

/**
 * Checks every option's value and creates nothing (`RedisBackend.validateOptions`, run when a
 * `Hermes` is constructed; unknown names are checked against `RedisBackend.optionNames`, which a
 * subclass may extend); returns the checked values {@link resolveRedisOptions} builds the client with.
 * @throws {@link OptionError} naming the first bad option
 */
export function validateRedisOptions(options: RedisBackendOptions): {
  rest: RedisOptions;
  commandTimeout: number;
  writeBatch: number;
  batch: boolean;
  buckets: number;
  invalidationReplicas: number;
  nearCache: NearCacheSettings | undefined;
} {
  if (options === null || typeof options !== 'object') throw new OptionError('options', 'options must be an object');
  const { client, url, writeBatch, batch: batchCalls, cluster, buckets, invalidationReplicas, nearCache, ...others } = options;
  const { clusterOptions, ...rest } = others;
  if (clusterOptions !== undefined && (clusterOptions === null || typeof clusterOptions !== 'object')) {
    throw new OptionError('clusterOptions', `clusterOptions must be an object of ioredis cluster options, got ${describeValue(clusterOptions)}`);
  }
  if (url !== undefined && client === undefined) {
    if (typeof url !== 'string') throw new OptionError('url', `url must be a redis:// or rediss:// URL string, got ${describeValue(url)}`);
    const problem = redisUrlProblem(url);
    // Credentials in a malformed URL stay out of the message (and of the logs it may reach).
    if (problem !== undefined) throw new OptionError('url', `url '${url.replace(/\/\/[^/@]*@/, '//…@')}' ${problem}`);
  }
  const writeBatchSize = writeBatch ?? REDIS_DEFAULTS.writeBatch;
  if (!Number.isSafeInteger(writeBatchSize) || writeBatchSize < 1) {
    throw new OptionError('writeBatch', `writeBatch must be a positive integer, got ${describeValue(writeBatch)}`);
  }
  if (batchCalls !== undefined && typeof batchCalls !== 'boolean') {
    throw new OptionError('batch', `batch must be true or false, got ${describeValue(batchCalls)}`);
  }
  if (rest.keyPrefix !== undefined && rest.keyPrefix !== '') {
    throw new OptionError(
      'keyPrefix',
      "RedisBackend does not support ioredis' keyPrefix (it would not apply to the pub/sub channel and SCAN); use the cache's prefix option",
    );
  }
  const commandTimeout = rest.commandTimeout ?? REDIS_DEFAULTS.commandTimeout;
  if (typeof commandTimeout !== 'number' || !Number.isFinite(commandTimeout) || commandTimeout <= 0) {
    throw new OptionError('commandTimeout', `commandTimeout must be a positive number of milliseconds, got ${describeValue(commandTimeout)}`);
  }
  const bucketCount = buckets ?? REDIS_DEFAULTS.buckets;
  if (!Number.isSafeInteger(bucketCount) || bucketCount < 1 || bucketCount > CLUSTER_SLOTS) {
    throw new OptionError('buckets', `buckets must be an integer from 1 to ${CLUSTER_SLOTS}, got ${describeValue(buckets)}`);
  }
  if (cluster !== undefined && (!Array.isArray(cluster) || cluster.length === 0)) {
    throw new OptionError('cluster', 'cluster must be a non-empty array of startup nodes, e.g. [{ host: "10.0.0.1", port: 7000 }]');
  }
  if (cluster !== undefined && (client !== undefined || url !== undefined || rest.sentinels !== undefined)) {
    throw new OptionError('cluster', 'cluster cannot be combined with client, url or sentinels: give one way to connect');
  }
  const replicas = invalidationReplicas ?? REDIS_DEFAULTS.invalidationReplicas;
  if (!Number.isSafeInteger(replicas) || replicas < 0) {
    throw new OptionError('invalidationReplicas', `invalidationReplicas must be a non-negative integer, got ${describeValue(invalidationReplicas)}`);
  }
  const near = resolveNearCache(nearCache);
  if (client !== undefined && !(client instanceof Redis) && !(client instanceof Cluster)) {
    throw new OptionError('client', 'client must be an ioredis Redis or Cluster instance');
  }
  return { rest, commandTimeout, writeBatch: writeBatchSize, batch: batchCalls ?? (near === undefined && REDIS_DEFAULTS.batch), buckets: bucketCount, invalidationReplicas: replicas, nearCache: near };
}

/** The near-cache's settings with their defaults, or `undefined` when it is off; an {@link OptionError} on bad ones. */
function resolveNearCache(option: boolean | NearCacheOptions | undefined): ResolvedRedisOptions['nearCache'] {
  if (option === undefined || option === false) return undefined;
  if (option !== true && (option === null || typeof option !== 'object' || Array.isArray(option))) {
    throw new OptionError('nearCache', `nearCache must be true, false or { maxEntries, maxBytes, heartbeatMs, liveValues }, got ${describeValue(option)}`);
  }
  const given: NearCacheOptions = option === true ? {} : option;
  for (const key of Object.keys(given)) {
    if (!(key in NEAR_CACHE_DEFAULTS)) throw new OptionError('nearCache', `nearCache has no option '${key}' (it takes maxEntries, maxBytes, heartbeatMs, liveValues)`);
  }
  const liveValues = given.liveValues ?? NEAR_CACHE_DEFAULTS.liveValues;
  if (typeof liveValues !== 'boolean') throw new OptionError('nearCache', `nearCache.liveValues must be a boolean, got ${describeValue(given.liveValues)}`);
  const positive = (name: 'maxEntries' | 'maxBytes' | 'heartbeatMs', min: number): number => {
    const value = given[name] ?? NEAR_CACHE_DEFAULTS[name];
    if (!Number.isSafeInteger(value) || value < min) {
      throw new OptionError('nearCache', `nearCache.${name} must be an integer of at least ${min}, got ${describeValue(given[name])}`);
    }
    return value;
  };
  return { maxEntries: positive('maxEntries', 1), maxBytes: positive('maxBytes', 1024), heartbeatMs: positive('heartbeatMs', 10), liveValues };
}

/** The given client (checked), or a new lazy one: a Cluster, or a standalone/Sentinel Redis. */
function createClient(
  client: Redis | Cluster | undefined,
  url: string | undefined,
  cluster: readonly ClusterNode[] | undefined,
  clusterOptions: ClusterOptions | undefined,
  rest: RedisOptions,
  commandTimeout: number,
): { client: Redis | Cluster; ownsClient: boolean } {
  if (client !== undefined) {
    if (!(client instanceof Redis) && !(client instanceof Cluster)) {
      throw new OptionError('client', 'client must be an ioredis Redis or Cluster instance');
    }
    const prefix = client.options.keyPrefix;
    if (prefix !== undefined && prefix !== '') {
      throw new OptionError('client', "The given client uses ioredis' keyPrefix, which RedisBackend does not support; use the cache's prefix option");
    }
    return { client, ownsClient: false };
  }
  const maxRetriesPerRequest = rest.maxRetriesPerRequest === undefined ? REDIS_DEFAULTS.maxRetriesPerRequest : rest.maxRetriesPerRequest;
  if (cluster !== undefined) {
    // Per-node connection options: the cluster decides addresses, retries and queueing.
    const nodeOptions: RedisOptions = { ...rest };
    delete nodeOptions.host;
    delete nodeOptions.port;
    delete nodeOptions.path;
    delete nodeOptions.retryStrategy;
    delete nodeOptions.enableOfflineQueue;
    delete nodeOptions.readOnly;
    const startupNodes = cluster.slice();
    const created = new Cluster(startupNodes, {
      clusterRetryStrategy: REDIS_DEFAULTS.retryStrategy,
      ...clusterOptions,
      redisOptions: {
        connectTimeout: REDIS_DEFAULTS.connectTimeout,
        ...nodeOptions,
        commandTimeout,
        maxRetriesPerRequest,
        ...clusterOptions?.redisOptions,
      },
      enableOfflineQueue: true,
      lazyConnect: true,
    });
    return { client: created, ownsClient: true };
  }
  if (url !== undefined && typeof url !== 'string') throw new OptionError('url', 'url must be a redis:// or rediss:// URL string');
  const clientOptions: RedisOptions = {
    connectTimeout: REDIS_DEFAULTS.connectTimeout,
    retryStrategy: REDIS_DEFAULTS.retryStrategy,
    ...rest,
    commandTimeout,
    maxRetriesPerRequest,
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
  return { client: url === undefined ? new Redis(clientOptions) : new Redis(url, clientOptions), ownsClient: true };
}
