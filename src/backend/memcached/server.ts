/**
 * One memcached server as the backend sees it: a `memcache-client` connection, the batching of
 * reads into one multi-get per tick, and fast failure while the server is down.
 *
 * @module
 */

import type { MemcacheClient, MultiCasRetrievalResponse, MultiRetrievalResponse } from 'memcache-client';
import { MemcachedServerDownError } from './errors.js';

/** What a multi-get answers: each found key with its value (Buffer for entries, else string). */
export type MultiGetResult = Readonly<Record<string, { readonly value: unknown; readonly casUniq?: string | number } | undefined>>;

/** The most keys sent in one `get` line; a larger batch is split (memcached reads long lines in pieces). */
const MAX_KEYS_PER_GET = 256;

interface PendingBatch {
  /** Keys in request order, possibly repeated; deduplicated at flush when several reads joined. */
  readonly keys: string[];
  reads: number;
  readonly promise: Promise<MultiGetResult>;
  readonly resolve: (result: MultiGetResult) => void;
  readonly reject: (error: unknown) => void;
}

/** The reply tokens of a command the server refused (`NOT_STORED`, `EXISTS`, `NOT_FOUND`...). */
function replyCode(error: unknown): string | undefined {
  const tokens = (error as { cmdTokens?: unknown } | null)?.cmdTokens;
  return Array.isArray(tokens) && typeof tokens[0] === 'string' ? tokens[0] : undefined;
}

