/**
 * One process of a chaos run, as a worker thread (`startLoad`): its own `Hermes` on the shared
 * Redis server (its own connections, in-flight calls and, with `nearCache`, near-cache), its
 * own event loop, and callers that read, bump and invalidate keys against the shared
 * {@link Truth}. It reports what it served:
 *
 * - `ownLate`: values older than an invalidation *this* process had acknowledged before the call
 *   started. Never allowed: a process' own invalidation is not subject to any window;
 * - `late`: values older than an invalidation *any* process had acknowledged before the call
 *   started, with how long after that acknowledgement the call started (its lag), by where the
 *   value came from: the near-cache, a call in flight it joined, or the backend;
 * - `lateAfterHeard` (near-cache processes): late values whose call started after this process
 *   had read, on its subscriber, an invalidation message naming the changed key (the entry's or
 *   a tag's) that arrived after the acknowledgement. Never allowed: once a process has heard of
 *   a change, nothing it holds or has in flight from before may serve a call that starts later.
 *   The messages are observed by a listener added to the subscriber connection (ioredis'
 *   `duplicate`, wrapped in the worker thread), called in the same `emit` as the backend's own.
 *
 * Used by `scripts/chaos.ts` (beside its own plain process) and `scripts/join-window.ts`.
 *
 * @module
 */

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { Hermes } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/backend/redis/index.js';
import { isOlder, type KeyRef, now, Truth, type Versions } from './truth.js';

/** Where a call's value came from. */
export type Source = 'near' | 'joined' | 'backend';

/** The keys of a run: untagged, tagged `['a']`, tagged `['a', 'b']` — function names `plain`, `one`, `two`. */
export interface KeyCounts {
  plain: number;
  one: number;
  two: number;
}

/** The groups in id order: ids 0… are `plain`, then `one`, then `two`. */
export const GROUPS = ['plain', 'one', 'two'] as const;
/** A group of keys: its wrapped function's name. */
export type Group = (typeof GROUPS)[number];

/** The key of `group` number `k`. */
export function keyOf(keys: KeyCounts, group: Group, k: number): KeyRef {
  const base = group === 'plain' ? 0 : group === 'one' ? keys.plain : keys.plain + keys.one;
  return { id: base + k, tags: group === 'plain' ? 0 : group === 'one' ? 1 : 2 };
}

/** The number of keys. */
export function keyTotal(keys: KeyCounts): number {
  return keys.plain + keys.one + keys.two;
}

/** What a load process is told. */
export interface LoadOptions {
  /** Its name in the report. */
  name: string;
  host: string;
  port: number;
  /** The `nearCache` option (`false`: a plain process). */
  nearCache: false | { heartbeatMs: number };
  keys: KeyCounts;
  /** Concurrent callers. */
  callers: number;
  /** Read and invalidate only the first this many untagged keys (hot keys: calls join one another often); 0: every key. */
  hotKeys: number;
  /** Each caller's share of operations that bump and invalidate a key instead of reading it. */
  invalidateShare: number;
  /** A separate invalidator loop: one invalidation every this many ms (0: none). */
  invalidateEveryMs: number;
  /** `clean(['a'])` or `clean(['b'])` every this many ms (0: none). */
  cleanEveryMs: number;
  /** The work a computation does, in ms (a timer). */
  workMs: number;
  /**
   * What each caller does between two calls: `'turn'`, wait for the event loop's next turn
   * (`setImmediate`), as calls started by I/O do; `'chained'`, nothing — a caller served by the
   * near-cache then chains calls in microtasks and the process reads no socket (no
   * invalidation message) until every caller waits for I/O; a number, sleep that many ms (a
   * process that is not saturated, as most are: its thread is woken by I/O, not queued behind
   * its own CPU use).
   */
  between: 'turn' | 'chained' | number;
}

