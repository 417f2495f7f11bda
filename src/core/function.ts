/**
 * A cached function's compiled form ({@link FunctionPolicy}), built once at `wrap` time and
 * shared by every call, and the entry of a call ({@link entryRefOf}).
 *
 * @module
 */

import { OptionError } from '../errors.js';
import { canonicalArgs, type EntryRef, hashString, type Keyspace } from '../keys.js';
import { describeValue, type Duration, type StalePolicy } from '../options.js';

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
  /** The tag function (`tags` given as one): the tags of each call; {@link FunctionPolicy.tags} is then empty. */
  readonly tagsOf?: ((...args: unknown[]) => readonly string[]) | undefined;
  /**
   * With a tag function: the tag-key lists of recent tag lists, by their JSON form, so that a
   * call with the tags of an earlier one passes the same array (backends keep per-list state
   * by identity: the in-process store's last tag hash, Memcached's tag plans).
   */
  readonly tagKeysMemo?: Map<string, readonly string[]> | undefined;
  /** The TTL function (`ttl` given as one): the TTL of each result stored. */
  readonly ttlOf?: ((result: unknown, ...args: unknown[]) => Duration) | undefined;
  /** `cacheIf`: whether a result is stored. */
  readonly cacheIf?: ((result: unknown, ...args: unknown[]) => boolean) | undefined;
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

/**
 * The tag keys of a call, in the order the tag hash uses: the function's static tag keys, or
 * those of the tags its tag function returns for these arguments (the same array for the same
 * tags, from {@link FunctionPolicy.tagKeysMemo}).
 * @throws the tag function's own error; {@link OptionError} (option `tags`) if it returns
 *   anything but an array of non-empty strings
 */
export function tagKeysOf(keyspace: Keyspace, policy: FunctionPolicy, args: readonly unknown[]): readonly string[] {
  const tagsOf = policy.tagsOf;
  if (tagsOf === undefined) return policy.tagKeys;
  const tags: unknown = tagsOf(...args);
  if (!Array.isArray(tags)) {
    throw new OptionError('tags', `The tags function of '${policy.name}' must return an array of non-empty strings, got ${describeValue(tags)}`);
  }
  for (let i = 0; i < tags.length; i++) {
    const tag: unknown = tags[i];
    if (typeof tag !== 'string' || tag.length === 0) {
      throw new OptionError(
        'tags',
        `The tags function of '${policy.name}' must return non-empty strings, got ${typeof tag === 'string' ? "''" : describeValue(tag)} at index ${i}`,
      );
    }
  }
  const memo = policy.tagKeysMemo;
  if (memo === undefined) return tags.map((tag: string) => keyspace.tagKey(tag));
  // One tag (the common case) is its own memo key, spared a JSON encoding. Other lists are keyed
  // by their JSON form, which starts with '['; a single tag that starts with '[' or '"' by its
  // own JSON form (starting with '"'): no two lists share a key.
  const id = tags.length === 1 ? singleTagId(tags[0] as string) : JSON.stringify(tags);
  let tagKeys = memo.get(id);
  if (tagKeys === undefined) {
    tagKeys = Object.freeze(tags.map((tag: string) => keyspace.tagKey(tag)));
    if (memo.size >= KEY_MEMO_SIZE) memo.clear();
    memo.set(id, tagKeys);
  }
  return tagKeys;
}

/** The memo key of a one-tag list: the tag, unless it starts as a JSON form may (then its JSON form). */
function singleTagId(tag: string): string {
  const first = tag.charCodeAt(0);
  return first === 0x5b /* [ */ || first === 0x22 /* " */ ? JSON.stringify(tag) : tag;
}
