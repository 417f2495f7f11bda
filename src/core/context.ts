/**
 * What the parts of the core share: one {@link CoreContext} per cache, and the {@link Call}
 * that carries one call of a wrapped function through the read path.
 *
 * @module
 */

import type { Backend, ReadRequest } from '../backend/backend.js';
import type { EntryCodec } from '../codec.js';
import type { Recorder } from '../events.js';
import type { Keyspace } from '../keys.js';
import type { ResolvedCacheOptions } from '../options.js';
import type { Breaker, CircuitBreakers } from './breaker.js';
import type { FunctionPolicy } from './function.js';
import type { InfoSink } from './info.js';
import type { BackendGuard } from './guard.js';
import type { LockReleaser } from './locks.js';

/** The collaborators of one cache, built by `Hermes` and shared by the core's parts. */
export interface CoreContext {
  readonly keyspace: Keyspace;
  readonly codec: EntryCodec;
  readonly options: ResolvedCacheOptions;
  readonly recorder: Recorder;
  readonly guard: BackendGuard;
  readonly breakers: CircuitBreakers;
  readonly locks: LockReleaser;
}

/** One call in flight: what every step after the read needs. */
export interface Call {
  readonly policy: FunctionPolicy;
  readonly thisArg: unknown;
  readonly args: unknown[];
  readonly backend: Backend;
  readonly request: ReadRequest;
  /** The circuit breaker of the part of the store that serves the entry. */
  readonly breaker: Breaker;
  /** Where a `withInfo` call records how it was answered; `undefined` for a plain call. */
  readonly info: InfoSink | undefined;
}
