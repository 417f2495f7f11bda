/**
 * `hermes-cache/memcached`: the Memcached backend. Needs the optional peer dependency
 * `memcache-client` (`npm install memcache-client`); nothing else in hermes imports it.
 *
 * @module
 */

export { MemcachedBackend } from './backend.js';
export type { MemcachedBackendOptions } from './options.js';
export { MemcachedServerDownError, MemcachedValueTooLargeError } from './errors.js';
export { memcachedKey, MAX_KEY_LENGTH } from './keys.js';
