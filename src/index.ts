/**
 * hermes-cache: a function-result cache with tag-based O(1) invalidation, stampede prevention
 * and one network round trip per read. Backend writers find the contract's plumbing in
 * `hermes-cache/backend` and its test suite in `hermes-cache/testing`.
 *
 * @packageDocumentation
 */

export { Hermes } from './hermes.js';
export { asCached } from './decorate.js';
export type { CachedFunction, CachedMethodDecorator } from './decorate.js';
export type { CacheStatus, CallInfo } from './core/info.js';
export type { HermesEvents, HermesStats, HitSource, StaleReason, TraceContext } from './events.js';
export type { CircuitBreakerOptions, Duration, EarlyRefreshOptions, HermesOptions, TimeoutOptions, WrapOptions } from './options.js';
export { MemoryBackend } from './backend/memory.js';
export type { MemoryBackendOptions } from './backend/memory.js';
export type {
  Backend,
  BackendClass,
  BackendContext,
  EntryRef,
  NearCacheStats,
  ReadReply,
  ReadRequest,
  SetRequest,
  StoredEntry,
  WriteRequest,
} from './backend/backend.js';
export { EntryCodec, findLossyPart, zlibCompressor } from './codec.js';
export type { CodecOptions, Compressor, EntryRecord, LossyPart, RevivableClass, Serializer } from './codec.js';
export {
  ArgumentError,
  BackendError,
  CorruptEntryError,
  HermesError,
  NameConflictError,
  OptionError,
  LossyValueError,
  SerializationError,
  TimeoutError,
} from './errors.js';
export type { BackendOperation, HermesErrorCode } from './errors.js';
