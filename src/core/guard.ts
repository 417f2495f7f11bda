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
interface Deadline {
  /** When it expires, `Date.now()` time. */
  readonly at: number;
  /** Runs once if the deadline passes before the call settles. */
  readonly expire: () => void;
  /** Set when the call settled in time, or expired: nothing more to do. */
  done: boolean;
}

/**
 * The deadlines of backend calls, all of one length: since each expires a fixed time after it
 * was added, they expire in the order they were added — one queue and one timer serve them all,
 * instead of a timer per call (a burst of thousands of calls would otherwise arm as many).
 */
export class DeadlineQueue {
  readonly #ms: number;
  #queue: Deadline[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined;

  /** @param ms - the length of every deadline */
  constructor(ms: number) {
    this.#ms = ms;
  }

  /** Starts a deadline; `expire` runs if it passes before the returned entry is marked done. */
  add(expire: () => void): Deadline {
    const deadline: Deadline = { at: Date.now() + this.#ms, expire, done: false };
    this.#queue.push(deadline);
    if (this.#timer === undefined) this.#timer = setTimeout(this.#sweep, this.#ms);
    return deadline;
  }

  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = Date.now();
    const queue = this.#queue;
    let head = this.#head;
    while (head < queue.length) {
      const deadline = queue[head] as Deadline;
      if (!deadline.done) {
        if (deadline.at > now) break;
        deadline.done = true;
        deadline.expire();
      }
      head++;
    }
    if (head >= queue.length) {
      this.#queue = [];
      this.#head = 0;
      return;
    }
    if (head > 1024 && head * 2 > queue.length) {
      this.#queue = queue.slice(head);
      head = 0;
    }
    this.#head = head;
    this.#timer = setTimeout(this.#sweep, Math.max(1, (this.#queue[head] as Deadline).at - now));
  };
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
    return new Promise<T>((resolve, reject) => {
      const deadline = this.#deadlines.add(() => {
        onLate?.();
        reject(new Error(`${operation} timed out after ${this.#deadlineMs} ms (backendTimeout)`));
      });
      promise.then(
        (value) => {
          if (deadline.done) return;
          deadline.done = true;
          resolve(value);
        },
        (error: unknown) => {
          if (deadline.done) return;
          deadline.done = true;
          reject(error);
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