/** The lags of late values, by source, and a few examples. */
export interface LateReads {
  near: number[];
  joined: number[];
  backend: number[];
  /**
   * Every late value: when the acknowledgement it lags was made ({@link now}), the lag, and how
   * late its caller's thread woke for it (its pause overran by this much: the thread could not
   * run, nor read a socket, meanwhile; 0 for callers that do not pause).
   */
  acks: [ackAt: number, lag: number, wokeLate: number][];
  examples: string[];
}

/** What a load process reports at the end. */
export interface LoadReport {
  name: string;
  near: boolean;
  calls: number;
  rejected: number;
  unhandled: number;
  /** Values older than this process' own acknowledged invalidation (never allowed). */
  ownLate: number;
  ownLateExamples: string[];
  /** Near-cache processes: late values whose call started after the process heard of the change (never allowed). */
  lateAfterHeard: number;
  lateAfterHeardExamples: string[];
  /** Near-cache processes: invalidation messages read by the subscriber (flushes included). */
  messages: number;
  /** This thread's event-loop delay during the run (p99, max, in ms): how late it could read a socket. */
  loopDelay: { p99: number; max: number };
  late: LateReads;
  /** Calls by source. */
  sources: Record<Source, number>;
  invalidations: number;
  cleans: number;
  retries: number;
  hits: number;
  misses: number;
  fallbacks: number;
  errors: number;
  /** `stats().near` at the end. */
  nearStats: { hits: number; fills: number; invalidations: number; flushes: number; bypassed: number } | undefined;
  /** Near hits per second of the run (from `go`; the last one may be shorter, up to `end`). */
  nearHitsPerSecond: number[];
}

/** Keeps the 5 examples of the largest lags in `examples` (each starting `… (source, N ms late)`). */
export function keepWorst(examples: string[], lag: number, example: string): void {
  const lagIn = (text: string): number => Number(/, ([\d.]+) ms late\)/.exec(text)?.[1] ?? 0);
  if (examples.length >= 5 && lag <= lagIn(examples[examples.length - 1] as string)) return;
  examples.push(example);
  examples.sort((x, y) => lagIn(y) - lagIn(x));
  examples.length = Math.min(examples.length, 5);
}

/** An empty {@link LateReads}. */
export function lateReads(): LateReads {
  return { near: [], joined: [], backend: [], acks: [], examples: [] };
}

/**
 * Tells where each call's value comes from: a near hit is reported (event `hit`, source
 * `near`) while the call is made; a joined call returns a promise already handed out.
 */
export class SourceProbe {
  #near = false;
  readonly #handedOut = new WeakSet<Promise<unknown>>();

  constructor(hermes: Hermes<RedisBackendOptions>) {
    hermes.on('hit', (event) => {
      if (event.source === 'near') this.#near = true;
    });
  }

