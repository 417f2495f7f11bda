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
 * Lock waiters are woken by pub/sub, on a channel of each lock named as its key (a channel is
 * not a key; an ACL `&{prefix}:*` covers it): a process subscribes to it only while it has
 * waiters for that lock, and the scripts that delete a lock publish on it only when somebody
 * listens (`PUBSUB NUMSUB`; on a cluster `SHARDNUMSUB` and `SPUBLISH`, so the message stays on
 * the entry's shard). An uncontended miss publishes nothing; see `wakeups.ts`.
 *
 * Every key a script touches is in its KEYS, so the backend runs under an ACL user confined
 * to `~{prefix}:*` and `&{prefix}:*`. The commands it needs: `eval`, `evalsha`, `scan`,
 * `unlink`, `get`, `exists`, `publish`, `subscribe`, `unsubscribe` (on a cluster `spublish`,
 * `ssubscribe`, `sunsubscribe`; and `wait` with `invalidationReplicas`), and inside the scripts
 * `get`, `set`, `del`, `unlink`, `pttl`, `time`, `pubsub|numsub` and `publish` (on a cluster
 * `pubsub|shardnumsub` and `spublish`).
 *
 * Standalone servers, Sentinel (through ioredis' own `sentinels` options) and Redis Cluster
 * (the `cluster` option, or an ioredis `Cluster` as `client`) are supported. On a cluster the
 * keys are laid out in hash-tag buckets (see `buckets.ts` and the `buckets` option) so that
 * every script still touches one slot and every read is still one request; `clean(tags)` is
 * one pipelined request per master, and `clear()` and `dump()` scan every master.
 *
 * The folder: `options.ts` (options, defaults, client), `script-caller.ts` (EVAL/EVALSHA and
 * NOSCRIPT), `scripts.ts` (the scripts and their headers), `placement.ts` (where keys and
 * commands go: one node, or cluster buckets), `cluster.ts` (cluster-only operations),
 * `wakeups.ts` (pub/sub lock wake-ups), `coalesce.ts` (socket-write coalescing), `batch.ts`
 * (tick batching of reads and writes), `tick.ts` (the tick's crowd both decide by),
 * `near-cache.ts` (the `nearCache` option's memory), `tracking.ts` and `tracking-cluster.ts`
 * (CLIENT TRACKING that keeps it true); this file builds each operation's KEYS and ARGV.
 *
 * @module
 */

import { Cluster, Redis } from 'ioredis';
import { FRESH_UNTIL_OFFSET, isTextEntry, TAG_HASH_OFFSET } from '../../codec.js';
import { uniqueToken } from '../../keys.js';
import type { Backend, BackendContext, EntryRef, NearCacheStats, ReadReply, ReadRequest, SetRequest, StoredEntry, WriteRequest } from '../backend.js';
import { decodeForDump, sortedByKey } from '../kit.js';
import { earlyRandom } from '../early.js';
import type { BucketLayout } from './buckets.js';
import { ClusterReadiness } from './cluster.js';
import { chunksBySlot, type Pending, TickBatch } from './batch.js';
import { createWriteCoalescer, type WriteCoalescer } from './coalesce.js';
import { RedisBackendClosedError, RedisReplicationError, RedisUnavailableError } from './errors.js';
import { REDIS_OPTION_NAMES, type RedisBackendOptions, resolveRedisOptions, validateRedisOptions } from './options.js';
import { AttachedPrefixes, ClusterPlacement, type Placement, SingleNodePlacement } from './placement.js';
import { type ScriptArgument, ScriptCaller } from './script-caller.js';
import { type RedisScript, type RedisScripts, redisScripts } from './scripts.js';
import { NearFront } from './near-front.js';
import { LockWakeups } from './wakeups.js';

export type { RedisBackendOptions } from './options.js';

/** The message of ioredis' `commandTimeout` rejections. */
const COMMAND_TIMED_OUT = 'Command timed out';
/**
 * The most entries one call of `readMany.lua` reads: a bigger batch is cut into calls of this
 * size (still sent together), so that no single script holds the server for long.
 */
export const READ_MANY_CHUNK = 256;
/**
 * With the `batch` option, the most reads (or writes) of one tick sent in one script call: a
 * tick with more sends each 32 as they fill, so that the server runs the first call while the
 * client still builds the next ones (one call per tick would have the client and the server take
 * turns). Measured at 64 concurrent misses while choosing it: 16 and 32 alike, 64 (a single
 * call per tick there) about half as fast.
 */
export const TICK_BATCH_SIZE = 32;
/** No tags: the KEYS of the scripts that take an entry and its lock only. */
const NO_TAGS: readonly string[] = Object.freeze([]);

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
  readonly #scripts: RedisScripts = redisScripts();
  readonly #prefixes = new AttachedPrefixes();
  readonly #placement: Placement;
  readonly #caller: ScriptCaller;
  readonly #coalescer: WriteCoalescer;
  readonly #wakeups: LockWakeups;
  /** With the `batch` option: the reads, and the writes, issued in the current tick. */
  readonly #reads: TickBatch<ReadRequest, ReadReply> | undefined;
  readonly #writes: TickBatch<WriteRequest, boolean> | undefined;
  /** The scripts' `tracked` argument: `'1'` with the near-cache (CLIENT TRACKING on the connection), else `''`. */
  readonly #tracked: '1' | '';
  /** How the scripts wake a lock's waiters (their `wake mode` argument): `'n'` on one server, `'s'` on a cluster. */
  readonly #wakeMode: 'n' | 's';
  /** How long `close()` waits for its own client to end, in ms. */
  readonly #connectWait: number;
  /** Replicas an invalidation must reach (`WAIT`) before it resolves; see the option. */
  readonly #invalidationReplicas: number;
  readonly #replicaWaitMs: number;
  /** The near-cache, with the `nearCache` option. */
  readonly #near: NearFront | undefined;
  /** With the near-cache: a fresh entry from memory (see {@link Backend.peek}). */
  readonly peek?: (ref: EntryRef, tagKeys: readonly string[]) => StoredEntry | undefined;
  /** With the near-cache: see {@link Backend.changeMark}. */
  readonly changeMark?: () => number;
  /** With the near-cache: see {@link Backend.changedSince}. */
  readonly changedSince?: (ref: EntryRef, tagKeys: readonly string[], mark: number) => boolean;
  #lastError: unknown;
  #closed = false;
  /** Where the client connects (`host:port`, a socket path, the sentinels, the cluster's startup nodes), for messages. */
  readonly #address: string;

  /** Every option name the backend takes (its own and ioredis'); see {@link BackendClass.optionNames}. */
  static readonly optionNames: ReadonlySet<string> = REDIS_OPTION_NAMES;

  /**
   * Checks the options as the constructor does, creating no client and opening nothing; see
   * {@link BackendClass.validateOptions}.
   * @throws {@link OptionError} naming the first bad option
   */
  static validateOptions(options: RedisBackendOptions = {}): void {
    validateRedisOptions(options);
  }

  /**
   * @param options - connection options, a `url` or a `client`; see {@link RedisBackendOptions}.
   *   Omitted: `localhost:6379`, database 0.
   */
  constructor(options: RedisBackendOptions = {}) {
    const resolved = resolveRedisOptions(options);
    this.#address = addressOf(resolved.client);
    const client = resolved.client;
    this.client = client;
    this.#ownsClient = resolved.ownsClient;
    this.#connectWait = resolved.connectWait;
    this.#invalidationReplicas = resolved.invalidationReplicas;
    this.#replicaWaitMs = resolved.replicaWaitMs;
    client.on('error', this.#onClientError);
    if (client instanceof Cluster) {
      const readiness = new ClusterReadiness(client, resolved.connectWait, () => this.#lastError);
      this.#placement = new ClusterPlacement(client, resolved.buckets, readiness);
      this.#caller = new ScriptCaller(client, () => readiness.ready(), this.#explain);
    } else {
      this.#placement = new SingleNodePlacement(client);
      this.#caller = new ScriptCaller(client, undefined, this.#explain);
    }
    this.buckets = this.#placement.layout;
    this.#wakeMode = client instanceof Cluster ? 's' : 'n';
    this.#coalescer = createWriteCoalescer(client, resolved.writeBatch);
    this.#reads = resolved.batch ? new TickBatch(this.#sendReads, TICK_BATCH_SIZE) : undefined;
    this.#writes = resolved.batch ? new TickBatch(this.#sendWrites, TICK_BATCH_SIZE) : undefined;
    const near = resolved.nearCache === undefined
      ? undefined
      : new NearFront(client, resolved.nearCache, this.#placement, this.#prefixes, this.#onClientError, () => { this.#wakeups.open(); });
    this.#near = near;
    this.#tracked = near === undefined ? '' : '1';
    this.#wakeups = new LockWakeups(
      client,
      this.#onClientError,
      (lockKey) => {
        try {
          return this.#usableClient().exists(lockKey);
        } catch (error) {
          return Promise.reject(error);
        }
      },
      near?.listener,
    );
    if (near !== undefined) {
      this.peek = near.peek;
      this.changedSince = near.changedSince;
      this.changeMark = near.changeMark;
    }
  }

  /** The near-cache's counters; `undefined` without the `nearCache` option. */
  nearCacheStats(): NearCacheStats | undefined {
    return this.#near?.stats();
  }

  /** Binds the backend to a cache's key space; opens nothing. Several prefixes may share a backend. */
  attach(context: BackendContext): void {
    this.#placement.checkPrefix(context.prefix);
    this.#prefixes.attach(context);
  }

  /**
   * One read: tags, tag hash, entry and (on a miss) the lock, atomically — one call of
   * `read.lua`, or, among the reads concurrent calls issue in the same tick (the `batch`
   * option), one entry of a `readMany.lua` call (see `batch.ts`).
   */
  read(request: ReadRequest): Promise<ReadReply> {
    // A refresh ignores the entry (`lock.lua`): never batched.
    if (request.refresh !== true && this.#reads !== undefined) {
      const queued = this.#reads.add(request);
      if (queued !== undefined) return queued;
    }
    return this.#readOne(request);
  }

  /** One call of `read.lua` (`lock.lua` for a refresh). */
  #readOne(request: ReadRequest): Promise<ReadReply> {
    const { lockToken, tagKeys } = request;
    // A refresh ignores the entry: `lock.lua` answers as `read.lua` does on a miss.
    const script = request.refresh === true ? this.#scripts.lock : this.#scripts.read;
    const keys = this.#placement.keysOf(request.ref, tagKeys);
    const lockKey = keys[1] as string;
    // The versions of the tags this read creates are seeded afresh for every read, never by the
    // lock token: a call reads again with the same token after waiting for a lock, and a version
    // it created before a clean(tags) must not come back after it — every entry written with
    // that version meanwhile would be valid again.
    // Early refresh: the script decides with the server's clock; the random draw is ours.
    const early = request.earlyRefresh !== undefined && lockToken !== undefined;
    const argv: ScriptArgument[] = [lockToken ?? '', Math.max(1, Math.ceil(request.lockTtlMs)), tagKeys.length === 0 ? '' : uniqueToken()];
    // lock.lua takes the first three only. With the near-cache, a lock this read takes is read
    // back (PTTL) so that the tracking connection hears of its deletion.
    if (script === this.#scripts.read) argv.push(early ? request.earlyRefresh : '', early ? earlyRandom() : '', this.#tracked);
    const sentAt = Date.now();
    const near = this.#near;
    const since = near === undefined ? 0 : near.readSent();
    return this.#call(
      script,
      keys,
      argv,
      (reply): ReadReply => this.#readReply(request, lockKey, sentAt, since, reply, script),
      (error: unknown) => {
        // Timed out (a hung or overloaded server): the read is still queued and may take the
        // lock once the server answers, for a caller that has fallen open and will never write
        // nor release it, blocking every other caller of the key for the whole lock TTL. A
        // release sent now follows the read on the same connection and frees it.
        if (lockToken !== undefined && error instanceof Error && error.message === COMMAND_TIMED_OUT) {
          this.release(request.ref, lockToken).catch(() => undefined);
        }
        throw error;
      },
    );
  }

  /**
   * What a reply of `read.lua` (or one element of `readMany.lua`'s) means: a fresh hit (kept
   * in the near-cache unless one of its keys changed since the request was sent at `since`), a
   * stale hit or a miss with the lock decision.
   */
  #readReply(request: ReadRequest, lockKey: string, sentAt: number, since: number, reply: unknown, script: RedisScript): ReadReply {
    if (Buffer.isBuffer(reply)) {
      // A fresh hit: the entry, whose header holds the (equal) tag hash.
      const hit = { entry: reply, tagHash: reply.toString('latin1', TAG_HASH_OFFSET, FRESH_UNTIL_OFFSET), locked: false, stale: false };
      // Kept in memory unless one of its keys changed since the read was sent.
      this.#near?.fill(request, since, reply);
      return hit;
    }
    if (!Array.isArray(reply) || reply.length < 3 || reply.length > 5 || !Buffer.isBuffer(reply[0])) {
      throw new Error(`Unexpected reply from ${script.file}: ${String(reply)}`);
    }
    const locked = reply[1] === 1;
    if (!locked && request.lockToken !== undefined) this.#wakeups.rememberMiss(lockKey, sentAt, Number(reply[2]));
    const staleEntry: unknown = reply[3];
    // A fresh entry this read decided to refresh early, holding the lock (not kept in the
    // near-cache: the refresh's write replaces it at once).
    if (reply.length === 5 && Buffer.isBuffer(staleEntry)) return { entry: staleEntry, tagHash: reply[0].toString('latin1'), locked, stale: false, early: true };
    if (Buffer.isBuffer(staleEntry)) return { entry: staleEntry, tagHash: reply[0].toString('latin1'), locked, stale: true };
    return { entry: undefined, tagHash: reply[0].toString('latin1'), locked, stale: false };
  }

  /**
   * Many reads, each with the meaning of {@link RedisBackend.read}: one call of `readMany.lua`
   * per slot (all the entries on one server; on a cluster, those of one bucket), at most
   * {@link READ_MANY_CHUNK} entries each (a slot with one entry: one `read.lua`). The calls of
   * one tick go out in one socket write per connection, so a batch costs one round trip per
   * server. Each entry's promise settles on its own: a failing master fails only the entries
   * it serves.
   */
  readMany(requests: readonly ReadRequest[]): Promise<ReadReply>[] {
    const pending: Pending<ReadRequest, ReadReply>[] = [];
    const results = requests.map(
      (request) =>
        new Promise<ReadReply>((resolve, reject) => {
          pending.push({ request, resolve, reject });
        }),
    );
    this.#sendReads(pending);
    return results;
  }

  /** Sends reads (a batch, or the reads queued in a tick): one script call per slot and chunk. */
  readonly #sendReads = (pending: Pending<ReadRequest, ReadReply>[]): void => {
    this.#sendBySlot(pending, (request) => this.#readOne(request), (chunk) => {
      this.#readChunk(chunk);
    });
  };

  /**
   * Sends queued calls grouped by slot, in chunks of at most {@link READ_MANY_CHUNK}: a chunk
   * of one through `one` (its own script call), a bigger one through `many`; then writes out
   * what the coalescer holds, so that the server starts on them at once.
   */
  #sendBySlot<Request extends { readonly ref: EntryRef }, Reply>(
    pending: Pending<Request, Reply>[],
    one: (request: Request) => Promise<Reply>,
    many: (chunk: Pending<Request, Reply>[]) => void,
  ): void {
    const placement = this.#placement;
    for (const chunk of chunksBySlot(pending, (item) => placement.slotOf(item.request.ref), READ_MANY_CHUNK)) {
      if (chunk.length === 1) {
        const { request, resolve, reject } = chunk[0] as Pending<Request, Reply>;
        one(request).then(resolve, reject);
      } else {
        many(chunk);
      }
    }
    this.#coalescer.flush();
  }

  /** One call of `readMany.lua` for these reads (all of one slot), settling each. */
  #readChunk(chunk: readonly Pending<ReadRequest, ReadReply>[]): void {
    const script = this.#scripts.readMany;
    const placement = this.#placement;
    const entryKeys: string[] = [];
    const tagKeys: string[] = [];
    const tagPositions = new Map<string, number>();
    const argv: ScriptArgument[] = [chunk.length, uniqueToken(), this.#tracked];
    let tagged = false;
    for (const { request } of chunk) {
      const keys = placement.keysOf(request.ref, request.tagKeys);
      entryKeys.push(keys[0] as string, keys[1] as string);
      // Early refresh: each entry gets its own random draw; the script decides with the server's clock.
      const early = request.earlyRefresh !== undefined && request.lockToken !== undefined;
      argv.push(
        request.lockToken ?? '',
        Math.max(1, Math.ceil(request.lockTtlMs)),
        early ? request.earlyRefresh : '',
        early ? earlyRandom() : '',
        keys.length - 2,
      );
      for (let k = 2; k < keys.length; k++) {
        const tagKey = keys[k] as string;
        let position = tagPositions.get(tagKey);
        if (position === undefined) {
          tagKeys.push(tagKey);
          tagPositions.set(tagKey, (position = tagKeys.length));
        }
        argv.push(position);
        tagged = true;
      }
    }
    // As in read(): no seed is needed when no tag can be created.
    if (!tagged) argv[1] = '';
    const sentAt = Date.now();
    const since = this.#near === undefined ? 0 : this.#near.readSent();
    this.#call(script, tagKeys.length === 0 ? entryKeys : entryKeys.concat(tagKeys), argv).then(
      (reply) => {
        if (!Array.isArray(reply) || reply.length !== chunk.length) {
          const error = new Error(`Unexpected reply from ${script.file}: ${String(reply)}`);
          for (const item of chunk) item.reject(error);
          return;
        }
        chunk.forEach(({ request, resolve, reject }, j) => {
          try {
            resolve(this.#readReply(request, entryKeys[2 * j + 1] as string, sentAt, since, reply[j], script));
          } catch (error) {
            reject(error);
          }
        });
      },
      (error: unknown) => {
        for (const { request, reject } of chunk) {
          // As in read(): a timed-out call may still take the locks once the server answers.
          if (request.lockToken !== undefined && error instanceof Error && error.message === COMMAND_TIMED_OUT) {
            this.release(request.ref, request.lockToken).catch(() => undefined);
          }
          reject(error);
        }
      },
    );
  }

  /**
   * On a cluster: the master that serves the entry's bucket (`host:port`, from the client's
   * slot map), so that the core's circuit breaker trips per master; `undefined` on one server
   * (one breaker) or while the slots are unknown.
   */
  failureDomain(ref: EntryRef): string | undefined {
    return this.#placement.failureDomain(ref);
  }

  /**
   * One write: stores the entry (if the lock is still ours) and releases the lock — one call of
   * `write-2.lua`, or, among the writes concurrent calls issue in the same tick (the `batch`
   * option), one entry of a `writeMany.lua` call.
   */
  write(request: WriteRequest): Promise<boolean> {
    const { entry } = request;
    if (!(entry instanceof Uint8Array)) return Promise.reject(new TypeError('RedisBackend stores bytes: write() takes an encoded entry'));
    if (this.#writes !== undefined) {
      const queued = this.#writes.add(request);
      if (queued !== undefined) return queued;
    }
    return this.#writeOne(request);
  }

  /** One call of `write-2.lua`. */
  #writeOne(request: WriteRequest): Promise<boolean> {
    const { ref } = request;
    return this.#call(
      this.#scripts.write,
      this.#placement.keysOf(ref, NO_TAGS),
      [entryArgument(request.entry), Math.max(1, Math.ceil(request.ttlMs)), request.lockToken ?? '', this.#wakeMode],
      isOne,
    );
  }

  /** Sends the writes queued in a tick: one script call per slot and chunk. */
  readonly #sendWrites = (pending: Pending<WriteRequest, boolean>[]): void => {
    this.#sendBySlot(pending, (request) => this.#writeOne(request), (chunk) => {
      this.#writeChunk(chunk);
    });
  };

  /** One call of `writeMany.lua` for these writes (all of one slot), settling each. */
  #writeChunk(chunk: readonly Pending<WriteRequest, boolean>[]): void {
    const keys: string[] = [];
    const argv: ScriptArgument[] = [this.#wakeMode];
    for (const { request } of chunk) {
      keys.push(...this.#placement.keysOf(request.ref, NO_TAGS));
      argv.push(entryArgument(request.entry), Math.max(1, Math.ceil(request.ttlMs)), request.lockToken ?? '');
    }
    const script = this.#scripts.writeMany;
    this.#call(script, keys, argv).then(
      (reply) => {
        if (!Array.isArray(reply) || reply.length !== chunk.length) {
          const error = new Error(`Unexpected reply from ${script.file}: ${String(reply)}`);
          for (const item of chunk) item.reject(error);
          return;
        }
        chunk.forEach((item, j) => {
          item.resolve(reply[j] === 1);
        });
      },
      (error: unknown) => {
        for (const item of chunk) item.reject(error);
      },
    );
  }

  /**
   * One call of `set.lua`: stores the entry stamped with the tags' current hash and deletes its
   * lock (a computation in flight drops its write), publishing the release.
   */
  async set(request: SetRequest): Promise<void> {
    const { entry, ref, tagKeys } = request;
    if (!(entry instanceof Uint8Array)) throw new TypeError('RedisBackend stores bytes: set() takes an encoded entry');
    const bytes = bytesOf(entry);
    // As invalidate() does: this process' near-cache forgets the entry before and after.
    const acknowledged = this.#near?.invalidating(ref);
    await this.#call(this.#scripts.set, this.#placement.keysOf(ref, tagKeys), [
      bytes,
      Math.max(1, Math.ceil(request.ttlMs)),
      tagKeys.length === 0 ? '' : uniqueToken(),
      this.#wakeMode,
    ]);
    acknowledged?.();
  }

  /** One call of `release-1.lua`: compare-and-delete of the lock, publishing the release. */
  async release(ref: EntryRef, token: string): Promise<void> {
    await this.#call(this.#scripts.release, [this.#placement.lockKeyOf(ref)], [token, this.#wakeMode]);
  }

  /**
   * Waits for a release of the lock published on its own channel, or `timeoutMs`, or the
   * lock's expiry (as reported by the read that found it taken), whichever comes first. The
   * first waiter of this process on a lock subscribes to its channel (one request on the
   * subscriber connection) and then checks that the lock still exists, since a release
   * published before the subscription is not delivered; the others share that subscription,
   * and the last one to leave unsubscribes (one request). A release seen after the read was
   * sent, or a reconnection of the subscriber, count as a wake-up.
   */
  waitForRelease(ref: EntryRef, timeoutMs: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    return this.#wakeups.wait(this.#placement.lockKeyOf(ref), timeoutMs);
  }

  /** One call of `invalidate-2.lua`: deletes the entry and its lock, publishing the release. */
  async invalidate(ref: EntryRef): Promise<void> {
    // The near-cache drops the entry before the request and again once it is acknowledged (a
    // read answered in between may have filled it), without waiting for Redis' message.
    const acknowledged = this.#near?.invalidating(ref);
    await this.#call(this.#scripts.invalidate, this.#placement.keysOf(ref, NO_TAGS), [this.#wakeMode]);
    acknowledged?.();
    await this.#replicated();
  }

  /**
   * One call of `cleanTags.lua`: deletes the tag versions; nothing is sent for no tags.
   * On a cluster: deletes each tag's copy in every bucket, one `UNLINK` per bucket, the
   * buckets of each master sent as one pipeline, all masters in parallel — one request per
   * master. A bucket whose slot moved meanwhile is retried on its own, redirected.
   */
  async cleanTags(prefix: string, tagKeys: readonly string[]): Promise<void> {
    if (tagKeys.length === 0) return;
    this.#usableClient();
    const acknowledged = this.#near?.cleaningTags(prefix, tagKeys); // as invalidate() does
    await this.#placement.cleanTags(prefix, tagKeys, async (keys) => {
      await this.#call(this.#scripts.cleanTags, keys, []);
    });
    acknowledged?.();
    await this.#replicated();
  }

  /**
   * Removes every key under `${prefix}:` with SCAN (MATCH, batches of 1000) and UNLINK, never
   * FLUSHDB: other keys of the database stay. Locks removed this way are published as
   * released, each on its own channel (`SPUBLISH` on a cluster). Costs one SCAN per batch plus
   * one UNLINK per non-empty batch, and one PUBLISH per lock.
   */
  async clear(prefix: string): Promise<void> {
    const client = this.#usableClient();
    const lockStart = `${prefix}:lock:`;
    const acknowledged = this.#near?.clearing(); // as invalidate() does, for every entry
    await this.#scan(prefix, async (keys) => {
      const sends: Promise<unknown>[] = this.#placement.bySlot(keys).map((group) => client.unlink(...group));
      for (const key of keys) {
        if (this.#placement.unplace(key, prefix).startsWith(lockStart)) sends.push(this.#wakeups.publish(key));
      }
      await Promise.all(sends);
    });
    acknowledged?.();
    await this.#replicated();
  }

  /**
   * Every key under `${prefix}:` (default: the attached cache's prefix) with its value:
   * entries decoded with the codec of the cache attached under that prefix (a
   * {@link CorruptEntryError} for bytes that do not decode), tag versions and lock tokens as
   * strings; on a cluster, a tag's copies in several buckets as the list of their versions.
   * Sorted by key. SCAN, then GET of each batch.
   */
  async dump(prefix?: string): Promise<Record<string, unknown>> {
    const context = this.#prefixes.context(prefix);
    if (!context) throw new Error('RedisBackend is not attached to a cache yet');
    const chosen = prefix ?? context.prefix;
    const client = this.#usableClient();
    const entryStart = `${chosen}:entry:`;
    const seen = new Set<string>(); // SCAN may return a key twice
    const out: Record<string, unknown> = {};
    await this.#scan(chosen, async (keys) => {
      const values = await Promise.all(keys.map((key) => client.getBuffer(key)));
      keys.forEach((stored, i) => {
        const value = values[i];
        if (value === null || value === undefined || seen.has(stored)) return; // expired meanwhile
        seen.add(stored);
        const key = this.#placement.unplace(stored, chosen);
        if (key.startsWith(entryStart)) out[key] = decodeForDump(context.codec, key, value);
        else if (key in out) {
          // A tag's copies in several buckets: every version, in key order of the buckets.
          const known = out[key];
          out[key] = [...(Array.isArray(known) ? (known as string[]) : [known as string]), value.toString('utf8')];
        } else out[key] = value.toString('utf8');
      });
    });
    return sortedByKey(out);
  }

  /**
   * The keys under which Redis stores an entry (for operators and tests): the entry, its lock,
   * then the given tags' copies checked by its reads — the keys as the cache names them on a
   * standalone server; on a cluster, moved into the entry's bucket (each bucket has its own
   * copy of a tag).
   */
  storedKeys(ref: EntryRef, tagKeys: readonly string[] = NO_TAGS): string[] {
    return this.#placement.keysOf(ref, tagKeys);
  }

  /**
   * Sends the reads and writes queued in this tick, resolves pending waits as timed out, closes
   * the subscriber connection and, if the backend opened it, the client (a given `client` stays
   * open). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    // Reads and writes queued in this tick were issued before close(): they go out before QUIT.
    this.#reads?.flush();
    this.#writes?.flush();
    this.#closed = true;
    // The connections the backend opened keep their error listener after close: a late error
    // on them (a write failing with EPIPE once the server is gone) is absorbed, never printed
    // by ioredis as an "Unhandled error event". A given client gets back its own listeners only.
    this.#near?.close();
    this.#wakeups.close();
    this.#caller.close();
    if (this.#ownsClient) {
      const client = this.client;
      const ended = endOf(client, this.#connectWait);
      if (client.status === 'ready') await client.quit().catch(() => { client.disconnect(); });
      else {
        forgetClosedSocket(client);
        client.disconnect();
      }
      // ioredis' quit() leaves the failoverDetector's connections to the sentinels open (and
      // reconnecting): disconnect() closes them.
      if (client instanceof Redis && client.options.failoverDetector === true) client.disconnect();
      // quit() resolves with the server's OK, before the socket has closed: wait for that too.
      await ended;
    } else {
      this.client.off('error', this.#onClientError);
    }
  }

  /**
   * A command that failed because the connection did (ioredis' "max retries per request" for a
   * command queued while connecting, its "Connection is closed"): a {@link RedisUnavailableError}
   * naming the server, with the connection's own error as detail. Other failures unchanged.
   */
  readonly #explain = (error: unknown): unknown => {
    if (!(error instanceof Error) || !isConnectionFailure(error)) return error;
    return new RedisUnavailableError(this.client.status, this.#lastError ?? error, this.#address);
  };

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
    if (wanted === 0) return;
    const acked = await this.#usableClient().wait(wanted, this.#replicaWaitMs);
    if (acked < wanted) throw new RedisReplicationError(acked, wanted, this.#replicaWaitMs);
  }

  /** The client, or a fast rejection while a lost connection is being re-established. */
  #usableClient(): Redis | Cluster {
    if (this.#closed) throw new RedisBackendClosedError();
    const client = this.client;
    const status = client.status;
    if (status === 'reconnecting' || status === 'close') throw new RedisUnavailableError(status, this.#lastError, this.#address);
    return client;
  }

  /**
   * One call of a script (EVAL the first time on a connection, EVALSHA after, NOSCRIPT handled
   * once per script and connection: see `script-caller.ts`), its socket write coalesced; the
   * reply through `onReply`, a failure through `onError` (see {@link ScriptCaller.call}).
   */
  #call<T = unknown>(
    script: RedisScript,
    keys: readonly string[],
    argv: readonly ScriptArgument[],
    onReply?: (reply: unknown) => T,
    onError?: (error: unknown) => never,
  ): Promise<T> {
    try {
      this.#usableClient();
    } catch (error) {
      return Promise.reject(error);
    }
    this.#coalescer.beforeWrite();
    return this.#caller.call(script, keys, argv, onReply, onError);
  }

  /** Calls `each` with every batch of keys under `${prefix}:`, in SCAN order, on every node holding keys (in parallel). */
  async #scan(prefix: string, each: (keys: string[]) => Promise<void>): Promise<void> {
    this.#usableClient();
    const pattern = `${escapeGlob(prefix)}:*`;
    const scanNode = async (node: Redis): Promise<void> => {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await each(keys);
      } while (cursor !== '0');
    };
    await Promise.all((await this.#placement.nodes()).map(scanNode));
  }
}

