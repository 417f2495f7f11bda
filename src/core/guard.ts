/**
 * Backend calls under the cache's rules: a deadline on remote stores, and the fail-open policy
 * that turns a failure into an `error` event (or, with `failOpen: false`, a rejection).
 *
 * @module
 */

import type { Backend } from '../backend/backend.js';
import type { Recorder } from '../events.js';
import { BackendError, type BackendOperation, HermesError } from '../errors.js';

/**
 * Rejects if `promise` has not settled within `ms` (the backend deadline); `onLate` runs when
 * the deadline passes first.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, operation: string, onLate?: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onLate?.();
      reject(new Error(`${operation} timed out after ${ms} ms (backendTimeout)`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** How a cache calls its backend: deadlines and the fail-open policy. */
export class BackendGuard {
  readonly #deadlineMs: number;
  readonly #failOpen: boolean;
  readonly #recorder: Recorder;

  /**
   * @param deadlineMs - `backendTimeout`
   * @param failOpen - `failOpen`
   * @param recorder - where absorbed errors are reported
   */
  constructor(deadlineMs: number, failOpen: boolean, recorder: Recorder) {
    this.#deadlineMs = deadlineMs;
    this.#failOpen = failOpen;
    this.#recorder = recorder;
  }

  /**
   * `call()` under the backend deadline; in-process stores (with `readSync`) cannot hang and
   * get none. `onLate` runs if the deadline passes first.
   */
  deadline<T>(backend: Backend, operation: string, call: () => Promise<T>, onLate?: () => void): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = call();
    } catch (error) {
      return Promise.reject(error);
    }
    if (backend.readSync) return promise;
    return withDeadline(promise, this.#deadlineMs, operation, onLate);
  }

  /** A backend failure on a wrapped call: thrown unless failing open, else reported. */
  absorb(error: HermesError): void {
    if (!this.#failOpen) throw error;
    this.#recorder.report(error);
  }

  /** A failure that never reaches the caller (a background write, a corrupt entry): reported. */
  report(error: HermesError): void {
    this.#recorder.report(error);
  }

  /** An invalidation: its failure rejects as a {@link BackendError}, whatever `failOpen` says. */
  async invalidation(operation: BackendOperation, key: string | undefined, call: () => Promise<unknown>): Promise<void> {
    try {
      await call();
    } catch (error) {
      throw error instanceof HermesError ? error : new BackendError(operation, key, error);
    }
  }
}
