/**
 * Tick batching of the backend's script calls (the `batch` option): the reads (or the writes)
 * that concurrent calls issue in one tick are queued and sent together at the end of the tick,
 * one script call per slot, instead of one script call each. At 64 concurrent misses a tick
 * typically holds dozens of reads (the calls the previous replies resumed) and as many writes
 * (the computations that ended): ioredis builds, writes and parses one command instead of
 * dozens, and the server runs one script instead of dozens. Each entry still gets its own
 * reply, lock and failure.
 *
 * Only a crowd is batched, as the socket-write coalescing does (`coalesce.ts`, the same
 * {@link TickCrowd}): a tick's first call goes out at once unless the tick before also had
 * several, so that a lone call (concurrency 1) is sent as its own script call without waiting
 * for the end of its tick.
 *
 * @module
 */

import { TickCrowd } from './tick.js';

/** A call waiting in a {@link TickBatch}: what to send, and how to settle its promise. */
export interface Pending<Request, Reply> {
  readonly request: Request;
  readonly resolve: (reply: Reply) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The calls of one kind (reads, or writes) issued in the current tick. {@link TickBatch.add}
 * says whether a call is to be sent at once or is queued; the queue goes to `flush` at the end
 * of the tick (after the microtasks that issue the tick's calls), in the order the calls came.
 */
export class TickBatch<Request, Reply> {
  readonly #flush: (pending: Pending<Request, Reply>[]) => void;
  /** Queued calls that are sent without waiting for the end of the tick. */
  readonly #most: number;
  #queue: Pending<Request, Reply>[] = [];
  /** The calls of this tick; its end sends the queue. */
  readonly #tick = new TickCrowd(() => {
    this.flush();
  });

  /**
   * @param flush - sends queued calls (at least one), in the order they came
   * @param most - how many queued calls are sent at once, without waiting for the end of the tick
   */
  constructor(flush: (pending: Pending<Request, Reply>[]) => void, most: number) {
    this.#flush = flush;
    this.#most = most;
  }

  /**
   * Counts a call of this tick: `undefined` if it is to be sent at once (the tick's first, after
   * a tick without a crowd), else the promise of its reply, queued until the end of the tick.
   */
  add(request: Request): Promise<Reply> | undefined {
    if (this.#tick.count() && !this.#tick.crowdBefore) return undefined;
    const queued = new Promise<Reply>((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
    });
    if (this.#queue.length >= this.#most) this.flush();
    return queued;
  }

  /**
   * Sends what is queued now, without waiting for the end of the tick (a full batch, a closing
   * backend). If sending throws, every call it carried rejects with the error (those already
   * sent keep the answer they get first).
   */
  flush(): void {
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    try {
      this.#flush(queue);
    } catch (error) {
      for (const call of queue) call.reject(error);
    }
  }
}

/**
 * Splits calls into groups by a key (their slot), each group in the calls' order and cut into
 * chunks of at most `chunk`: the script calls to send.
 */
export function chunksBySlot<T>(items: readonly T[], slotOf: (item: T) => number, chunk: number): T[][] {
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = slotOf(item);
    const group = groups.get(slot);
    if (group === undefined) groups.set(slot, [item]);
    else group.push(item);
  }
  const chunks: T[][] = [];
  for (const group of groups.values()) {
    if (group.length <= chunk) chunks.push(group);
    else for (let start = 0; start < group.length; start += chunk) chunks.push(group.slice(start, start + chunk));
  }
  return chunks;
}