/**
 * Resolves once the client has ended (its 'end' event), or after `limitMs` at most. A client
 * with no socket open (waiting to reconnect, or never connected) emits no 'end' when
 * disconnected: nothing to wait for. The timer never keeps the process alive.
 */
function endOf(client: Redis | Cluster, limitMs: number): Promise<void> {
  const status = client.status;
  if (status === 'end' || status === 'reconnecting' || status === 'close' || status === 'wait') return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      client.off('end', done);
      resolve();
    };
    const timer = setTimeout(done, limitMs);
    timer.unref();
    client.once('end', done);
  });
}

/**
 * Before `disconnect()` of a client whose socket has already closed (the server down, the client
 * waiting to reconnect): ioredis' connector would `end()` that socket again and arm a
 * `disconnectTimeout` timer (2 s) that nothing clears, keeping the process alive after
 * `close()`. Forgetting the dead socket leaves `disconnect()` only cancelling the reconnection.
 * Reaches into ioredis' connector; checked, so that an ioredis without these fields keeps its
 * own behaviour (the 2 s delay) rather than breaking.
 */
function forgetClosedSocket(client: Redis | Cluster): void {
  if (!(client instanceof Redis)) return;
  const connector = (client as unknown as { connector?: { stream?: { destroyed?: unknown } | undefined } }).connector;
  if (connector?.stream?.destroyed === true) connector.stream = undefined;
}

