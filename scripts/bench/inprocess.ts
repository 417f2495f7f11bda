/**
 * In-process hit cost: a hit through `wrap` on the MemoryBackend versus the floor of the same
 * work done by hand (an LRU get with a key made by JSON.stringify of the arguments).
 */
import { LRUCache } from 'lru-cache';
import { Hermes, MemoryBackend } from '../../src/index.js';

/** One row of the in-process table. */
export interface InProcessRow {
  readonly case: string;
  readonly nsPerCall: number;
  readonly ratio: number;
}

const KEYS = 1000;

async function timeAsync(calls: number, body: (i: number) => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) await body(i);
  return Number(process.hrtime.bigint() - start) / calls;
}

function timeSync(calls: number, body: (i: number) => unknown): number {
  const start = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < calls; i++) if (body(i) !== undefined) sink++;
  const ns = Number(process.hrtime.bigint() - start) / calls;
  if (sink < 0) console.log(sink);
  return ns;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

/** Runs the in-process benchmark: `rounds` measurements of `calls` calls each, medians. */
export async function benchInProcess(calls = 200_000, rounds = 7): Promise<InProcessRow[]> {
  // The floor: what a hand-written memo does on a hit.
  const lru = new LRUCache<string, number>({ max: 10_000 });
  const floorArgs: Array<[number, string]> = [];
  for (let i = 0; i < KEYS; i++) {
    floorArgs.push([i, 'user']);
    lru.set(JSON.stringify([i, 'user']), i * 2);
  }
  const floor = (i: number): unknown => {
    const args = floorArgs[i % KEYS] as [number, string];
    return lru.get(JSON.stringify(args));
  };

  const makeCache = (serialize: boolean, tags: string[] | ((id: number) => string[])) => {
    const cache = new Hermes(new MemoryBackend({ serialize, maxEntries: 10_000 }));
    return cache.wrap(async function lookup(id: number, kind: string) {
      return id * 2 + kind.length;
    }, { tags, name: 'lookup' });
  };
  const cases: Array<[string, (i: number) => Promise<unknown>]> = [];
  for (const [title, serialize, tags] of [
    ['hermes wrap hit (live values)', false, []],
    ['hermes wrap hit, 3 tags (live values)', false, ['a', 'b', 'c']],
    ['hermes wrap hit (serialize: true)', true, []],
    // A tag per call, from the arguments: the function, its list checked, one memo lookup.
    ['hermes wrap hit, tags function (1 tag per id, live values)', false, (id: number) => [`user:${id}`]],
  ] as const) {
    const fn = makeCache(serialize, typeof tags === 'function' ? tags : [...tags]);
    for (let i = 0; i < KEYS; i++) await fn(i, 'user');
    cases.push([title, (i) => fn(i % KEYS, 'user')]);
  }
  const floorAwaited = async (i: number): Promise<unknown> => floor(i);

  const results = new Map<string, number[]>();
  const record = (name: string, ns: number): void => {
    const list = results.get(name) ?? [];
    list.push(ns);
    results.set(name, list);
  };
  // Warm-up, then interleaved rounds so that machine noise hits every case alike.
  timeSync(calls, floor);
  await timeAsync(calls, floorAwaited);
  for (const [, body] of cases) await timeAsync(calls, body);
  for (let r = 0; r < rounds; r++) {
    record('floor: lru.get(JSON.stringify(args))', timeSync(calls, floor));
    record('floor, awaited (same work behind an await)', await timeAsync(calls, floorAwaited));
    for (const [name, body] of cases) record(name, await timeAsync(calls, body));
  }
  const floorNs = median(results.get('floor: lru.get(JSON.stringify(args))') ?? [1]);
  return [...results].map(([name, xs]) => ({ case: name, nsPerCall: median(xs), ratio: median(xs) / floorNs }));
}
