/**
 * `hermes-cache/backend`: what a backend writer needs, beside the contract suite
 * (`hermes-cache/testing`): the {@link Backend} contract's types, the shared plumbing (lock
 * waiters, `dump()` helpers, option validators), the entry header's layout and tag hash, and
 * the key names.
 *
 * @packageDocumentation
 */

export type {
  Backend,
  BackendClass,
  BackendContext,
  EntryRef,
  ReadReply,
  ReadRequest,
  SetRequest,
  StoredEntry,
  WriteRequest,
} from './backend.js';
export { decodeForDump, integerOption, LockWaiters, numberOption, sortedByKey } from './kit.js';
export type { SettleWait } from './kit.js';
export { earlyRandom, refreshEarly, wantsEarlyRefresh } from './early.js';
export {
  COMPUTE_MS_OFFSET,
  computeMsOf,
  EntryCodec,
  findLossyPart,
  FORMAT_VERSION,
  FORMAT_VERSION_1,
  FRESH_UNTIL_OFFSET,
  freshUntilOf,
  HEADER_LENGTH,
  HEADER_V2_LENGTH,
  MAX_COMPUTE_MS,
  STORED_AT_OFFSET,
  storedAtOf,
  isPlainJson,
  TAG_HASH_OFFSET,
  tagHash,
  UNTAGGED_HASH,
} from '../codec.js';
export type { EntryRecord } from '../codec.js';
export { argsHash, canonicalArgs, hashString, idStart, Keyspace, uniqueToken } from '../keys.js';
export type { KeyKind } from '../keys.js';
