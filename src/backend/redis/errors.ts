/**
 * Errors of the Redis backend. They reach users as the `cause` of the core's `BackendError`
 * (emitted as an `error` event while the caller gets its result).
 *
 * @module
 */

/**
 * The Redis connection is down and being re-established: the call failed at once instead of
 * waiting in a queue (the core falls back to the function). The client reconnects by itself
 * in the background (ioredis' `retryStrategy`); calls succeed again once it has.
 */
export class RedisUnavailableError extends Error {
  /** A stable, machine-readable code. */
  readonly code = 'ERR_HERMES_REDIS_UNAVAILABLE';
  /** The ioredis connection status when the call was refused (`reconnecting`, `close`, `end`). */
  readonly status: string;

  /**
   * @param status - the ioredis connection status
   * @param cause - the last connection error seen, if any
   * @param address - where the client connects (`host:port`, …), named in the message
   */
  constructor(status: string, cause?: unknown, address?: string) {
    const detail = cause instanceof Error ? `: ${cause.message}` : '';
    super(
      `Redis${address === undefined ? '' : ` at ${address}`} is unreachable (connection ${status}${detail}); the call was not sent. ` +
        `The client reconnects in the background; see the retryStrategy and commandTimeout options.`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'RedisUnavailableError';
    this.status = status;
  }
}

/** The backend was closed with `close()`; it sends nothing any more. */
export class RedisBackendClosedError extends Error {
  /** A stable, machine-readable code. */
  readonly code = 'ERR_HERMES_REDIS_CLOSED';

  /** Says that the backend was closed and what to do instead. */
  constructor() {
    super('This RedisBackend was closed; create a new one (or a new Hermes) to use Redis again.');
    this.name = 'RedisBackendClosedError';
  }
}

/**
 * An invalidation (`invalidate`, `clean`) reached fewer replicas than the backend's
 * `invalidationReplicas` option asks for within its wait (`WAIT`): a failover under way, or
 * replicas down or lagging. The primary has it, but a failover could still lose it: retry the
 * invalidation.
 */
export class RedisReplicationError extends Error {
  /** A stable, machine-readable code. */
  readonly code = 'ERR_HERMES_REDIS_NOT_REPLICATED';
  /** The replicas that confirmed the invalidation. */
  readonly acknowledged: number;
  /** The replicas the option asks for. */
  readonly wanted: number;

  /**
   * @param acknowledged - the replicas that confirmed
   * @param wanted - the replicas asked for
   * @param waitedMs - how long the backend waited
   */
  constructor(acknowledged: number, wanted: number, waitedMs: number) {
    super(
      `The invalidation reached ${acknowledged} of ${wanted} replicas within ${waitedMs} ms (a failover under way, or replicas down); ` +
        'a failover could lose it: retry it (see the invalidationReplicas option)',
    );
    this.name = 'RedisReplicationError';
    this.acknowledged = acknowledged;
    this.wanted = wanted;
  }
}