/** Where a client connects, for messages: `host:port`, a socket path, the sentinels or the cluster's startup nodes. */
function addressOf(client: Redis | Cluster): string {
  if (client instanceof Cluster) {
    const nodes = (client as unknown as { startupNodes?: unknown }).startupNodes;
    const list = Array.isArray(nodes) ? nodes.map(nodeName) : [];
    return `the cluster at ${list.length === 0 ? 'its startup nodes' : list.join(', ')}`;
  }
  const options = client.options;
  if (options.sentinels !== undefined && options.sentinels !== null) {
    return `master '${options.name ?? 'mymaster'}' of sentinels ${options.sentinels.map((s) => `${s.host ?? 'localhost'}:${s.port ?? 26379}`).join(', ')}`;
  }
  if (typeof options.path === 'string' && options.path !== '') return options.path;
  return `${options.host ?? 'localhost'}:${options.port ?? 6379}`;
}

/** A cluster startup node as given to ioredis (`{ host, port }`, `'host:port'`, a port), as text. */
function nodeName(node: unknown): string {
  if (typeof node === 'string' || typeof node === 'number') return String(node);
  if (node === null || typeof node !== 'object') return '?';
  const { host, port } = node as { host?: unknown; port?: unknown };
  return `${typeof host === 'string' ? host : 'localhost'}:${typeof port === 'number' || typeof port === 'string' ? port : 6379}`;
}

/** An encoded entry as a Buffer (a view of the same bytes, not a copy). */
function bytesOf(entry: StoredEntry): Buffer {
  const bytes = entry as Uint8Array;
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * An encoded entry as a script argument: the string its bytes decode to when they are UTF-8
 * text (a JSON entry, see {@link isTextEntry}) — the same bytes on the wire, and ioredis writes a
 * command of strings as one string, without its slower per-argument path for Buffers — else the
 * bytes.
 */
function entryArgument(entry: StoredEntry): Buffer | string {
  const bytes = bytesOf(entry);
  return isTextEntry(bytes) ? bytes.toString('utf8') : bytes;
}

/** A script's integer reply 1 (stored, released) as `true`. */
function isOne(reply: unknown): boolean {
  return reply === 1;
}

/** ioredis' errors for a command lost with its connection (rather than refused by the server). */
function isConnectionFailure(error: Error): boolean {
  return error.name === 'MaxRetriesPerRequestError' || error.message === 'Connection is closed.';
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
