/**
 * What the Memcached backend stores under an entry key: the encoded entry's bytes, whose header
 * (tag hash, fresh-until time) the read checks in the process, as memcached cannot.
 *
 * @module
 */

import { freshUntilOf, HEADER_LENGTH, TAG_HASH_OFFSET } from '../../codec.js';
import type { StoredEntry } from '../backend.js';

/**
 * What stored bytes are for an entry written under `hash`: `'fresh'` when the header's tag
 * hash (bytes 4..20) equals `hash` and its fresh-until time (bytes 20..33, milliseconds) is in
 * the future on this process's clock, `'stale'` when the hash matches but that time has
 * passed, `'invalid'` otherwise (foreign bytes included): a miss.
 */
export function entryState(stored: unknown, hash: string): 'fresh' | 'stale' | 'invalid' {
  if (!Buffer.isBuffer(stored) || stored.length < HEADER_LENGTH) return 'invalid';
  for (let i = 0; i < 16; i++) if (stored[TAG_HASH_OFFSET + i] !== hash.charCodeAt(i)) return 'invalid';
  const freshUntil = freshUntilOf(stored);
  if (freshUntil === undefined) return 'invalid';
  return freshUntil > Date.now() ? 'fresh' : 'stale';
}

/** The bytes of an encoded entry (a Buffer view of a Uint8Array); a record is refused with a TypeError. */
export function asBuffer(entry: StoredEntry): Buffer {
  if (Buffer.isBuffer(entry)) return entry;
  if (entry instanceof Uint8Array) return Buffer.from(entry.buffer, entry.byteOffset, entry.byteLength);
  throw new TypeError('MemcachedBackend stores encoded bytes (storesBytes is true), got a record');
}
