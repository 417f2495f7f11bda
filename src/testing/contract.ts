/**
 * The backend contract suite: the same mocha tests for every backend, hermes' own and
 * third-party ones (`import { registerBackendContract } from 'hermes-cache/testing'`). A
 * backend's spec calls {@link registerBackendContract} with a factory inside a mocha run. Two
 * tiers: each clause of the contract tested on the backend itself (`contract-backend.ts`), and
 * each promise of the cache through `Hermes`, as users use it (`contract-cache.ts`). Needs only
 * `mocha` in the caller's project (its `describe`, `it`, `beforeEach` and `afterEach` globals),
 * a dev dependency there, not a peer dependency of this package (docs/writing-a-backend.md says
 * why): the tests assert with `node:assert/strict`.
 *
 * @module
 */

import type { Backend } from '../backend/backend.js';
import { registerBackendClauses } from './contract-backend.js';
import { registerCacheClauses } from './contract-cache.js';

/** How the contract suite builds and pokes at a backend. */
export interface BackendContractOptions {
  /** Suite title, e.g. `'MemoryBackend'`. */
  readonly name: string;
  /** A backend on the shared store (a server, or one in-process store). Called per test. */
  createBackend(): Backend | Promise<Backend>;
  /**
   * Another backend instance on the same store as `backend`, as a second process would have:
   * used for cross-instance stampede tests. In-process stores return the same instance.
   */
  createPeer(backend: Backend): Backend | Promise<Backend>;
  /**
   * Writes raw bytes under a key, bypassing the cache, to test corrupt entries. Omit for
   * stores that keep live values (their entries cannot hold foreign bytes).
   */
  writeRaw?(backend: Backend, key: string, bytes: Buffer): Promise<void>;
  /**
   * What `wrapped.set()` leaves when a computation of the entry was in flight and finishes
   * after it: `'kept'`, the set value (the computation's write is refused: Redis, in-process),
   * or `'dropped'`, nothing (the write lands and is deleted again with the set value: Memcached).
   * @default 'kept'
   */
  readonly setDuringComputation?: 'kept' | 'dropped' | undefined;
}

/**
 * Registers the contract tests for one backend: the direct tier (each clause of the Backend
 * contract on the backend itself) and the cache tier (each promise of the cache through
 * `Hermes`), under `Backend contract: {name}`.
 */
export function registerBackendContract(options: BackendContractOptions): void {
  registerBackendClauses(options);
  describe(`Backend contract: ${options.name}`, function () {
    registerCacheClauses(options);
  });
}
