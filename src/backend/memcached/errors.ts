/**
 * Errors of the Memcached backend. They reach users as the `cause` of the core's
 * `BackendError` (emitted as an `error` event while the caller gets its result).
 *
 * @module
 */

/**
 * An encoded entry is larger than the item size limit, so it was not cached. The caller still
 * got its result (the core reports the rejected write as an `error` event). Raise the server's
 * `-I` item size and `maxValueSize` together, compress more (`compressThreshold`), or cache
 * smaller results.
 */
export class MemcachedValueTooLargeError extends Error {
  /** A stable, machine-readable code. */
  readonly code = 'ERR_HERMES_MEMCACHED_VALUE_TOO_LARGE';
  /** The entry key that was not written. */
  readonly key: string;
  /** The encoded entry's size in bytes. */
  readonly size: number;
  /** The limit it exceeded (the backend's `maxValueSize`). */
  readonly maxValueSize: number;

  /**
   * @param key - the entry key that was not written
   * @param size - the encoded entry's size in bytes
   * @param maxValueSize - the limit it exceeded
   * @param cause - the server's refusal, when the server refused it
   */
  constructor(key: string, size: number, maxValueSize: number, cause?: unknown) {
    super(
      `The entry '${key}' is ${size} bytes, over memcached's item size limit (maxValueSize ${maxValueSize}); ` +
        `it was not cached. Raise memcached's -I and the maxValueSize option together, or cache smaller results.`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'MemcachedValueTooLargeError';
    this.key = key;
    this.size = size;
    this.maxValueSize = maxValueSize;
  }
}

/**
 * A memcached server is unreachable: it refused or dropped the connection or did not answer
 * within `timeout`. Calls to it fail at once for `retryInterval` milliseconds, then one call
 * tries again.
 */
export class MemcachedServerDownError extends Error {
  /** A stable, machine-readable code. */
  readonly code = 'ERR_HERMES_MEMCACHED_SERVER_DOWN';
  /** The server, as `host:port`. */
  readonly server: string;

  /**
   * @param server - the server, as `host:port`
   * @param message - what happened
   * @param cause - the client's error
   */
  constructor(server: string, message: string, cause?: unknown) {
    super(`memcached ${server}: ${message}`, cause === undefined ? undefined : { cause });
    this.name = 'MemcachedServerDownError';
    this.server = server;
  }
}
