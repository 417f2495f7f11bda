/**
 * Tag plans: for each list of tag keys (one array per wrapped function, or per tag list of a
 * `tags` function), the memcached keys a read fetches after the entry, the versions they held
 * at the last read and the tag hash of those versions, so that a read whose versions did not
 * change hashes nothing.
 *
 * @module
 */

import { uniqueToken } from '../../keys.js';
import { memcachedKey } from './keys.js';
import type { MultiGetResult } from './server.js';

/** Per tag-key list: the memcached keys and the last versions and hash. */
export interface TagPlan {
  /** The tags' memcached keys, in the order of the tag keys. */
  readonly keys: readonly string[];
  /** The keys a read fetches after the entry: the namespace version, then the tags. */
  versionKeys: readonly string[];
  /** The memcached key of the namespace version that leads `versionKeys`. */
  namespaceKey: string;
  /** The versions of `versionKeys` at the last read, or `undefined` before one. */
  versions: readonly string[] | undefined;
  /** The tag hash of `versions`. */
  hash: string;
}

/** The plan of each tag-key list, held as long as the list itself. */
export class TagPlans {
  readonly #plans = new WeakMap<readonly string[], TagPlan>();

  /** The plan of `tagKeys`, made on first use. */
  get(tagKeys: readonly string[]): TagPlan {
    let plan = this.#plans.get(tagKeys);
    if (plan === undefined) {
      const keys = tagKeys.map(memcachedKey);
      plan = { keys, versionKeys: keys, namespaceKey: '', versions: undefined, hash: '' };
      this.#plans.set(tagKeys, plan);
    }
    return plan;
  }

  /** The plan of `tagKeys`, its version keys led by `namespaceKey` (its last versions forgotten when that changes). */
  planFor(tagKeys: readonly string[], namespaceKey: string): TagPlan {
    const plan = this.get(tagKeys);
    if (plan.namespaceKey !== namespaceKey) {
      plan.namespaceKey = namespaceKey;
      plan.versionKeys = [namespaceKey, ...plan.keys];
      plan.versions = undefined;
    }
    return plan;
  }
}

/**
 * The version of each of `versionKeys` after a miss created the missing ones: as read back
 * (`created`), else as first read (`found`). A version deleted again between the add and the
 * read (a clean raced the miss) becomes a fresh random one, which no entry carries, so that
 * whatever is computed now is written invalid.
 */
export function versionsAfterMiss(versionKeys: readonly string[], found: MultiGetResult, created: MultiGetResult | undefined): string[] {
  const versions: string[] = [];
  for (const key of versionKeys) {
    const value = (created?.[key] ?? found[key])?.value;
    versions.push(typeof value !== 'string' || value.length === 0 ? uniqueToken() : value);
  }
  return versions;
}
