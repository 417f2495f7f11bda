/**
 * The truth shared by every thread of a chaos run (`scripts/chaos.ts`, `scripts/join-window.ts`):
 * the current version of each key and tag, the floor every call that starts now must see, and
 * when each version's invalidation was acknowledged — in a `SharedArrayBuffer`, so that a thread
 * sees another's bump and acknowledgement at once, with no message in between.
 *
 * - A version is bumped (`bump`) *before* its invalidation is sent; a wrapped function returns
 *   the versions current when its computation starts (`versionsOf`).
 * - Once the invalidation has resolved, `acknowledge` records the time and raises the floor.
 * - A call reads the floors when it starts (`floorsOf`); a value below a floor it read is
 *   "late": it was served after an invalidation had been acknowledged. `lagOf` says how long
 *   after the first acknowledgement that made it old the call started.
 *
 * Times are `now()`: the monotonic clock (`process.hrtime`), one for every thread of the process.
 *
 * @module
 */

/** Acknowledgement times kept per key: versions this far apart share a slot. */
const RING = 256;

/** Milliseconds on the monotonic clock shared by every thread. */
export function now(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

/** The versions a call needs or got: of its key, and of tags `a` and `b` (0 when it has not that tag). */
export interface Versions {
  v: number;
  a: number;
  b: number;
}

/** A key of the run: its index in the shared arrays, and which tags its function carries. */
export interface KeyRef {
  readonly id: number;
  readonly tags: 0 | 1 | 2;
}

/** The shared arrays; build with {@link Truth.create}, share with {@link Truth.buffers}, rebuild with {@link Truth.attach}. */
export class Truth {
  /** Index of tag `a` in the arrays: after the keys. */
  readonly tagA: number;
  /** Index of tag `b` in the arrays: after tag `a`. */
  readonly tagB: number;
  readonly #current: Int32Array;
  readonly #floor: Int32Array;
  readonly #ackAt: Float64Array;
  /** The version whose acknowledgement time each slot of `#ackAt` holds. */
  readonly #ackOf: Int32Array;

  private constructor(
    readonly keys: number,
    readonly buffers: { current: SharedArrayBuffer; floor: SharedArrayBuffer; ackAt: SharedArrayBuffer; ackOf: SharedArrayBuffer },
  ) {
    this.tagA = keys;
    this.tagB = keys + 1;
    this.#current = new Int32Array(buffers.current);
    this.#floor = new Int32Array(buffers.floor);
    this.#ackAt = new Float64Array(buffers.ackAt);
    this.#ackOf = new Int32Array(buffers.ackOf);
  }

  /** A new truth for `keys` keys (and the two tags), every version 0. */
  static create(keys: number): Truth {
    const slots = keys + 2;
    return new Truth(keys, {
      current: new SharedArrayBuffer(4 * slots),
      floor: new SharedArrayBuffer(4 * slots),
      ackAt: new SharedArrayBuffer(8 * slots * RING),
      ackOf: new SharedArrayBuffer(4 * slots * RING),
    });
  }

  /** The same truth in another thread, from {@link Truth.buffers}. */
  static attach(keys: number, buffers: Truth['buffers']): Truth {
    return new Truth(keys, buffers);
  }

  /** Bumps a key or tag (before its invalidation is sent); returns the new version. */
  bump(id: number): number {
    return Atomics.add(this.#current, id, 1) + 1;
  }

  /** The invalidation of `version` resolved at `at`: recorded, then the floor raised. */
  acknowledge(id: number, version: number, at: number): void {
    const slot = id * RING + (version % RING);
    this.#ackAt[slot] = at;
    Atomics.store(this.#ackOf, slot, version);
    for (;;) {
      const floor = Atomics.load(this.#floor, id);
      if (floor >= version || Atomics.compareExchange(this.#floor, id, floor, version) === floor) return;
    }
  }

  /** The versions current now (what a computation starting now returns). */
  versionsOf(key: KeyRef): Versions {
    return {
      v: Atomics.load(this.#current, key.id),
      a: key.tags >= 1 ? Atomics.load(this.#current, this.tagA) : 0,
      b: key.tags >= 2 ? Atomics.load(this.#current, this.tagB) : 0,
    };
  }

  /** The floors now (what a call starting now must get at least). */
  floorsOf(key: KeyRef): Versions {
    return {
      v: Atomics.load(this.#floor, key.id),
      a: key.tags >= 1 ? Atomics.load(this.#floor, this.tagA) : 0,
      b: key.tags >= 2 ? Atomics.load(this.#floor, this.tagB) : 0,
    };
  }

  /**
   * For a value `got` below the floors `need` read when the call started at `startedAt`: how
   * long after the first acknowledgement that made it old the call started (ms, ≥ 0).
   */
  lagOf(key: KeyRef, got: Versions, need: Versions, startedAt: number): number {
    const first = Math.min(...this.acksOf(key, got, need, startedAt).map(([, at]) => at));
    return Number.isFinite(first) ? startedAt - first : 0;
  }

  /**
   * For each version in which `got` is below `need` (the key's, a tag's): its index in the
   * arrays, and the first acknowledgement (before `startedAt`) of a version above `got`.
   */
  acksOf(key: KeyRef, got: Versions, need: Versions, startedAt: number): [id: number, at: number][] {
    const acks: [number, number][] = [];
    const earliest = (id: number, from: number, to: number): void => {
      let first = Infinity;
      for (let version = Math.max(from + 1, to - RING + 1); version <= to; version++) {
        const slot = id * RING + (version % RING);
        if (Atomics.load(this.#ackOf, slot) !== version) continue; // not acknowledged yet
        const at = this.#ackAt[slot] as number;
        if (at <= startedAt && at < first) first = at;
      }
      if (Number.isFinite(first)) acks.push([id, first]);
    };
    if (got.v < need.v) earliest(key.id, got.v, need.v);
    if (got.a < need.a) earliest(this.tagA, got.a, need.a);
    if (got.b < need.b) earliest(this.tagB, got.b, need.b);
    return acks;
  }
}

/** Whether `got` is below `need` in any of the versions. */
export function isOlder(got: Versions, need: Versions): boolean {
  return got.v < need.v || got.a < need.a || got.b < need.b;
}
