/**
 * A cached function's compiled form ({@link FunctionPolicy}), built once at `wrap` time and
 * shared by every call, and the entry of a call ({@link entryRefOf}).
 *
 * @module
 */

import { OptionError } from '../errors.js';
import { canonicalArgs, type EntryRef, hashString, type Keyspace } from '../keys.js';
import type { StalePolicy } from '../options.js';

/** Argument lists whose entry keys are remembered per function. */
const KEY_MEMO_SIZE = 2048;
/** Longer canonical argument lists are not remembered (a memo of huge strings would pin them). */
const KEY_MEMO_MAX_LENGTH = 1024;

/** One wrapped function: what every call of it needs, parsed once. */
export interface FunctionPolicy extends StalePolicy {
  /** The function itself. */
  readonly fn: (...args: unknown[]) => unknown;
  /** The name in its entry keys. */
  readonly name: string;
  /** Its tags, and their keys in the order the tag hash uses. */
  readonly tags: readonly string[];
  readonly tagKeys: readonly string[];
  /** The fresh time of its entries, ms. */
  readonly ttlMs: number;
  /** The user's key function, replacing the argument hash. */
  readonly key: ((...args: unknown[]) => string) | undefined;
  /** Entries of recent argument lists, by canonical form. */
  readonly keyMemo: Map<string, EntryRef>;
}

/**
 * The entry of a call. Entries of recent argument lists are memoised per function, so that a
 * hit costs one canonical encoding and one map lookup instead of a hash.
 * @throws {@link OptionError} if the user's key function returns no non-empty string;
 *   `ArgumentError` for an argument that has no canonical form
 */
export function entryRefOf(keyspace: Keyspace, policy: FunctionPolicy, args: readonly unknown[]): EntryRef {
  if (policy.key) {
    const key = policy.key(...args);
    if (typeof key !== 'string' || key.length === 0) {
      throw new OptionError('key', `The key function of '${policy.name}' must return a non-empty string`);
    }
    return keyspace.entryRef(policy.name, key);
  }
  const canonical = canonicalArgs(args);
  const memo = policy.keyMemo;
  let ref = memo.get(canonical);
  if (ref === undefined) {
    ref = keyspace.entryRef(policy.name, hashString(canonical));
    if (canonical.length <= KEY_MEMO_MAX_LENGTH) {
      if (memo.size >= KEY_MEMO_SIZE) memo.clear();
      memo.set(canonical, ref);
    }
  }
  return ref;
}
