/**
 * Every library of the peer benchmark behind one small interface, each configured the way its
 * README recommends, all reading and writing the same 100-byte value on the same servers.
 * hermes is the built package (`dist/`, what an app installs and runs; `npm run bench:peers`
 * builds it first), as the peers are their published builds: run from `src/` through tsx,
 * hermes' miss measured about a quarter slower (tsx's transform, its `__name` calls among others).
 *
 * A {@link Library} is a read-through cache of `value(i)` keyed by `i`, in two flavours: an
 * untagged key space and a key space whose entries carry the tags {@link TAGS}. The raw rows
 * ("the limit") do the least work that could possibly give the same answer.
 */

import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { MemcacheClient, type MultiRetrievalResponse } from 'memcache-client';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis';
import { createCache } from 'cache-manager';
import { Cacheable } from 'cacheable';
import { createKeyv as createKeyvRedis } from '@keyv/redis';
import type * as HermesApi from '../../../src/index.js';
import type * as RedisApi from '../../../src/backend/redis/index.js';
import type * as MemcachedApi from '../../../src/backend/memcached/index.js';
import type * as ScriptsApi from '../../../src/backend/redis/scripts.js';

// The built package, typed by its sources (the same API): loaded by path at run time, so that
// type-checking does not need `dist/`.
const built = (path: string): Promise<unknown> => import(new URL(`../../../dist/${path}`, import.meta.url).href);
const { Hermes, MemoryBackend } = (await built('index.js')) as typeof HermesApi;
const { RedisBackend } = (await built('backend/redis/index.js')) as typeof RedisApi;
const { MemcachedBackend } = (await built('backend/memcached/index.js')) as typeof MemcachedApi;
const { redisScripts } = (await built('backend/redis/scripts.js')) as typeof ScriptsApi;
type Hermes<O> = HermesApi.Hermes<O>;

/** The three tags of every tagged entry. */
export const TAGS: readonly string[] = ['a', 'b', 'c'];

/** The cached value for key `i`: a string of exactly 100 bytes. */
export const value = (i: number): string => `value ${i} `.padEnd(100, '.');

/** A function computing the value of key `i` on a miss. */
export type Compute = (i: number) => Promise<string>;

/** Where the servers are. */
export interface Servers {
  /** redis-server port on 127.0.0.1 (or a counting proxy in front of it). */
  readonly redisPort: number;
  /** memcached port on 127.0.0.1 (or a counting proxy in front of it). */
  readonly memcachedPort: number;
}

/** A read-through cache under test. */
export interface Library {
  /** Row title. */
  readonly name: string;
  /** Which server it talks to. */
  readonly server: 'redis' | 'memcached' | 'none';
  /** Why a scenario has no figure for this library, by scenario feature; absent: supported. */
  readonly lacks: Partial<Record<Feature, string>>;
  /** The value of key `i`, from the cache or computed (and cached) on a miss. */
  get(i: number, tagged: boolean): Promise<unknown>;
  /** Removes the entry of key `i`. */
  invalidate(i: number, tagged: boolean): Promise<unknown>;
  /** Invalidates every entry carrying `tag`. */
  invalidateTag(tag: string): Promise<unknown>;
  /** Closes every connection. */
  close(): Promise<void>;
}

/** What a scenario needs from a library. */
export type Feature = 'hit' | 'taggedHit' | 'miss' | 'taggedMiss' | 'invalidate' | 'invalidateTag' | 'stampede';

/** How to build one library on given servers; `compute` replaces `value` (stampede). */
export interface LibraryFactory {
  readonly name: string;
  readonly server: Library['server'];
  make(servers: Servers, compute?: Compute): Library;
}

const TTL_S = 3600;
const defaultCompute: Compute = async (i) => value(i);
const unsupported = (why: string) => (): Promise<never> => Promise.reject(new Error(why));

// ---------------------------------------------------------------------------------------------
// hermes

