/**
 * The options of the Memcached backend: their documentation, their defaults (one object), their
 * validation, and the `memcache-client` clients they describe.
 *
 * @module
 */

import { MemcacheClient } from 'memcache-client';
import { OptionError } from '../../errors.js';
import { rejectUnknownOptions } from '../../options.js';
import { numberOption } from '../kit.js';

/** Options of the {@link MemcachedBackend}. */
export interface MemcachedBackendOptions {
  /**
   * The memcached servers, as `'host:port'` strings (one string, or several). Keys are spread
   * over several servers by consistent hashing of the entry key. Ignored when `client` is given.
   * @default 'localhost:11211'
   */
  servers?: string | readonly string[] | undefined;
  /**
   * Existing `memcache-client` clients to use instead of connecting to `servers`: one client
   * per server, each configured with exactly one server, in a stable order (the order decides
   * which server holds which keys). `close()` leaves them open: their owner closes them.
   * Create them with `noDelay: true`, or every request waits for Nagle's algorithm.
   * @default undefined
   */
  client?: MemcacheClient | readonly MemcacheClient[] | undefined;
  /**
   * How long a request may take before it fails, in milliseconds; the core then falls back to
   * the function. Applies to clients this backend creates.
   * @default 1000
   */
  timeout?: number | undefined;
  /**
   * How long connecting to a server may take, in milliseconds. Applies to clients this
   * backend creates.
   * @default 1000
   */
  connectTimeout?: number | undefined;
  /**
   * After a server fails (connection refused or dropped, timeout), requests to it fail at
   * once for this many milliseconds, so that calls fall open without waiting; then the next
   * request tries to reconnect. `0` retries on every request.
   * @default 1000
   */
  retryInterval?: number | undefined;
  /**
   * The largest encoded entry stored, in bytes. Larger entries are not cached: the write
   * rejects with a {@link MemcachedValueTooLargeError} (the core emits it as an `error` event
   * and the caller gets its result). Keep it below the server's item size limit (`-I`, 1 MiB
   * by default) minus the item header and key (about 300 bytes).
   * @default 1048576 - 512
   */
  maxValueSize?: number | undefined;
  /**
   * Waiting for another process's lock polls the lock key, first after `pollMin`
   * milliseconds, doubling up to `pollMax` (Memcached cannot push a wake-up). Waiters in the
   * same process as the lock's holder are woken at once, without polling.
   * @default 5
   */
  pollMin?: number | undefined;
  /**
   * The longest pause between two polls of a lock, in milliseconds; see `pollMin`.
   * @default 50
   */
  pollMax?: number | undefined;
  /**
   * How many keys this process remembers having written or created, for {@link MemcachedBackend.dump}
   * and {@link MemcachedBackend.clear} (memcached cannot list its keys). The oldest are
   * forgotten first.
   * @default 10000
   */
  trackedKeys?: number | undefined;
}

/** The defaults of the backend's options. */
export const MEMCACHED_DEFAULTS = Object.freeze({
  /** See {@link MemcachedBackendOptions.servers}. */
  servers: 'localhost:11211',
  /** See {@link MemcachedBackendOptions.timeout}. */
  timeout: 1000,
  /** See {@link MemcachedBackendOptions.connectTimeout}. */
  connectTimeout: 1000,
  /** See {@link MemcachedBackendOptions.retryInterval}. */
  retryInterval: 1000,
  /** See {@link MemcachedBackendOptions.maxValueSize}: memcached's default item size limit (1 MiB) minus room for the item header and key. */
  maxValueSize: 1_048_576 - 512,
  /** See {@link MemcachedBackendOptions.pollMin}. */
  pollMin: 5,
  /** See {@link MemcachedBackendOptions.pollMax}. */
  pollMax: 50,
  /** See {@link MemcachedBackendOptions.trackedKeys}. */
  trackedKeys: 10_000,
});

/** The backend's options, validated, with their defaults applied. */
export interface ResolvedMemcachedOptions {
  /** The servers' names (`host:port`, or a name per given client), in ring order. */
  readonly serverNames: readonly string[];
  /** The given clients, one per server in `serverNames` order; `undefined` when the backend opens its own. */
  readonly clients: readonly MemcacheClient[] | undefined;
  /** See {@link MemcachedBackendOptions.timeout}. */
  readonly timeout: number;
  /** See {@link MemcachedBackendOptions.connectTimeout}. */
  readonly connectTimeout: number;
  /** See {@link MemcachedBackendOptions.retryInterval}. */
  readonly retryInterval: number;
  /** See {@link MemcachedBackendOptions.maxValueSize}. */
  readonly maxValueSize: number;
  /** See {@link MemcachedBackendOptions.pollMin}. */
  readonly pollMin: number;
  /** See {@link MemcachedBackendOptions.pollMax}. */
  readonly pollMax: number;
  /** See {@link MemcachedBackendOptions.trackedKeys}. */
  readonly trackedKeys: number;
}