/** One server: batched multi-gets, pipelined commands, fast failure while it is down. */
export class MemcachedServer {
  /** The server as `host:port` (or a name given to an existing client). */
  readonly name: string;
  readonly #client: MemcacheClient;
  readonly #owned: boolean;
  readonly #retryInterval: number;
  #batch: PendingBatch | undefined;
  #downUntil = 0;
  #downError: unknown;
  readonly #flush = (): void => {
    this.#flushBatch();
  };

  /**
   * @param name - the server's name, for errors
   * @param client - its connection
   * @param owned - whether {@link close} shuts the client down
   * @param retryInterval - how long a server that failed is skipped, in milliseconds
   */
  constructor(name: string, client: MemcacheClient, owned: boolean, retryInterval: number) {
    this.name = name;
    this.#client = client;
    this.#owned = owned;
    this.#retryInterval = retryInterval;
  }

  /**
   * Fetches `first` and `rest` in the multi-get of the current tick: every call made before the event loop
   * turns shares one `get k1 k2 …` request (one per 256 distinct keys).
   */
  getBatched(first: string, rest: readonly string[] = []): Promise<MultiGetResult> {
    let batch = this.#batch;
    if (batch === undefined) {
      let resolve!: (result: MultiGetResult) => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<MultiGetResult>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      batch = { keys: [], reads: 0, promise, resolve, reject };
      this.#batch = batch;
      process.nextTick(this.#flush);
    }
    batch.reads++;
    const keys = batch.keys;
    keys.push(first);
    for (let i = 0; i < rest.length; i++) keys.push(rest[i] as string);
    return batch.promise;
  }

  #flushBatch(): void {
    const batch = this.#batch;
    if (batch === undefined) return;
    this.#batch = undefined;
    const keys = batch.reads === 1 ? batch.keys : [...new Set(batch.keys)];
    if (keys.length <= MAX_KEYS_PER_GET) {
      this.get(keys).then(batch.resolve, batch.reject);
      return;
    }
    const parts: Promise<MultiGetResult>[] = [];
    for (let i = 0; i < keys.length; i += MAX_KEYS_PER_GET) parts.push(this.get(keys.slice(i, i + MAX_KEYS_PER_GET)));
    Promise.all(parts).then((results) => {
      batch.resolve(Object.assign({}, ...results) as MultiGetResult);
    }, batch.reject);
  }

  /** `get k1 k2 …`: one request, not batched. */
  get(keys: readonly string[]): Promise<MultiGetResult> {
    if (keys.length === 0) return Promise.resolve({});
    return this.#call(() => this.#client.get<MultiRetrievalResponse>(keys as string[]));
  }

  /** `gets k1 k2 …`: values with their CAS unique, one request. */
  gets(keys: readonly string[]): Promise<MultiGetResult> {
    return this.#call(() => this.#client.gets<MultiCasRetrievalResponse>(keys as string[]));
  }

  /** `set`; `exptime` as memcached reads it (see {@link exptime}). */
  async set(key: string, value: Buffer | string, exptimeSeconds: number): Promise<void> {
    await this.#call(() => this.#client.set(key, value, { lifetime: exptimeSeconds }));
  }

  /** `add`: resolves `true` if stored, `false` if the key exists. */
  add(key: string, value: string, exptimeSeconds: number): Promise<boolean> {
    return this.#call(() => this.#client.add(key, value, { lifetime: exptimeSeconds })).then(
      () => true,
      (error: unknown) => {
        if (replyCode(error) === 'NOT_STORED') return false;
        throw error;
      },
    );
  }

  /**
   * Compare-and-delete: overwrites `key` with an already expired empty value if its CAS
   * unique is still `casUnique`. Resolves `true` if it was, `false` if the key changed or is
   * gone.
   */
  casDelete(key: string, casUnique: string | number): Promise<boolean> {
    return this.#call(() => this.#client.cas(key, '', { casUniq: casUnique, lifetime: -1 })).then(
      () => true,
      (error: unknown) => {
        const code = replyCode(error);
        if (code === 'EXISTS' || code === 'NOT_FOUND') return false;
        throw error;
      },
    );
  }

  /** `delete`: resolves whether the key existed. */
  delete(key: string): Promise<boolean> {
    return this.#call(() => this.#client.delete(key)).then(
      () => true,
      (error: unknown) => {
        if (replyCode(error) === 'NOT_FOUND') return false;
        throw error;
      },
    );
  }

  /** Shuts the client down if this backend created it; fails pending batches. */
  close(): void {
    const batch = this.#batch;
    this.#batch = undefined;
    batch?.reject(new MemcachedServerDownError(this.name, 'the backend was closed'));
    if (this.#owned) this.#client.shutdown();
  }

  /**
   * Runs a command unless the server is marked down. A failure that is not a server reply
   * (refused or dropped connection, timeout) marks it down for `retryInterval`.
   */
  #call<T>(command: () => Promise<T>): Promise<T> {
    if (this.#downUntil !== 0) {
      if (Date.now() < this.#downUntil) {
        return Promise.reject(
          new MemcachedServerDownError(this.name, `marked down after a failure, retried after ${this.#retryInterval} ms`, this.#downError),
        );
      }
      this.#downUntil = 0;
    }
    let pending: Promise<T>;
    try {
      pending = command();
    } catch (error) {
      return Promise.reject(this.#failed(error));
    }
    return pending.catch((error: unknown) => {
      throw replyCode(error) === undefined ? this.#failed(error) : error;
    });
  }

  #failed(error: unknown): unknown {
    if (replyCode(error) !== undefined) return error;
    if (this.#retryInterval > 0) this.#downUntil = Date.now() + this.#retryInterval;
    this.#downError = error;
    const detail = error instanceof Error ? error.message : String(error);
    return new MemcachedServerDownError(this.name, detail, error);
  }
}

/** Reply codes a server sends for a command it refused, for callers that inspect errors. */
export { replyCode };

const THIRTY_DAYS = 60 * 60 * 24 * 30;

/**
 * A TTL in milliseconds as memcached's `exptime`: whole seconds rounded up plus one, since
 * memcached's clock ticks in seconds and an item set just before a tick would otherwise expire
 * almost at once; past 30 days memcached reads exptime as a Unix time, so such TTLs are sent
 * as one.
 */
export function exptime(ttlMs: number): number {
  const seconds = Math.ceil(ttlMs / 1000) + 1;
  return seconds > THIRTY_DAYS ? Math.floor(Date.now() / 1000) + seconds : seconds;
}