function hermesLibrary(name: string, server: Library['server'], cache: Hermes<unknown>, compute: Compute, close: () => Promise<void>): Library {
  const plain = cache.wrap(compute, { name: 'plain' });
  const tagged = cache.wrap(compute, { name: 'tagged', tags: [...TAGS] });
  return {
    name,
    server,
    lacks: {},
    get: (i, isTagged) => (isTagged ? tagged(i) : plain(i)),
    invalidate: (i, isTagged) => (isTagged ? tagged.invalidate(i) : plain.invalidate(i)),
    invalidateTag: (tag) => cache.clean([tag]),
    close,
  };
}

/** hermes on Redis: `new Hermes(RedisBackend, …)`. */
export const hermesRedis: LibraryFactory = {
  name: 'hermes (Redis)',
  server: 'redis',
  make(servers, compute = defaultCompute) {
    const cache = new Hermes(RedisBackend, { host: '127.0.0.1', port: servers.redisPort, prefix: 'hermes', ttl: TTL_S });
    return hermesLibrary(this.name, this.server, cache as Hermes<unknown>, compute, () => cache.close());
  },
};

/**
 * hermes on Redis with its near-cache: `new Hermes(RedisBackend, { …, nearCache: true })`. A
 * fresh hit read once from Redis is then served from this process' memory, without a request,
 * until Redis' client-side caching says its entry or a tag changed. Its own key prefix, so that
 * its entries and tags are its own.
 */
export const hermesNear: LibraryFactory = {
  name: 'hermes (Redis + near-cache)',
  server: 'redis',
  make(servers, compute = defaultCompute) {
    const cache = new Hermes(RedisBackend, { host: '127.0.0.1', port: servers.redisPort, prefix: 'hermesnear', ttl: TTL_S, nearCache: true });
    return hermesLibrary(this.name, this.server, cache as Hermes<unknown>, compute, () => cache.close());
  },
};

/** hermes on Memcached: `new Hermes(new MemcachedBackend(…))`. */
export const hermesMemcached: LibraryFactory = {
  name: 'hermes (Memcached)',
  server: 'memcached',
  make(servers, compute = defaultCompute) {
    const backend = new MemcachedBackend({ servers: `127.0.0.1:${servers.memcachedPort}`, timeout: 5000 });
    const cache = new Hermes(backend, { prefix: 'hermes', ttl: TTL_S });
    return hermesLibrary(this.name, this.server, cache as Hermes<unknown>, compute, () => cache.close());
  },
};

/** hermes in process: `new Hermes()` (MemoryBackend). */
export const hermesMemory: LibraryFactory = {
  name: 'hermes (memory)',
  server: 'none',
  make(_servers, compute = defaultCompute) {
    const cache = new Hermes(new MemoryBackend({ maxEntries: 100_000 }), { ttl: TTL_S });
    return hermesLibrary(this.name, this.server, cache as Hermes<unknown>, compute, () => cache.close());
  },
};

// ---------------------------------------------------------------------------------------------
// bentocache

function bentoLibrary(name: string, server: Library['server'], bento: BentoCache<{ cache: ReturnType<typeof bentostore> }>, compute: Compute): Library {
  const key = (i: number, tagged: boolean): string => `${tagged ? 't' : 'p'}:${i}`;
  return {
    name,
    server,
    lacks: {},
    get: (i, tagged) =>
      bento.getOrSet({ key: key(i, tagged), factory: () => compute(i), ttl: '1h', ...(tagged ? { tags: [...TAGS] } : {}) }),
    invalidate: (i, tagged) => bento.delete({ key: key(i, tagged) }),
    invalidateTag: (tag) => bento.deleteByTag({ tags: [tag] }),
    close: () => bento.disconnectAll(),
  };
}

