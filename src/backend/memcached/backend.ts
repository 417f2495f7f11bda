/**
 * The Memcached backend. Memcached has no server-side scripts, so the read is built from
 * what it has — multi-get, `add`, `cas` — and arranged so that a hit is one request:
 *
 * - **Placement.** Every key of one entry (the entry, its lock, and this server's copy of each
 *   of its tag versions and of the prefix's namespace version) lives on the server that the
 *   entry key hashes to. A read is therefore one `get` to one server, whatever the number of
 *   tags or servers; `clean(tags)` deletes the tag key on every server (one request each, in
 *   parallel).
 * - **Read** = `get entry namespace tag1 … tagN`, compared in the process: the entry's header
 *   tag hash (bytes 4..20) against `tagHash([namespace, ...tagVersions])`, and its fresh-until
 *   time against the local clock. Reads started in the same tick share one multi-get per server.
 * - **Miss** = the read, then one more request: `add lock token` + `gets lock` (its CAS
 *   unique), plus, on first use of a tag or namespace, `add` of a random version for each
 *   missing one followed by a `get` of them (so that a process that lost the `add` race uses
 *   the winner's version), all pipelined in that same request.
 * - **Write** = `set entry` then `cas lock <expired> <unique>` (compare-and-delete), pipelined
 *   in one request. If the lock was lost meanwhile (an invalidation removed it, or it
 *   expired), the entry just written is deleted again (one more request) and the write
 *   reports `false`.
 * - **clear(prefix)** deletes the namespace version on every server: every entry of the prefix
 *   stops matching at once (the namespace version is part of every tag hash), in one request
 *   per server. Memcached cannot list keys, so that is the only way to reach entries written by
 *   other processes; the keys this process knows of are deleted too.
 *
 * @module
 */

import type { EntryCodec } from '../../codec.js';
import { computeMsOf, freshUntilOf, tagHash } from '../../codec.js';
import { idStart, uniqueToken } from '../../keys.js';
import type { Backend, BackendContext, EntryRef, ReadReply, ReadRequest, SetRequest, WriteRequest } from '../backend.js';
import { wantsEarlyRefresh } from '../early.js';
import { decodeForDump, LockWaiters, sortedByKey, withTagHash } from '../kit.js';
import { MemcachedServerDownError, MemcachedValueTooLargeError } from './errors.js';
import { HeldLocks, lookUpCasUnique } from './held-locks.js';
import { memcachedKey } from './keys.js';
import { MEMCACHED_OPTION_NAMES, type MemcachedBackendOptions, openClient, type ResolvedMemcachedOptions, resolveMemcachedOptions } from './options.js';
import { HashRing } from './ring.js';
import { exptime, MemcachedServer, type MultiGetResult } from './server.js';
import { asBuffer, entryState } from './stored-entries.js';
import { TagPlans, versionsAfterMiss } from './tag-plans.js';
import { TrackedKeys } from './tracked-keys.js';
import { pollLock } from './waits.js';

/** The suffix of the per-prefix namespace version key: `{prefix}:namespace`. */
const NAMESPACE_SUFFIX = ':namespace';

/**
 * A {@link Backend} on one or more memcached servers, through `memcache-client` (an optional
 * peer dependency: `npm install memcache-client`).
 *
 * ```ts
 * import { Hermes } from 'hermes-cache';
 * import { MemcachedBackend } from 'hermes-cache/memcached';
 * const cache = new Hermes(MemcachedBackend, { servers: ['10.0.0.1:11211', '10.0.0.2:11211'] });
 * ```
 *
 * Construction and {@link attach} open nothing; the first request connects.
 */
export class MemcachedBackend implements Backend {
  /** Entries are stored as encoded bytes. */
  readonly storesBytes = true;
  readonly #options: ResolvedMemcachedOptions;
  readonly #ring: HashRing;
  #servers: MemcachedServer[] | undefined;
  #closed = false;
  /** Prefixes of the caches attached, with their codec (for dump) and namespace key. */
  readonly #prefixes = new Map<string, { codec: EntryCodec; namespaceKey: string }>();
  #lastPrefix: { prefix: string; namespaceKey: string } | undefined;
  readonly #tagPlans = new TagPlans();
  /** CAS unique of each lock this process holds, by token: release and write need no `gets`. */
  readonly #heldLocks = new HeldLocks();
  readonly #waiters = new LockWaiters();
  /** Keys this process wrote or created, for clear() and dump(). */
  readonly #tracked: TrackedKeys;

