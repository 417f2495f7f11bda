/**
 * The harness of the contract suite's cache tier ({@link CacheHarness}), shared by
 * `contract-cache.ts` and `contract-stale.ts`.
 *
 * @module
 */

import type { Backend } from '../backend/backend.js';
import type { HermesError } from '../errors.js';
import { Hermes } from '../hermes.js';
import type { BackendContractOptions } from './contract.js';

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let prefixCounter = 0;

/**
 * The cache tier's harness: before each test, a backend on the shared store and a cache on a
 * fresh prefix, whose errors (and those of its peers) are collected; after it, everything
 * cleaned and closed.
 */
export class CacheHarness {
  /** The backend under test. */
  backend!: Backend;
  /** A cache of this test's prefix on it. */
  cache!: Hermes;
  /** This test's prefix. */
  prefix = '';
  /** The errors emitted by the cache and its peers during the test. */
  readonly errors: HermesError[] = [];
  readonly #opened: Backend[] = [];
  readonly #options: BackendContractOptions;

  constructor(options: BackendContractOptions) {
    this.#options = options;
    beforeEach(async () => {
      this.prefix = `contract${process.pid}x${++prefixCounter}`;
      this.backend = await options.createBackend();
      this.#opened.push(this.backend);
      this.errors.length = 0;
      this.cache = this.cacheOn(this.backend);
    });
    afterEach(async () => {
      await this.cache.clean().catch(() => undefined);
      for (const b of this.#opened.splice(0)) await b.close();
    });
  }

  /** A cache of this test's prefix on `backend`, its errors collected. */
  cacheOn(backend: Backend, extra: Record<string, unknown> = {}): Hermes {
    const cache = new Hermes(backend, { prefix: this.prefix, ttl: 60, ...extra });
    cache.on('error', (error) => this.errors.push(error));
    return cache;
  }

  /** A cache on another backend instance of the same store, as a second process has. */
  async peerCache(extra: Record<string, unknown> = {}): Promise<Hermes> {
    const peer = await this.#options.createPeer(this.backend);
    if (peer !== this.backend) this.#opened.push(peer);
    return this.cacheOn(peer, extra);
  }
}

/** A cache on the test's backend with a short TTL and no jitter, for stale values. */
export function staleCache(h: CacheHarness, extra: Record<string, unknown>): Hermes {
  return h.cacheOn(h.backend, { ttl: 0.2, jitter: 0, ...extra });
}