/** bentocache with the Redis driver alone (no L1, no bus). */
export const bentoRedis: LibraryFactory = {
  name: 'bentocache (Redis)',
  server: 'redis',
  make(servers, compute = defaultCompute) {
    const bento = new BentoCache({
      default: 'cache',
      prefix: 'bento',
      stores: { cache: bentostore().useL2Layer(redisDriver({ connection: { host: '127.0.0.1', port: servers.redisPort } })) },
    });
    return bentoLibrary(this.name, this.server, bento, compute);
  },
};

/**
 * bentocache with memory L1 + Redis L2 + Redis bus, its README's multi-tier setup. The L1 is
 * given room for every key of the benchmark (`maxItems`, default 1,000 in its memory driver):
 * with the default, the 1,000 untagged and 1,000 tagged entries evict each other and every
 * tagged hit of the benchmark's loop became a Redis GET.
 */
export const bentoTiered: LibraryFactory = {
  name: 'bentocache (memory + Redis + bus)',
  server: 'redis',
  make(servers, compute = defaultCompute) {
    const connection = { host: '127.0.0.1', port: servers.redisPort };
    const bento = new BentoCache({
      default: 'cache',
      prefix: 'bentotier',
      stores: {
        cache: bentostore()
          .useL1Layer(memoryDriver({ maxSize: '100mb', maxItems: 100_000 }))
          .useL2Layer(redisDriver({ connection }))
          .useBus(redisBusDriver({ connection })),
      },
    });
    return bentoLibrary(this.name, this.server, bento, compute);
  },
};

/** bentocache with its memory driver alone (in-process case). */
export const bentoMemory: LibraryFactory = {
  name: 'bentocache (memory)',
  server: 'none',
  make(_servers, compute = defaultCompute) {
    const bento = new BentoCache({ default: 'cache', stores: { cache: bentostore().useL1Layer(memoryDriver({ maxItems: 100_000 })) } });
    return bentoLibrary(this.name, this.server, bento, compute);
  },
};

// ---------------------------------------------------------------------------------------------
// cache-manager v7 (Keyv)

const CACHE_MANAGER_NO_TAGS = 'cache-manager has no tags';

function cacheManagerLibrary(name: string, server: Library['server'], cache: ReturnType<typeof createCache>, compute: Compute): Library {
  return {
    name,
    server,
    lacks: { taggedHit: CACHE_MANAGER_NO_TAGS, taggedMiss: CACHE_MANAGER_NO_TAGS, invalidateTag: CACHE_MANAGER_NO_TAGS },
    get: (i) => cache.wrap(`p:${i}`, () => compute(i), TTL_S * 1000),
    invalidate: (i) => cache.del(`p:${i}`),
    invalidateTag: unsupported(CACHE_MANAGER_NO_TAGS),
    close: async () => {
      await cache.disconnect();
    },
  };
}

/** cache-manager v7 with one Keyv store on `@keyv/redis`, `wrap`. */
export const cacheManagerRedis: LibraryFactory = {
  name: 'cache-manager (Keyv Redis)',
  server: 'redis',
  make(servers, compute = defaultCompute) {
    const store = createKeyvRedis(`redis://127.0.0.1:${servers.redisPort}`, { namespace: 'cm' });
    return cacheManagerLibrary(this.name, this.server, createCache({ stores: [store] }), compute);
  },
};

/** cache-manager v7 with its default in-memory Keyv store. */
export const cacheManagerMemory: LibraryFactory = {
  name: 'cache-manager (memory)',
  server: 'none',
  make(_servers, compute = defaultCompute) {
    return cacheManagerLibrary(this.name, this.server, createCache(), compute);
  },
};

// ---------------------------------------------------------------------------------------------
// cacheable

/**
 * cacheable: `getOrSet` for untagged entries. Its `getOrSet` takes no tags, so tagged entries
 * go through the tag API its README shows: `get`, then on a miss `set(key, value, { tags })`
 * on an instance built with `tags: true`; `tags.invalidateTag(tag)` invalidates.
 */