  /** The names of the backend's options; see {@link BackendClass.optionNames}. */
  static readonly optionNames: ReadonlySet<string> = MEMCACHED_OPTION_NAMES;

  /**
   * Checks the options as the constructor does, opening nothing; see {@link BackendClass.validateOptions}.
   * @throws {@link OptionError} naming the first bad option
   */
  static validateOptions(options: MemcachedBackendOptions = {}): void {
    resolveMemcachedOptions(options, false);
  }

  /** @param options - servers or clients, timeouts and limits; see {@link MemcachedBackendOptions} */
  constructor(options: MemcachedBackendOptions = {}) {
    this.#options = resolveMemcachedOptions(options);
    this.#tracked = new TrackedKeys(this.#options.trackedKeys);
    this.#ring = new HashRing(this.#options.serverNames);
  }

  /** The servers' names (`host:port`), in ring order. */
  get serverNames(): readonly string[] {
    return this.#options.serverNames;
  }

  /** Binds the backend to a cache's key space; several prefixes may share one backend. */
  attach(context: BackendContext): void {
    const { prefix } = context;
    const known = {
      codec: context.codec,
      namespaceKey: memcachedKey(prefix + NAMESPACE_SUFFIX),
    };
    this.#prefixes.set(prefix, known);
    this.#lastPrefix = { prefix, namespaceKey: known.namespaceKey };
  }

  /**
   * Reads an entry in one multi-get (shared with the other reads of this tick); on a miss with
   * a lock token, one more request takes the lock and creates missing tag versions.
   */
  async read(request: ReadRequest): Promise<ReadReply> {
    const { ref, tagKeys } = request;
    const { entryKey } = ref;
    const server = this.#serverFor(entryKey);
    const namespaceKey = this.#namespaceKeyOf(ref.prefix);
    const plan = this.#tagPlans.planFor(tagKeys, namespaceKey);
    const versionKeys = plan.versionKeys;
    const entryMcKey = memcachedKey(entryKey);
    const found = await server.getBatched(entryMcKey, versionKeys);

    // Versions in hash order: the namespace, then the tags.
    let missing: string[] | undefined;
    let versions = plan.versions;
    let same = versions !== undefined;
    for (let i = 0; i < versionKeys.length; i++) {
      const value = found[versionKeys[i] as string]?.value;
      if (typeof value !== 'string' || value.length === 0) {
        (missing ??= []).push(versionKeys[i] as string);
        same = false;
      } else if (same && versions?.[i] !== value) {
        same = false;
      }
    }
    let hash = '';
    if (missing === undefined) {
      if (same) {
        hash = plan.hash;
      } else {
        versions = versionKeys.map((key) => found[key]?.value as string);
        hash = tagHash(versions);
        plan.versions = versions;
        plan.hash = hash;
        this.#tracked.trackAll(request.tagKeys, plan.keys);
      }
      // A refresh ignores the entry: it goes on as a miss, to the lock.
      const stored = request.refresh === true ? undefined : found[entryMcKey]?.value;
      const state = stored === undefined ? 'invalid' : entryState(stored, hash);
      if (state === 'fresh') {
        // Early refresh, decided on this process' clock: the lock is taken with add, as on a
        // miss (a second request, only for the read that decides to refresh).
        if (request.earlyRefresh !== undefined && wantsEarlyRefresh(request, freshUntilOf(stored as Buffer) ?? 0, computeMsOf(stored as Buffer), Date.now())) {
          // The lock is taken after the get, not with it: a refresh that ended in between (its
          // write, then its release) would be repeated. The entry is read again behind the add,
          // in the same pipelined request: changed, it was just refreshed, and the lock goes back.
          const taking = this.#miss(server, request, versionKeys, found, undefined);
          const again = server.get([entryMcKey]);
          const [{ locked }, now] = await Promise.all([taking, again]);
          const current = now[entryMcKey]?.value;
          if (locked && Buffer.isBuffer(current) && current.equals(stored as Buffer)) {
            return { entry: stored as Buffer, tagHash: hash, locked: true, stale: false, early: true };
          }
          if (locked) await this.release(ref, request.lockToken as string);
        }
        return { entry: stored as Buffer, tagHash: hash, locked: false, stale: false };
      }
      if (state === 'stale') {
        // Past its fresh time, kept for grace / stale-while-revalidate: served with the lock
        // decision (the lock costs the miss' second request).
        if (request.lockToken === undefined) return { entry: stored as Buffer, tagHash: hash, locked: false, stale: true };
        const reply = await this.#miss(server, request, versionKeys, found, undefined);
        return { ...reply, entry: stored as Buffer, stale: true };
      }
    }
    if (missing === undefined && request.lockToken === undefined) return { entry: undefined, tagHash: hash, locked: false, stale: false };
    return this.#miss(server, request, versionKeys, found, missing);
  }

