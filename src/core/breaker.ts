/**
 * Circuit breakers: after `failures` consecutive backend failures, wrapped calls skip the
 * backend for `cooldownMs`, then one call probes it. One breaker per failure domain of the
 * backend (a cluster's masters, see `Backend.failureDomain`), else one for the backend.
 *
 * @module
 */

import type { Backend } from '../backend/backend.js';
import type { EntryRef } from '../keys.js';

/** The state of one breaker. */
export interface Breaker {
  /** Consecutive failures so far. */
  failures: number;
  /** Until when (`Date.now()`) the breaker is open; 0 when closed. */
  openUntil: number;
  /** Whether one call is probing the backend (half-open). */
  probing: boolean;
}

/** Failure domains remembered at most (a cluster's masters, over its failovers). */
const MAX_BREAKERS = 1024;

/** The breakers of one cache. */
export class CircuitBreakers {
  readonly #config: { readonly failures: number; readonly cooldownMs: number } | undefined;
  /** The breaker of backends without failure domains, and of entries outside any. */
  readonly #default: Breaker = { failures: 0, openUntil: 0, probing: false };
  readonly #byDomain = new Map<string, Breaker>();

  /** @param config - the thresholds; `undefined` disables breaking (calls always allowed) */
  constructor(config: { readonly failures: number; readonly cooldownMs: number } | undefined) {
    this.#config = config;
  }

  /**
   * The breaker of the part of the store that serves the entry: its failure domain's when the
   * backend has domains, so that one failing master does not send the calls of the others
   * around the cache; else the backend's one breaker.
   */
  of(backend: Backend, ref: EntryRef): Breaker {
    if (backend.failureDomain === undefined || this.#config === undefined) return this.#default;
    let domain: string | undefined;
    try {
      domain = backend.failureDomain(ref);
    } catch {
      domain = undefined;
    }
    if (domain === undefined || domain === '') return this.#default;
    let breaker = this.#byDomain.get(domain);
    if (breaker === undefined) {
      if (this.#byDomain.size >= MAX_BREAKERS) this.#byDomain.clear();
      breaker = { failures: 0, openUntil: 0, probing: false };
      this.#byDomain.set(domain, breaker);
    }
    return breaker;
  }

  /** Whether a call may use the backend: the breaker is closed, or this call is its probe. */
  allows(breaker: Breaker): boolean {
    if (breaker.openUntil === 0) return true;
    if (Date.now() < breaker.openUntil || breaker.probing) return false;
    breaker.probing = true; // half-open: one call probes the backend
    return true;
  }

  /** A backend call succeeded: the breaker closes. */
  success(breaker: Breaker): void {
    breaker.failures = 0;
    breaker.openUntil = 0;
    breaker.probing = false;
  }

  /** A backend call failed: counted; the breaker opens at the threshold. */
  failure(breaker: Breaker): void {
    if (this.#config === undefined) return;
    breaker.failures++;
    breaker.probing = false;
    if (breaker.failures >= this.#config.failures) breaker.openUntil = Date.now() + this.#config.cooldownMs;
  }
}