function cacheableLibrary(name: string, server: Library['server'], make: (tags: boolean) => Cacheable, compute: Compute): Library {
  const plain = make(false);
  const tagged = make(true);
  const getTagged = async (i: number): Promise<unknown> => {
    const key = `t:${i}`;
    const cached = await tagged.get<string>(key);
    if (cached !== undefined) return cached;
    const fresh = await compute(i);
    await tagged.set(key, fresh, { ttl: TTL_S * 1000, tags: [...TAGS] });
    return fresh;
  };
  return {
    name,
    server,
    lacks: {},
    get: (i, isTagged) => (isTagged ? getTagged(i) : plain.getOrSet(`p:${i}`, () => compute(i), { ttl: TTL_S * 1000 })),
    invalidate: (i, isTagged) => (isTagged ? tagged.delete(`t:${i}`) : plain.delete(`p:${i}`)),
    invalidateTag: (tag) => tagged.tags.invalidateTag(tag),
    close: async () => {
      await plain.disconnect();
      await tagged.disconnect();
    },
  };
}

/** cacheable with Redis (`@keyv/redis`) as its only store, so every read reaches Redis. */
export const cacheableRedis: LibraryFactory = {
  name: 'cacheable (Redis)',
  server: 'redis',
  make(servers, compute = defaultCompute) {
    const url = `redis://127.0.0.1:${servers.redisPort}`;
    return cacheableLibrary(this.name, this.server, (tags) => new Cacheable({ primary: createKeyvRedis(url, { namespace: tags ? 'cbt' : 'cbp' }), tags }), compute);
  },
};

/** cacheable with its default in-memory store. */
export const cacheableMemory: LibraryFactory = {
  name: 'cacheable (memory)',
  server: 'none',
  make(_servers, compute = defaultCompute) {
    return cacheableLibrary(this.name, this.server, (tags) => new Cacheable({ tags }), compute);
  },
};

// ---------------------------------------------------------------------------------------------
// The limit: raw clients doing the least work

/** The hermes entry key of `i` for the wrapped function `name`, under prefix `hermes`. */
export function hermesEntryKey(name: 'plain' | 'tagged', i: number): string {
  const keyspace = new Hermes(undefined, { prefix: 'hermes' }).wrap(async (id: number) => id, { name });
  return keyspace.key(i);
}

/**
 * Raw ioredis, one connection: a hit is GET of the hermes entry (MGET of the entry and its 3
 * tag keys when tagged); a miss is GET then SET; invalidation is one DEL. With
 * `autoPipeline`, ioredis' `enableAutoPipelining` writes the commands of one tick together.
 */
function rawRedisFactory(autoPipeline: boolean): LibraryFactory {
  return {
    name: autoPipeline ? 'limit: raw ioredis GET / MGET, auto-pipelined' : 'limit: raw ioredis GET / MGET',
    server: 'redis',
    make(servers, compute = defaultCompute) {
      const client = new Redis(servers.redisPort, '127.0.0.1', { enableAutoPipelining: autoPipeline });
      const keys = { plain: new Map<number, string>(), tagged: new Map<number, string>() };
      const keyOf = (i: number, tagged: boolean): string => {
        const map = tagged ? keys.tagged : keys.plain;
        let key = map.get(i);
        if (key === undefined) {
          key = hermesEntryKey(tagged ? 'tagged' : 'plain', i);
          map.set(i, key);
        }
        return key;
      };
      const tagKeys = TAGS.map((t) => `hermes:tag:${t}`);
      return {
        name: this.name,
        server: this.server,
        lacks: { stampede: 'no stampede protection' },
        get: async (i, tagged) => {
          const key = keyOf(i, tagged) + (i >= HIT_KEYS ? ':raw' : '');
          const found = tagged ? (await client.mgetBuffer(key, ...tagKeys))[0] : await client.getBuffer(key);
          if (found !== null && found !== undefined) return found;
          const fresh = await compute(i);
          await client.set(key, fresh, 'EX', TTL_S);
          return fresh;
        },
        invalidate: (i, tagged) => client.del(`${keyOf(i, tagged)}:raw`),
        invalidateTag: (tag) => client.del(`hermes:rawtag:${tag}`),
        close: async () => {
          client.disconnect();
        },
      };
    },
  };
}