  /**
   * Many reads, each with the meaning of {@link MemcachedBackend.read}, all started in this
   * tick: their entries and tag versions go out as one multi-get per server (the tick's batch,
   * see `MemcachedServer.getBatched`), then the misses' lock attempts, pipelined per server.
   */
  readMany(requests: readonly ReadRequest[]): Promise<ReadReply>[] {
    return requests.map((request) => {
      try {
        return this.read(request);
      } catch (error) {
        return Promise.reject(error);
      }
    });
  }

  /** The second request of a miss: create missing versions, take the lock; pipelined. */
  async #miss(
    server: MemcachedServer,
    request: ReadRequest,
    versionKeys: readonly string[],
    found: MultiGetResult,
    missing: string[] | undefined,
  ): Promise<ReadReply> {
    const { lockToken } = request;
    const pending: Promise<unknown>[] = [];
    let versionsRead: Promise<MultiGetResult> | undefined;
    if (missing !== undefined) {
      for (const key of missing) pending.push(server.add(key, uniqueToken(), 0));
      // Read back after the adds, on the same connection: ours where we won, the winner's elsewhere.
      versionsRead = server.get(missing);
    }
    let lockTaken: Promise<boolean> | undefined;
    let lockRead: Promise<MultiGetResult> | undefined;
    const lockMcKey = lockToken === undefined ? '' : memcachedKey(request.ref.lockKey);
    if (lockToken !== undefined) {
      lockTaken = server.add(lockMcKey, lockToken, exptime(request.lockTtlMs));
      lockRead = server.gets([lockMcKey]);
    }
    await Promise.all(pending);
    const created = versionsRead === undefined ? undefined : await versionsRead;
    let locked = false;
    if (lockTaken !== undefined && lockRead !== undefined && lockToken !== undefined) {
      locked = await lockTaken;
      const lock = (await lockRead)[lockMcKey];
      if (locked && lock?.value === lockToken && lock.casUniq !== undefined) {
        this.#heldLocks.remember(lockToken, lock.casUniq, request.lockTtlMs);
      }
      if (locked) this.#tracked.track(request.ref.lockKey, lockMcKey); // for clear() and dump()
    }
    const versions = versionsAfterMiss(versionKeys, found, created);
    const hash = tagHash(versions);
    if (missing !== undefined) {
      const plan = this.#tagPlans.get(request.tagKeys);
      plan.versions = versions;
      plan.hash = hash;
      this.#tracked.trackAll(request.tagKeys, plan.keys);
    }
    return { entry: undefined, tagHash: hash, locked, stale: false };
  }

  /**
   * Stores an entry. With a lock token: `set` and a compare-and-delete of the lock, pipelined
   * in one request; if the lock was no longer ours, the entry is deleted again and the write
   * resolves `false`.
   */
  async write(request: WriteRequest): Promise<boolean> {
    const { ref, lockToken } = request;
    const { entryKey, lockKey } = ref;
    const bytes = asBuffer(request.entry);
    if (bytes.length > this.#options.maxValueSize) throw new MemcachedValueTooLargeError(entryKey, bytes.length, this.#options.maxValueSize);
    const server = this.#serverFor(entryKey);
    const entryMcKey = memcachedKey(entryKey);
    if (lockToken === undefined) {
      await this.#set(server, entryKey, entryMcKey, bytes, request.ttlMs);
      this.#tracked.track(entryKey, entryMcKey);
      return true;
    }
    const lockMcKey = memcachedKey(lockKey);
    // A lock taken by another backend instance: look up its CAS unique first.
    const casUnique = this.#heldLocks.casUniqueOf(lockToken) ?? (await lookUpCasUnique(server, lockMcKey, lockToken));
    if (casUnique === undefined) return false;
    const stored = this.#set(server, entryKey, entryMcKey, bytes, request.ttlMs);
    const released = server.casDelete(lockMcKey, casUnique);
    const [, stillOurs] = await Promise.all([stored, released.catch(() => false)]);
    this.#heldLocks.forget(lockToken);
    this.#waiters.wake(lockKey);
    if (!stillOurs) {
      // The lock was removed (invalidate) or lost while computing: the result may predate an
      // invalidation, so it must not stay.
      await server.delete(entryMcKey);
      return false;
    }
    this.#tracked.track(entryKey, entryMcKey);
    return true;
  }

  async #set(server: MemcachedServer, entryKey: string, mcKey: string, bytes: Buffer, ttlMs: number): Promise<void> {
    try {
      await server.set(mcKey, bytes, exptime(ttlMs));
    } catch (error) {
      if (/too large/i.test(error instanceof Error ? error.message : String(error))) {
        throw new MemcachedValueTooLargeError(entryKey, bytes.length, this.#options.maxValueSize, error);
      }
      throw error;
    }
  }

  /**
   * A direct write: the tag hash from a read (its versions created if missing, as a miss
   * does), then `set` of the stamped entry and `delete` of its lock, pipelined: two requests.
   * A computation in flight then finds its lock gone: its write deletes the entry again (see
   * {@link write}), so the entry is dropped rather than overwritten by the older computation.
   */
  async set(request: SetRequest): Promise<void> {
    const { ref } = request;
    const { entryKey, lockKey } = ref;
    const { tagHash: hash } = await this.read({ ref, tagKeys: request.tagKeys, lockToken: undefined, lockTtlMs: 0, refresh: true });
    const bytes = asBuffer(withTagHash(request.entry, hash));
    if (bytes.length > this.#options.maxValueSize) throw new MemcachedValueTooLargeError(entryKey, bytes.length, this.#options.maxValueSize);
    const server = this.#serverFor(entryKey);
    const entryMcKey = memcachedKey(entryKey);
    await Promise.all([this.#set(server, entryKey, entryMcKey, bytes, request.ttlMs), server.delete(memcachedKey(lockKey))]);
    this.#tracked.track(entryKey, entryMcKey);
    this.#waiters.wake(lockKey);
  }

  /** Releases a lock held with `token` (compare-and-delete on its CAS unique), waking waiters. */
  async release(ref: EntryRef, token: string): Promise<void> {
    const { lockKey } = ref;
    const server = this.#serverFor(ref.entryKey);
    const lockMcKey = memcachedKey(lockKey);
    const casUnique = this.#heldLocks.casUniqueOf(token) ?? (await lookUpCasUnique(server, lockMcKey, token));
    if (casUnique === undefined) return;
    await server.casDelete(lockMcKey, casUnique);
    this.#heldLocks.forget(token);
    this.#waiters.wake(lockKey);
  }

  /**
   * Waits until the lock is gone: waiters in this process are woken by the release itself;
   * otherwise the lock key is polled (one key in the tick's multi-get) after `pollMin` ms,
   * doubling up to `pollMax`. Resolves `false` after `timeoutMs` or on {@link close}.
   */
  waitForRelease(ref: EntryRef, timeoutMs: number): Promise<boolean> {
    const { lockKey } = ref;
    if (this.#closed) return Promise.resolve(false);
    const server = this.#serverFor(ref.entryKey);
    const lockMcKey = memcachedKey(lockKey);
    const deadline = Date.now() + timeoutMs;
    const { pollMin, pollMax } = this.#options;
    return this.#waiters.wait(lockKey, timeoutMs, false, (settle) =>
      pollLock({ server, lockMcKey, deadline, timeoutMs, pollMin, pollMax }, settle),
    );
  }

  /** Deletes an entry and its lock: two deletes pipelined in one request; wakes waiters. */
  async invalidate(ref: EntryRef): Promise<void> {
    const { entryKey, lockKey } = ref;
    const server = this.#serverFor(entryKey);
    await Promise.all([server.delete(memcachedKey(entryKey)), server.delete(memcachedKey(lockKey))]);
    this.#waiters.wake(lockKey);
  }

  /** Deletes the tag keys on every server: one pipelined request per server, in parallel. */
  async cleanTags(_prefix: string, tagKeys: readonly string[]): Promise<void> {
    const mcKeys = tagKeys.map(memcachedKey);
    await this.#onEveryServer((server) => Promise.all(mcKeys.map((key) => server.delete(key))));
  }

  /**
   * Invalidates every entry under `${prefix}:` by deleting the prefix's namespace version on
   * every server (every tag hash includes it), and deletes the keys this process knows of
   * under the prefix: the entries it wrote and their locks, the tags it read, the locks it
   * took. One pipelined request per server. Other prefixes are untouched.
   */
  async clear(prefix: string): Promise<void> {
    const { tracked, reached } = this.#tracked.under(prefix);
    const mcKeys = new Set([memcachedKey(prefix + NAMESPACE_SUFFIX), ...reached.values()]);
    await this.#onEveryServer((server) => Promise.all([...mcKeys].map((key) => server.delete(key))));
    this.#tracked.forget(tracked);
    this.#waiters.wakeAll(); // locks may be gone: their waiters read again
  }

  /**
   * The keys under `${prefix}:` that this process knows of (entries it wrote, tags whose
   * versions it read or created, their locks) and that are still on a server, with entries
   * decoded. Memcached cannot list keys: entries written only by other processes are not
   * shown, nor is the internal `{prefix}:namespace` version.
   */
  async dump(prefix?: string): Promise<Record<string, unknown>> {
    const chosen = prefix ?? this.#lastPrefix?.prefix;
    if (chosen === undefined) throw new Error('MemcachedBackend is not attached to a cache yet');
    const codec = (this.#prefixes.get(chosen) ?? [...this.#prefixes.values()].at(-1))?.codec;
    const wanted = this.#tracked.under(chosen).reached;
    const out: Record<string, unknown> = {};
    if (wanted.size === 0) return out;
    const servers = this.#connect();
    const results = await Promise.all(servers.map((server) => server.get([...wanted.values()])));
    for (const [key, mcKey] of wanted) {
      const kind = key.startsWith(`${chosen}:entry:`) ? 'entry' : key.startsWith(`${chosen}:lock:`) ? 'lock' : 'tag';
      // Entries and locks live on their entry's server; tags have a copy on each server.
      const entryKey = kind === 'lock' ? `${chosen}:entry:${key.slice(idStart(chosen, 'lock'))}` : key;
      const ownServer = kind === 'tag' ? undefined : this.#ring.serverOf(entryKey);
      const found = (ownServer === undefined ? results.find((r) => r[mcKey] !== undefined) : results[ownServer])?.[mcKey];
      if (found === undefined) continue;
      if (kind === 'entry') {
        const value: unknown = found.value;
        out[key] = decodeForDump(codec, key, Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'latin1'));
      } else {
        if (found.value === '') continue; // an expired compare-and-deleted lock
        out[key] = found.value;
      }
    }
    return sortedByKey(out);
  }

  /** Closes the connections this backend opened (not a given `client`); pending waits resolve `false`. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.closeAll();
    for (const server of this.#servers ?? []) server.close();
    this.#servers = undefined;
  }

  /** Writes raw bytes under a key, bypassing the cache, as a test or a foreign writer would. */
  async setRaw(key: string, bytes: Buffer, ttlMs = 60_000): Promise<void> {
    const server = this.#serverFor(key);
    await server.set(memcachedKey(key), bytes, exptime(ttlMs));
  }

  #connect(): MemcachedServer[] {
    const options = this.#options;
    if (this.#closed) throw new MemcachedServerDownError(options.serverNames.join(','), 'the backend is closed');
    if (this.#servers === undefined) {
      const given = options.clients;
      this.#servers = options.serverNames.map((name, i) => {
        const client = given?.[i] ?? openClient(name, options);
        return new MemcachedServer(name, client, given === undefined, options.retryInterval);
      });
    }
    return this.#servers;
  }

  #serverFor(entryKey: string): MemcachedServer {
    const servers = this.#servers ?? this.#connect();
    return servers.length === 1 ? (servers[0] as MemcachedServer) : (servers[this.#ring.serverOf(entryKey)] as MemcachedServer);
  }

  async #onEveryServer(action: (server: MemcachedServer) => Promise<unknown>): Promise<void> {
    const results = await Promise.allSettled(this.#connect().map(action));
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  /** The memcached key of a prefix's namespace version (`{prefix}:namespace`). */
  #namespaceKeyOf(prefix: string): string {
    const last = this.#lastPrefix;
    if (last !== undefined && last.prefix === prefix) return last.namespaceKey;
    return this.#prefixes.get(prefix)?.namespaceKey ?? memcachedKey(prefix + NAMESPACE_SUFFIX);
  }

}
