/**
 * Memory per entry on the server: the keys one cached 100-byte value with 3 tags leaves in
 * Redis (with `MEMORY USAGE` of each), and how keys and `used_memory` grow with 1,000 and
 * 10,000 tagged entries (all carrying the same 3 tags).
 */

import type { Redis } from 'ioredis';
import type { LibraryFactory } from './libraries.js';

/** The memory figures of one library. */
export interface MemoryRow {
  readonly library: string;
  /** Whether the entries carry the 3 tags (false when the library has no tags). */
  readonly tagged: boolean;
  /** The keys one entry leaves, with `MEMORY USAGE` bytes each (key patterns with digits as #). */
  readonly oneEntryKeys: { key: string; bytes: number }[];
  /** Sum of `MEMORY USAGE` over those keys. */
  readonly oneEntryBytes: number;
  /** Keys in the database after 1,000 and 10,000 entries. */
  readonly keysAt: Record<number, number>;
  /** `used_memory` growth per entry, in bytes, from empty to 1,000 and to 10,000 entries. */
  readonly bytesPerEntryAt: Record<number, number>;
}

async function usedMemory(admin: Redis): Promise<number> {
  const info = await admin.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN);
}

async function allKeys(admin: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await admin.scan(cursor, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys.sort();
}

async function fill(library: { get(i: number, tagged: boolean): Promise<unknown> }, from: number, to: number, tagged: boolean): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < to) await library.get(next++, tagged);
    }),
  );
}

/** Measures one library on an otherwise empty Redis (the database is flushed first). */
export async function memoryOf(factory: LibraryFactory, redisPort: number, admin: Redis): Promise<MemoryRow> {
  const library = factory.make({ redisPort, memcachedPort: 0 });
  const tagged = library.lacks.taggedMiss === undefined;
  try {
    await library.get(-1, tagged); // connect, load scripts
    await admin.flushall('SYNC');
    await library.get(0, tagged);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const oneEntryKeys: { key: string; bytes: number }[] = [];
    for (const key of await allKeys(admin)) {
      oneEntryKeys.push({ key, bytes: Number(await admin.memory('USAGE', key, 'SAMPLES', 0)) });
    }
    await admin.flushall('SYNC');
    const base = await usedMemory(admin);
    const keysAt: Record<number, number> = {};
    const bytesPerEntryAt: Record<number, number> = {};
    let done = 0;
    for (const n of [1000, 10_000]) {
      await fill(library, done, n, tagged);
      done = n;
      keysAt[n] = await admin.dbsize();
      bytesPerEntryAt[n] = ((await usedMemory(admin)) - base) / n;
    }
    return {
      library: factory.name,
      tagged,
      oneEntryKeys,
      oneEntryBytes: oneEntryKeys.reduce((sum, k) => sum + k.bytes, 0),
      keysAt,
      bytesPerEntryAt,
    };
  } finally {
    await library.close();
    await admin.flushall('SYNC');
  }
}