/** Raw ioredis GET / MGET, one command written per call. */
export const rawRedis = rawRedisFactory(false);
/** Raw ioredis GET / MGET with auto-pipelining. */
export const rawRedisPipelined = rawRedisFactory(true);

/**
 * EVALSHA with Buffer replies through ioredis' run-time `evalshaBuffer` (absent from its
 * types); `callBuffer` loses the command name under auto-pipelining.
 */
function evalshaBuffer(client: Redis, args: (string | number)[]): Promise<unknown> {
  return (client as unknown as { evalshaBuffer(...a: (string | number)[]): Promise<unknown> }).evalshaBuffer(...args);
}

/** Raw EVALSHA of hermes' own read script on one connection (hits only). */
function rawEvalshaFactory(autoPipeline: boolean): LibraryFactory {
  return {
    name: autoPipeline ? 'limit: raw EVALSHA of the read script, auto-pipelined' : 'limit: raw EVALSHA of the read script',
    server: 'redis',
    make(servers) {
      const client = new Redis(servers.redisPort, '127.0.0.1', { enableAutoPipelining: autoPipeline });
      const read = redisScripts().read;
      const tagKeys = TAGS.map((t) => `hermes:tag:${t}`);
      const argsOf = new Map<string, (string | number)[]>();
      const na = 'a hit-only floor';
      return {
        name: this.name,
        server: this.server,
        lacks: { miss: na, taggedMiss: na, invalidate: na, invalidateTag: na, stampede: na },
        get: (i, tagged) => {
          const id = `${tagged ? 't' : 'p'}${i}`;
          let args = argsOf.get(id);
          if (args === undefined) {
            const entryKey = hermesEntryKey(tagged ? 'tagged' : 'plain', i);
            const tags = tagged ? tagKeys : [];
            args = [read.sha, 2 + tags.length, entryKey, entryKey.replace(':entry:', ':lock:'), ...tags, '', 10_000, 'seed'];
            argsOf.set(id, args);
          }
          return evalshaBuffer(client, args);
        },
        invalidate: unsupported(na),
        invalidateTag: unsupported(na),
        close: async () => {
          client.disconnect();
        },
      };
    },
    // The script is loaded by the caller (SCRIPT LOAD) before any EVALSHA.
  };
}

/** Raw EVALSHA, one command written per call. */
export const rawEvalsha = rawEvalshaFactory(false);
/** Raw EVALSHA with auto-pipelining. */
export const rawEvalshaPipelined = rawEvalshaFactory(true);

/** memcache-client rejects a delete of an absent key with NOT_FOUND: a success here. */
function ignoreNotFound(error: unknown): void {
  if (!(error instanceof Error && error.message.startsWith('NOT_FOUND'))) throw error;
}

/** The number of keys of the hit scenarios: keys 0..HIT_KEYS-1 are filled before. */
export const HIT_KEYS = 1000;

/**
 * Raw memcache-client, one connection: a hit is a get of the hermes entry (a multi-get of the
 * entry and its 3 tag keys when tagged); a miss is get then set; invalidation one delete.
 */
