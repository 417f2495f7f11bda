/**
 * `hermes-cache/redis`: the Redis backend. Needs the optional peer dependency `ioredis`
 * (`npm install ioredis`); nothing else in hermes imports it.
 *
 * ```ts
 * import { Hermes } from 'hermes-cache';
 * import { RedisBackend } from 'hermes-cache/redis';
 *
 * const cache = new Hermes(RedisBackend, { ttl: 600, host: 'localhost', db: 1 });
 * // Sentinel:      { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster' }
 * // Redis Cluster: { cluster: [{ host: 'c1', port: 7000 }], buckets: 64 }
 * // Near-cache:    { host: 'localhost', nearCache: true } (hot hits from memory, kept true by Redis)
 * ```
 *
 * The Lua scripts it runs ship in the package's `lua/` folder; {@link listRedisScripts} and
 * {@link redisScripts} give their names, key counts, sources, SHA1s and parsed headers.
 *
 * @module
 */

export { RedisBackend } from './backend.js';
export type { RedisBackendOptions } from './options.js';
export { NEAR_CACHE_DEFAULTS, type NearCacheOptions } from './near-cache.js';
export { BucketLayout, bucketHashTags, CLUSTER_SLOTS } from './buckets.js';
export { RedisBackendClosedError, RedisReplicationError, RedisUnavailableError } from './errors.js';
export {
  listRedisScripts,
  loadScript,
  redisScripts,
  SCRIPTS_DIRECTORY,
  type RedisScript,
  type RedisScripts,
  type ScriptHeader,
  type ScriptParameter,
} from './scripts.js';