  /** Makes the call; returns its promise and its source. */
  call<T>(make: () => Promise<T>): { promise: Promise<T>; source: Source } {
    this.#near = false;
    const promise = make();
    const source: Source = this.#near ? 'near' : this.#handedOut.has(promise) ? 'joined' : 'backend';
    this.#handedOut.add(promise);
    return { promise, source };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** When this thread's subscribers read invalidation messages: by key, and flushes (`null`). */
interface Heard {
  readonly byKey: Map<string, number[]>;
  readonly flushes: number[];
  count: number;
}

/**
 * Records every invalidation message read by a subscriber connection opened in this thread from
 * now on (the near-cache's, duplicated from the backend's client): a listener added when the
 * connection is made, so it runs in the same `emit` as the backend's, before it.
 */
function listenToInvalidations(): Heard {
  const heard: Heard = { byKey: new Map(), flushes: [], count: 0 };
  const duplicate = Redis.prototype.duplicate; // eslint-disable-line @typescript-eslint/unbound-method
  const listening = function (this: Redis, ...args: Parameters<Redis['duplicate']>): Redis {
    const connection: Redis = duplicate.apply(this, args) as Redis;
    connection.on('messageBuffer', (channel: Buffer, message: unknown) => {
      if (channel.toString('latin1') !== '__redis__:invalidate') return;
      const at = now();
      heard.count++;
      if (!Array.isArray(message)) {
        heard.flushes.push(at);
        return;
      }
      for (const key of message as Buffer[]) {
        const name = key.toString('utf8');
        let times = heard.byKey.get(name);
        if (times === undefined) heard.byKey.set(name, (times = []));
        times.push(at);
      }
    });
    return connection;
  };
  Redis.prototype.duplicate = listening as typeof duplicate;
  return heard;
}

/** The first time in ascending `times` after `after`; `Infinity` if none. */
function firstAfter(times: readonly number[] | undefined, after: number): number {
  if (times === undefined) return Infinity;
  let low = 0;
  let high = times.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((times[middle] as number) <= after) low = middle + 1;
    else high = middle;
  }
  return times[low] ?? Infinity;
}

/**
 * Runs one load process in this thread: opens its connections, resolves `ready`'s promise,
 * then runs from `go` until `end` (both {@link now} times) as given by `start`.
 */
export async function runLoad(options: LoadOptions, truth: Truth, ready: () => Promise<{ go: number; end: number }>): Promise<LoadReport> {
  const heard = options.nearCache === false ? undefined : listenToInvalidations();
  const hermes = new Hermes(RedisBackend, {
    host: options.host,
    port: options.port,
    prefix: 'chaos',
    ttl: 600,
    ...(options.nearCache === false ? {} : { nearCache: options.nearCache }),
  });
  let errors = 0;
  hermes.on('error', () => {
    errors++;
  });
  const probe = new SourceProbe(hermes);
  let end = Infinity;
  /** The start of the run ({@link now}), for the examples. */
  let goAt = 0;
  const { keys } = options;
  const fnOf = (group: Group) => async (k: number): Promise<Versions> => {
    const seen = truth.versionsOf(keyOf(keys, group, k));
    await sleep(options.workMs);
    return seen;
  };
  const functions = {
    plain: hermes.wrap(fnOf('plain'), { name: 'plain' }),
    one: hermes.wrap(fnOf('one'), { name: 'one', tags: ['a'] }),
    two: hermes.wrap(fnOf('two'), { name: 'two', tags: ['a', 'b'] }),
  };
  const tagKeys = new Map([
    [truth.tagA, hermes.keyspace.tagKey('a')],
    [truth.tagB, hermes.keyspace.tagKey('b')],
  ]);
  /** The Redis key of a key's entry or of a tag, by its index in the truth. */
  const redisKeyOf = (group: Group, k: number, id: number): string => tagKeys.get(id) ?? functions[group].key(k);
  const groups = GROUPS.filter((group) => keys[group] > 0);
  const pick = (): { group: Group; k: number; key: KeyRef } => {
    const group = options.hotKeys > 0 ? 'plain' : (groups[Math.floor(Math.random() * groups.length)] as Group);
    const k = Math.floor(Math.random() * (options.hotKeys > 0 ? Math.min(options.hotKeys, keys.plain) : keys[group]));
    return { group, k, key: keyOf(keys, group, k) };
  };

  /** This process' own floors: raised by its own acknowledged invalidations. */
  const own = new Int32Array(truth.keys + 2);
  const ownOf = (key: KeyRef): Versions => ({
    v: own[key.id] as number,
    a: key.tags >= 1 ? (own[truth.tagA] as number) : 0,
    b: key.tags >= 2 ? (own[truth.tagB] as number) : 0,
  });

  const report: LoadReport = {
    name: options.name,
    near: options.nearCache !== false,
    calls: 0,
    rejected: 0,
    unhandled: 0,
    ownLate: 0,
    ownLateExamples: [],
    lateAfterHeard: 0,
    lateAfterHeardExamples: [],
    messages: 0,
    loopDelay: { p99: 0, max: 0 },
    late: lateReads(),
    sources: { near: 0, joined: 0, backend: 0 },
    invalidations: 0,
    cleans: 0,
    retries: 0,
    hits: 0,
    misses: 0,
    fallbacks: 0,
    errors: 0,
    nearStats: undefined,
    nearHitsPerSecond: [],
  };
  const onUnhandled = (): void => {
    report.unhandled++;
  };
  process.on('unhandledRejection', onUnhandled);

  /** `wokeLate`: how much the caller's pause before this call overran (see {@link LateReads.acks}). */
  async function read(wokeLate: number): Promise<void> {
    const { group, k, key } = pick();
    const ownNeed = ownOf(key);
    const need = truth.floorsOf(key);
    const startedAt = now();
    const { promise, source } = probe.call(() => functions[group](k));
    let got: Versions;
    try {
      got = await promise;
    } catch {
      report.rejected++;
      return;
    } finally {
      report.calls++;
      report.sources[source]++;
    }
    if (isOlder(got, ownNeed)) {
      report.ownLate++;
      if (report.ownLateExamples.length < 5) report.ownLateExamples.push(`${group}:${k} (${source}) got ${JSON.stringify(got)}, needed ${JSON.stringify(ownNeed)}`);
    }
    if (isOlder(got, need)) {
      const lag = truth.lagOf(key, got, need, startedAt);
      report.late[source].push(lag);
      report.late.acks.push([startedAt - lag, lag, wokeLate]);
      keepWorst(report.late.examples, lag, `${group}:${k} (${source}, ${lag.toFixed(1)} ms late) at ${((startedAt - goAt) / 1000).toFixed(2)} s got ${JSON.stringify(got)}, needed ${JSON.stringify(need)}`);
      if (heard !== undefined) {
        // The first message naming a changed key after its acknowledgement (or a flush).
        let heardAt = Infinity;
        for (const [id, ackAt] of truth.acksOf(key, got, need, startedAt)) {
          heardAt = Math.min(heardAt, firstAfter(heard.byKey.get(redisKeyOf(group, k, id)), ackAt), firstAfter(heard.flushes, ackAt));
        }
        if (heardAt <= startedAt) {
          report.lateAfterHeard++;
          if (report.lateAfterHeardExamples.length < 5) {
            report.lateAfterHeardExamples.push(`${group}:${k} (${source}) started ${(startedAt - heardAt).toFixed(2)} ms after the message, ${lag.toFixed(1)} ms after the acknowledgement; got ${JSON.stringify(got)}, needed ${JSON.stringify(need)}`);
          }
        }
      }
    }
  }

  /** Bumps, then invalidates until it succeeds (retried through outages), then acknowledges. */
  async function invalidateOne(): Promise<void> {
    const { group, k, key } = pick();
    const version = truth.bump(key.id);
    while (now() < end + 5_000) {
      try {
        await functions[group].invalidate(k);
        const at = now();
        truth.acknowledge(key.id, version, at);
        if ((own[key.id] as number) < version) own[key.id] = version;
        report.invalidations++;
        return;
      } catch {
        report.retries++;
        await sleep(50);
      }
    }
  }

  async function cleanTag(tag: 'a' | 'b'): Promise<void> {
    const id = tag === 'a' ? truth.tagA : truth.tagB;
    const version = truth.bump(id);
    while (now() < end + 5_000) {
      try {
        await hermes.clean([tag]);
        truth.acknowledge(id, version, now());
        if ((own[id] as number) < version) own[id] = version;
        report.cleans++;
        return;
      } catch {
        report.retries++;
        await sleep(50);
      }
    }
  }

  async function caller(): Promise<void> {
    while (now() < end) {
      const pausedAt = now();
      let pause = 0;
      if (options.between === 'turn') await nextTurn();
      else if (typeof options.between === 'number') await sleep((pause = options.between));
      const wokeLate = options.between === 'chained' ? 0 : Math.max(0, now() - pausedAt - pause);
      if (Math.random() < options.invalidateShare) await invalidateOne();
      else await read(wokeLate);
    }
  }
  async function invalidator(): Promise<void> {
    while (now() < end) {
      await invalidateOne();
      await sleep(options.invalidateEveryMs);
    }
  }
  async function cleaner(): Promise<void> {
    let i = 0;
    while (now() < end) {
      await sleep(options.cleanEveryMs);
      await cleanTag(i++ % 3 === 2 ? 'b' : 'a');
    }
  }

  // Opens the connections (and, with the near-cache, tracking) before the start.
  await functions.plain(0).catch(() => undefined);
  const times = await ready();
  end = times.end;
  const go = times.go;
  goAt = go;
  const loopDelay = monitorEventLoopDelay({ resolution: 5 });
  loopDelay.enable();
  await sleep(Math.max(0, go - now()));
  let lastNearHits = hermes.stats().near?.hits ?? 0;
  const sample = (): void => {
    const hits = hermes.stats().near?.hits ?? 0;
    report.nearHitsPerSecond.push(hits - lastNearHits);
    lastNearHits = hits;
  };
  const sampler = setInterval(() => {
    if (now() < end) sample();
  }, 1_000);
  const lastSample = setTimeout(sample, Math.max(0, end - now()));
  try {
    await Promise.all([
      ...Array.from({ length: options.callers }, () => caller()),
      ...(options.invalidateEveryMs > 0 ? [invalidator()] : []),
      ...(options.cleanEveryMs > 0 ? [cleaner()] : []),
    ]);
  } finally {
    clearInterval(sampler);
    clearTimeout(lastSample);
    const stats = hermes.stats();
    report.hits = stats.hits;
    report.misses = stats.misses;
    report.fallbacks = stats.fallbacks;
    report.errors = errors;
    report.messages = heard?.count ?? 0;
    loopDelay.disable();
    report.loopDelay = { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
    if (stats.near !== undefined) {
      const { hits, fills, invalidations, flushes, bypassed } = stats.near;
      report.nearStats = { hits, fills, invalidations, flushes, bypassed };
    }
    await hermes.close();
    process.off('unhandledRejection', onUnhandled);
  }
  return report;
}

/** A load process running in a worker thread. */
export interface LoadWorker {
  /** Resolves once its connections are open. */
  readonly ready: Promise<void>;
  /** Tells it to run from `go` until `end` ({@link now} times). */
  start(go: number, end: number): void;
  /** Resolves with its report (rejects if the thread fails). */
  readonly report: Promise<LoadReport>;
  /** Stops the thread now. */
  terminate(): Promise<number>;
}

/** Starts a load process in a worker thread (loaded through tsx, as the script itself is). */
export function startLoad(options: LoadOptions, truth: Truth): LoadWorker {
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: { load: { options, keys: truth.keys, buffers: truth.buffers } } });
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    resolveReady = resolve;
  });
  const report = new Promise<LoadReport>((resolve, reject) => {
    worker.on('message', (message: { ready: true } | { report: LoadReport }) => {
      if ('ready' in message) resolveReady();
      else resolve(message.report);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      reject(new Error(`load worker ${options.name} exited (${code}) without a report`));
    });
  });
  return {
    ready: Promise.race([ready, report.then(() => undefined)]),
    start: (go, end) => {
      worker.postMessage({ go, end });
    },
    report,
    terminate: () => worker.terminate(),
  };
}

interface LoadWorkerData {
  load?: { options: LoadOptions; keys: number; buffers: Truth['buffers'] };
}

const data = (isMainThread ? undefined : workerData) as LoadWorkerData | undefined;
if (data?.load !== undefined && parentPort !== null) {
  const { options, keys, buffers } = data.load;
  const port = parentPort;
  const ready = (): Promise<{ go: number; end: number }> =>
    new Promise((resolve) => {
      port.once('message', resolve);
      port.postMessage({ ready: true });
    });
  runLoad(options, Truth.attach(keys, buffers), ready).then(
    (report) => {
      port.postMessage({ report });
    },
    (error: unknown) => {
      throw error;
    },
  );
}
