/**
 * Backend calls under the cache's rules: a deadline on remote stores, and the fail-open policy
 * that turns a failure into an `error` event (or, with `failOpen: false`, a rejection).
 *
 * @module
 */

import type { Backend } from '../backend/backend.js';
import type { Recorder } from '../events.js';
import { BackendError, type BackendOperation, HermesError } from '../errors.js';

/** One call under a {@link DeadlineQueue}'s deadline. */
export interface Deadline {
  /** When it expires, `Date.now()` time. */
  readonly at: number;
  /** Runs if the deadline passes before the call ends it. */
  readonly expire: () => void;
}

/**
 * The deadlines of backend calls, all of one length: since each expires a fixed time after it
 * was added, they expire in the order they were added — one ordered set and one timer serve
 * them all, instead of a timer per call (a burst of thousands of calls would otherwise arm as
 * many). A call that ends in time leaves the set at once, so nothing it holds is kept alive
 * until its deadline.
 */
export class DeadlineQueue {
  readonly #ms: number;
  /** Pending deadlines, in insertion order, which is their order of expiry. */
  readonly #pending = new Set<Deadline>();
  #timer: NodeJS.Timeout | undefined;

  /** @param ms - the length of every deadline */
  constructor(ms: number) {
    this.#ms = ms;
  }

  /** Starts a deadline; `expire` runs if it passes before {@link DeadlineQueue.end} is called. */
  add(expire: () => void): Deadline {
    const deadline: Deadline = { at: Date.now() + this.#ms, expire };
    this.#pending.add(deadline);
    if (this.#timer === undefined) this.#timer = setTimeout(this.#sweep, this.#ms);
    return deadline;
  }

  /** Ends a deadline: `true` if it was still pending (the call is in time), `false` if it expired. */
  end(deadline: Deadline): boolean {
    return this.#pending.delete(deadline);
  }

  /** The number of pending deadlines. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * The timer: deadlines past due are expired after the I/O that is ready has been read (one
   * `setImmediate` later), not at once. When this process itself was busy past a deadline — a
   * burst of thousands of calls issued in one go, a long synchronous task — the answers that
   * arrived meanwhile are waiting in the socket: they end their calls' deadlines first, and
   * only the calls the backend has not answered by then expire.
   */
  readonly #sweep = (): void => {
    this.#timer = undefined;
    const first = this.#pending.values().next();
    if (first.done === true) return;
    if (first.value.at > Date.now()) {
      this.#arm(first.value.at);
      return;
    }
    setImmediate(this.#expireDue);
  };

  readonly #expireDue = (): void => {
    const now = Date.now();
    const pending = this.#pending;
    for (const deadline of pending) {
      if (deadline.at > now) {
        this.#arm(deadline.at);
        return;
      }
      pending.delete(deadline);
      deadline.expire();
    }
  };

  /**
   * Disarms the timer when no deadline is pending (it otherwise stays armed up to one deadline
   * past the last call), so that a closed cache keeps nothing alive. Pending deadlines keep it.
   */
  release(): void {
    if (this.#pending.size > 0 || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(at: number): void {
    if (this.#timer === undefined) this.#timer = setTimeout(this.#sweep, Math.max(1, at - Date.now()));
  }
}

/** How a cache calls its backend: deadlines and the fail-open policy. */
export class BackendGuard {
  readonly #deadlineMs: number;
  readonly #deadlines: DeadlineQueue;
  readonly #failOpen: boolean;
  readonly #recorder: Recorder;

  /**
   * @param deadlineMs - `backendTimeout`
   * @param failOpen - `failOpen`
   * @param recorder - where absorbed errors are reported
   */
  constructor(deadlineMs: number, failOpen: boolean, recorder: Recorder) {
    this.#deadlineMs = deadlineMs;
    this.#deadlines = new DeadlineQueue(deadlineMs);
    this.#failOpen = failOpen;
    this.#recorder = recorder;
  }

  /** On the cache's `close()`: the deadline timer, if idle, stops (see {@link DeadlineQueue.release}). */
  close(): void {
    this.#deadlines.release();
  }

  /**
   * `call()` under the backend deadline; in-process stores (`inProcess`) cannot hang and
   * get none. `onLate` runs if the deadline passes first.
   */
  deadline<T>(backend: Backend, operation: string, call: () => Promise<T>, onLate?: () => void): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = call();
    } catch (error) {
      return Promise.reject(error);
    }
    if (backend.inProcess === true) return promise;
    const deadlines = this.#deadlines;
    return new Promise<T>((resolve, reject) => {
      const deadline = deadlines.add(() => {
        onLate?.();
        reject(new Error(`${operation} timed out after ${this.#deadlineMs} ms (backendTimeout)`));
      });
      promise.then(
        (value) => {
          if (deadlines.end(deadline)) resolve(value);
        },
        (error: unknown) => {
          if (deadlines.end(deadline)) reject(error);
        },
      );
    });
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
