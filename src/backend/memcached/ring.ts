/**
 * Consistent hashing of keys over servers (the ketama scheme): each server owns many points on
 * a 32-bit circle, and a key belongs to the server owning the first point at or after the
 * key's hash. Adding or removing one server moves only about 1/n of the keys.
 *
 * @module
 */

import { createHash } from 'node:crypto';

const POINTS_PER_SERVER = 160;

/** FNV-1a, 32 bits, over the UTF-16 code units of a string: fast, and well spread for keys. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  // A final avalanche (murmur3's fmix32): keys differing in their last characters spread out.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** Maps keys to server indexes on a consistent-hashing ring. */
export class HashRing {
  readonly #points: Uint32Array;
  readonly #owners: Uint16Array;
  readonly #size: number;

  /** @param names - one stable name per server (its `host:port`), in index order */
  constructor(names: readonly string[]) {
    this.#size = names.length;
    const points: { point: number; owner: number }[] = [];
    names.forEach((name, owner) => {
      for (let i = 0; i < POINTS_PER_SERVER / 4; i++) {
        // Four points per MD5 digest of `name-i`, as ketama does.
        const digest = createHash('md5').update(`${name}-${i}`).digest();
        for (let j = 0; j < 4; j++) points.push({ point: digest.readUInt32LE(j * 4), owner });
      }
    });
    points.sort((a, b) => a.point - b.point);
    this.#points = Uint32Array.from(points, (p) => p.point);
    this.#owners = Uint16Array.from(points, (p) => p.owner);
  }

  /** The index of the server that owns `key`. */
  serverOf(key: string): number {
    if (this.#size <= 1) return 0;
    const hash = fnv1a32(key);
    const points = this.#points;
    let low = 0;
    let high = points.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((points[mid] as number) < hash) low = mid + 1;
      else high = mid;
    }
    return this.#owners[low === points.length ? 0 : low] as number;
  }
}
