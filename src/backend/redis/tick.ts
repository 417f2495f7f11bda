/**
 * The calls of the current tick, and whether the tick before had a crowd: what the socket-write
 * coalescing (`coalesce.ts`) and the tick batches (`batch.ts`) both decide by. A tick's first
 * call schedules the end of the tick (`process.nextTick`, which runs after the microtasks that
 * issue the tick's calls); the end records whether the tick had more than one call.
 *
 * @module
 */

/** Counts the calls of each tick and runs `onEnd` at the end of every tick that had one. */
export class TickCrowd {
  readonly #onEnd: () => void;
  /** Whether a call was counted in this tick (the end-of-tick callback is scheduled). */
  #open = false;
  /** Calls counted in this tick. */
  #calls = 0;
  /** Whether the last tick that had calls had more than one. */
  #crowdBefore = false;

  /** @param onEnd - runs at the end of each tick in which a call was counted */
  constructor(onEnd: () => void) {
    this.#onEnd = onEnd;
  }

  /** Counts a call of this tick; `true` if it is the tick's first. */
  count(): boolean {
    if (this.#open) {
      this.#calls++;
      return false;
    }
    this.#open = true;
    this.#calls = 1;
    process.nextTick(this.#end);
    return true;
  }

  /** Whether the tick before this one had more than one call (a crowd is likely to go on). */
  get crowdBefore(): boolean {
    return this.#crowdBefore;
  }

  readonly #end = (): void => {
    this.#crowdBefore = this.#calls > 1;
    this.#open = false;
    this.#onEnd();
  };
}
