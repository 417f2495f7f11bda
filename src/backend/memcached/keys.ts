/**
 * Memcached key names. The text protocol refuses keys longer than 250 bytes and keys holding
 * whitespace or control characters; hermes' keys hold the caller's function names and tags, so
 * some of them must be rewritten into a safe form that stays readable and never collides.
 *
 * @module
 */

import { createHash } from 'node:crypto';

/** The longest key memcached accepts, in bytes. */
export const MAX_KEY_LENGTH = 250;

/** Marks a rewritten key; a key that contains it is itself rewritten, so the two never meet. */
const HASH_MARK = '~~';
/** 32 hex digits: 128 bits of SHA-256, enough that two different keys never share a form. */
const HASH_DIGITS = 32;
const READABLE_LENGTH = MAX_KEY_LENGTH - HASH_MARK.length - HASH_DIGITS;

/**
 * The form of `key` that memcached accepts. A key of at most 250 printable ASCII characters
 * (`!` to `~`) that does not contain `~~` is kept as it is. Any other key becomes its readable
 * part (each character outside printable ASCII replaced by `_`, cut to fit) followed by `~~`
 * and 32 hex digits of the SHA-256 of the whole key, so that `a b`, `a_b` and `a\nb` stay
 * three different keys, and the form starts with the cache prefix like the original.
 */
export function memcachedKey(key: string): string {
  const length = key.length;
  if (length <= MAX_KEY_LENGTH) {
    let safe = true;
    let previousTilde = false;
    for (let i = 0; i < length; i++) {
      const code = key.charCodeAt(i);
      if (code <= 0x20 || code >= 0x7f || (code === 0x7e && previousTilde)) {
        safe = false;
        break;
      }
      previousTilde = code === 0x7e;
    }
    if (safe) return key;
  }
  let readable = '';
  for (let i = 0; i < length && readable.length < READABLE_LENGTH; i++) {
    const code = key.charCodeAt(i);
    readable += code <= 0x20 || code >= 0x7f || code === 0x7e ? '_' : String.fromCharCode(code);
  }
  const digest = createHash('sha256').update(key, 'utf8').digest('hex').slice(0, HASH_DIGITS);
  return `${readable}${HASH_MARK}${digest}`;
}