export const rawMemcached: LibraryFactory = {
  name: 'limit: raw memcached get / multi-get',
  server: 'memcached',
  make(servers, compute = defaultCompute) {
    const client = new MemcacheClient({ server: { server: `127.0.0.1:${servers.memcachedPort}`, maxConnections: 1 }, noDelay: true, cmdTimeout: 5000 });
    const tagKeys = TAGS.map((t) => `hermes:tag:${t}`);
    const keyOf = (i: number, tagged: boolean): string => hermesEntryKey(tagged ? 'tagged' : 'plain', i) + (i >= HIT_KEYS ? ':raw' : '');
    const cache = new Map<string, string>();
    const cachedKey = (i: number, tagged: boolean): string => {
      const id = `${tagged ? 't' : 'p'}${i}`;
      let key = cache.get(id);
      if (key === undefined) {
        key = keyOf(i, tagged);
        cache.set(id, key);
      }
      return key;
    };
    return {
      name: this.name,
      server: this.server,
      lacks: { stampede: 'no stampede protection' },
      get: async (i, tagged) => {
        const key = cachedKey(i, tagged);
        const found = tagged ? (await client.get<MultiRetrievalResponse<Buffer>>([key, ...tagKeys]))[key] : await client.get<Buffer>(key);
        if (found !== undefined) return found.value;
        const fresh = await compute(i);
        await client.set(key, fresh, { lifetime: TTL_S });
        return fresh;
      },
      invalidate: (i, tagged) => client.delete(`${cachedKey(i, tagged)}:raw`).catch(ignoreNotFound),
      invalidateTag: (tag) => client.delete(`hermes:rawtag:${tag}`).catch(ignoreNotFound),
      close: async () => {
        client.shutdown();
      },
    };
  },
};

/**
 * The in-process floor: a hand-written LRU (a Map re-inserted on each get) whose key is built
 * from the arguments with JSON.stringify, as a hand-written memo would.
 */
export class HandLru<V> {
  readonly #map = new Map<string, V>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** The value of `key`, made most recently used; `undefined` if absent. */
  get(key: string): V | undefined {
    const found = this.#map.get(key);
    if (found === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, found);
    return found;
  }

  /** Stores `value` under `key`, evicting the least recently used entry when full. */
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (oldest.done !== true) this.#map.delete(oldest.value);
    }
  }
}

/** The in-process floor as a library: a hand-written LRU, read through by hand. */
export const handLru: LibraryFactory = {
  name: 'limit: hand-written LRU get',
  server: 'none',
  make(_servers, compute = defaultCompute) {
    const lru = new HandLru<string>(100_000);
    return {
      name: this.name,
      server: this.server,
      lacks: {},
      get: async (i, tagged) => {
        const key = JSON.stringify([tagged ? 't' : 'p', i]);
        const found = lru.get(key);
        if (found !== undefined) return found;
        const fresh = await compute(i);
        lru.set(key, fresh);
        return fresh;
      },
      invalidate: async () => undefined,
      invalidateTag: async () => undefined,
      close: async () => undefined,
    };
  },
};

/** lru-cache, for reference beside the hand-written floor. */
export function lruCacheFloor(): (i: number) => unknown {
  const lru = new LRUCache<string, string>({ max: 100_000 });
  for (let i = 0; i < HIT_KEYS; i++) lru.set(JSON.stringify(['p', i]), value(i));
  return (i) => lru.get(JSON.stringify(['p', i % HIT_KEYS]));
}

/** Libraries on Redis or Memcached, in table order. */
export const NETWORK_LIBRARIES: readonly LibraryFactory[] = [
  rawRedis,
  rawRedisPipelined,
  rawEvalsha,
  rawEvalshaPipelined,
  hermesRedis,
  hermesNear,
  bentoRedis,
  bentoTiered,
  cacheManagerRedis,
  cacheableRedis,
  rawMemcached,
  hermesMemcached,
];

/** In-process libraries, in table order. */
export const MEMORY_LIBRARIES: readonly LibraryFactory[] = [handLru, hermesMemory, cacheManagerMemory, cacheableMemory, bentoMemory];

/** Libraries of the stampede test (Redis, several processes), by name. */
export const STAMPEDE_LIBRARIES: readonly LibraryFactory[] = [hermesRedis, hermesNear, bentoRedis, bentoTiered, cacheManagerRedis, cacheableRedis];