/** The names of the backend's options ({@link MemcachedBackendOptions}). */
export const MEMCACHED_OPTION_NAMES: ReadonlySet<string> = new Set(
  Object.keys({
    servers: true,
    client: true,
    timeout: true,
    connectTimeout: true,
    retryInterval: true,
    maxValueSize: true,
    pollMin: true,
    pollMax: true,
    trackedKeys: true,
  } satisfies Record<keyof MemcachedBackendOptions, true>),
);

/**
 * Validates the options (an {@link OptionError} naming the bad one) and opens nothing.
 * `checkNames`: also refuse names not in {@link MEMCACHED_OPTION_NAMES} (the constructor does;
 * `MemcachedBackend.validateOptions` leaves them to `optionNames`, which a subclass may extend).
 */
export function resolveMemcachedOptions(options: MemcachedBackendOptions, checkNames = true): ResolvedMemcachedOptions {
  if (options === null || typeof options !== 'object') throw new OptionError('options', 'options must be an object');
  if (checkNames) rejectUnknownOptions(options, MEMCACHED_OPTION_NAMES);
  const { clients, serverNames } = resolveServers(options);
  const timeout = numberOption(options.timeout ?? MEMCACHED_DEFAULTS.timeout, 'timeout', 0);
  const connectTimeout = numberOption(options.connectTimeout ?? MEMCACHED_DEFAULTS.connectTimeout, 'connectTimeout', 0);
  const retryInterval = numberOption(options.retryInterval ?? MEMCACHED_DEFAULTS.retryInterval, 'retryInterval', 0, true);
  const maxValueSize = numberOption(options.maxValueSize ?? MEMCACHED_DEFAULTS.maxValueSize, 'maxValueSize', 0);
  const pollMin = numberOption(options.pollMin ?? MEMCACHED_DEFAULTS.pollMin, 'pollMin', 0);
  const pollMax = numberOption(options.pollMax ?? MEMCACHED_DEFAULTS.pollMax, 'pollMax', 0);
  if (pollMax < pollMin) throw new OptionError('pollMax', 'pollMax must be at least pollMin');
  const trackedKeys = numberOption(options.trackedKeys ?? MEMCACHED_DEFAULTS.trackedKeys, 'trackedKeys', 0, true);
  return { serverNames, clients, timeout, connectTimeout, retryInterval, maxValueSize, pollMin, pollMax, trackedKeys };
}

/** The given clients (checked) and their names, or the `servers` list (checked). */
function resolveServers(options: MemcachedBackendOptions): Pick<ResolvedMemcachedOptions, 'clients' | 'serverNames'> {
  const { client } = options;
  if (client !== undefined) {
    const clients = Array.isArray(client) ? (client as readonly MemcacheClient[]) : [client as MemcacheClient];
    if (clients.length === 0 || clients.some((c) => c === null || typeof c !== 'object' || typeof c.get !== 'function')) {
      throw new OptionError('client', 'client must be a memcache-client MemcacheClient or a non-empty array of them');
    }
    return { clients, serverNames: clients.map((c, i) => (typeof c.options.server === 'string' ? c.options.server : `client${i}`)) };
  }
  const servers = options.servers ?? MEMCACHED_DEFAULTS.servers;
  const list = typeof servers === 'string' ? [servers] : [...servers];
  if (list.length === 0 || list.some((s) => typeof s !== 'string' || !/^[^\s:]+:\d{1,5}$/.test(s))) {
    throw new OptionError('servers', `servers must be one or more 'host:port' strings, got ${JSON.stringify(servers)}`);
  }
  if (new Set(list).size !== list.length) throw new OptionError('servers', 'servers lists a server twice');
  return { clients: undefined, serverNames: list };
}

/** A new client for the server `name` (`host:port`), with the resolved timeouts; it connects on its first request. */
export function openClient(name: string, options: ResolvedMemcachedOptions): MemcacheClient {
  return new MemcacheClient({
    server: { server: name, maxConnections: 1 },
    cmdTimeout: options.timeout,
    connectTimeout: options.connectTimeout,
    noDelay: true,
    keepAlive: 60_000,
    logger: silentLogger,
  });
}

const silentLogger = { info: noop, warn: noop, error: noop, debug: noop };
function noop(): void {
  // memcache-client logs connection trouble; the backend reports it through rejections.
}
