/**
 * Profiles a near-cache hit (or, for comparison, an in-process hit): sequential awaited hits
 * on 1,000 warm keys, after which it prints the nanoseconds per hit. Run it under the V8
 * profiler, then summarise the profile with the peer benchmark's summariser:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx scripts/bench/near-profile.ts near
 *   npx tsx scripts/bench/peers/profile.ts --summary /tmp/prof/<file>.cpuprofile
 *
 * Arguments: `near` (RedisBackend with `nearCache: true`, on a redis-server it starts),
 * `memory` (MemoryBackend, live values) or `memory-serialized` (MemoryBackend,
 * `serialize: true`); then `tags` for 3 tags; then the number of hits (default 600,000).
 */

import { Hermes, MemoryBackend } from '../../src/index.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { startRedisServer, type RedisServer } from '../../test/helpers/redis-server.js';
import { payload } from './redis.js';

const [subject = 'near', tagArg = '', hitsText = '600000'] = process.argv.slice(2);
const KEYS = 1000;
const hits = Number(hitsText);

let server: RedisServer | undefined;
let cache: Hermes<unknown>;
if (subject === 'near') {
  server = await startRedisServer();
  cache = new Hermes(RedisBackend, { host: '127.0.0.1', port: server.port, prefix: 'profile', ttl: 3600, nearCache: true }) as Hermes<unknown>;
} else if (subject === 'memory' || subject === 'memory-serialized') {
  cache = new Hermes(new MemoryBackend({ maxEntries: 10_000, serialize: subject === 'memory-serialized' }));
} else {
  throw new Error(`unknown subject '${subject}' (near, memory, memory-serialized)`);
}
try {
  const fn = cache.wrap(async (id: number) => payload(id), { name: 'profiled', tags: tagArg === 'tags' ? ['a', 'b', 'c'] : [] });
  // Warm: a miss writes, the write's own invalidation arrives, the next read fills the near-cache.
  for (let pass = 0; pass < 5; pass++) {
    for (let i = 0; i < KEYS; i++) await fn(i);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const near = cache.stats().near;
  if (near !== undefined && near.entries < KEYS) throw new Error(`only ${near.entries} of ${KEYS} entries in the near-cache`);
  const start = process.hrtime.bigint();
  for (let i = 0; i < hits; i++) await fn(i % KEYS);
  const ns = Number(process.hrtime.bigint() - start) / hits;
  const served = cache.stats().near?.hits;
  console.log(`${subject}${tagArg === 'tags' ? ', 3 tags' : ''}: ${ns.toFixed(0)} ns per hit over ${hits} hits${served === undefined ? '' : ` (${served} from the near-cache)`}`);
} finally {
  await cache.close();
  await server?.stop();
}
