/**
 * The Redis backend's near-cache (`nearCache`) against real redis-servers: process A keeps
 * fresh hits in memory; another process (a second `Hermes` on its own connections, or a raw
 * client) changes them behind its back, and A must never serve a value it should not have.
 *
 * Every case first proves that A was serving from memory (a `hit` event with `source: 'near'`,
 * polled for, never assumed after a fixed sleep), so that no case passes with the near-cache off.
 *
 * The propagation allowance: an invalidation is acknowledged to B once Redis has run it, and
 * Redis writes the invalidation message to A's subscriber in the same event-loop pass as B's
 * reply, so on loopback the message is in A's socket before B hears back. The time from B's
 * acknowledgement to A having heard of the key (the backend's `changedSince`, polled between
 * event-loop turns) is measured in every case (`NEAR_VERBOSE=1` prints it): 0.02–0.7 ms, on a
 * 2-core machine at load average 9 with a busy loop beside the run (the eviction case, 1–13 ms,
 * counts two more round trips made after the eviction was seen). {@link ALLOWANCE_MS} (50 ms)
 * leaves a wide margin over that; A's checked reads start only after it.
 *
 * The Sentinel failover case is in test/cluster/near-cache-sentinel.spec.ts.
 */

import { expect } from 'chai';
import { Redis } from 'ioredis';
import { type CachedFunction, Hermes, type HermesError, type HitSource, type NearCacheStats, OptionError } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/backend/redis/index.js';
import { NearCache } from '../../src/backend/redis/near-cache.js';
import { EntryCodec, freshUntilOf } from '../../src/codec.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';
import { type GatedConnection, type GatedProxy, startGatedProxy } from '../helpers/gated-proxy.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** How long after an invalidation is acknowledged A may still serve the old value (see the module documentation). */
const ALLOWANCE_MS = 50;
/** The bounded poll after the allowance: this many reads… */
const CHECK_READS = 50;
/** …over about this long. */
const CHECK_SPAN_MS = 200;
/** Polls for a state of the near-cache (trusted again, a message heard) give up after this long. */
const POLL_BOUND_MS = 15_000;

let prefixCounter = 0;
const newPrefix = (name: string): string => `${name}${process.pid}x${++prefixCounter}`;

const verbose = process.env.NEAR_VERBOSE === '1';
/** Measured delays from an acknowledged invalidation to A counting it, by case (ms). */
const propagation: Array<{ what: string; ms: number }> = [];

/** The value of item `id` at `version`: what the wrapped functions return. */
const valueOf = (id: number, version: number): string => `item ${id} v${version}`;

/** Polls `check` (between event-loop turns, at most every `everyMs`) until it holds; the elapsed ms. */
async function until(what: string, check: () => boolean | Promise<boolean>, boundMs = POLL_BOUND_MS, everyMs = 0): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > boundMs) throw new Error(`timed out after ${boundMs} ms waiting for ${what}`);
    if (everyMs > 0) await sleep(everyMs);
    else await nextTurn();
  }
  return performance.now() - started;
}

/** One process' cache on the shared data. */
interface Side {
  readonly cache: Hermes<RedisBackendOptions>;
  readonly backend: RedisBackend;
  /** `item(id)`: the current version of `id`, tagged `catalog`. */
  readonly item: CachedFunction<[number], Promise<string>>;
  /** Every hit, in order. */
  readonly hits: Array<{ key: string; source: HitSource }>;
  readonly errors: HermesError[];
  /** The near-cache's counters (throws without one). */
  near(): NearCacheStats;
  /** How many times `item` computed. */
  computations(): number;
}

/** What one read of `item(id)` returned and where from: the near-cache, Redis, or computed. */
interface Read {
  value: string;
  source: HitSource | 'miss';
  /** `Date.now()` when the call was made. */
  startedAt: number;
}

async function read(side: Side, id: number): Promise<Read> {
  const before = side.hits.length;
  const key = side.item.key(id);
  const startedAt = Date.now();
  const value = await side.item(id);
  const hit = side.hits.slice(before).find((event) => event.key === key);
  return { value, source: hit?.source ?? 'miss', startedAt };
}

/** Reads `item(id)` in A until it is a near hit (memory trusted and filled); its value. */
async function untilNear(side: Side, id: number, boundMs = POLL_BOUND_MS): Promise<string> {
  let last: Read | undefined;
  await until(
    `a near hit of item ${id}`,
    async () => {
      last = await read(side, id);
      return last.source === 'near';
    },
    boundMs,
    5,
  );
  return (last as Read).value;
}

/**
 * {@link CHECK_READS} reads of `item(id)` over about {@link CHECK_SPAN_MS}: every one must be
 * `expected`. Returns how many were near hits.
 */
async function expectOnly(side: Side, id: number, expected: string, what: string): Promise<number> {
  let near = 0;
  for (let i = 0; i < CHECK_READS; i++) {
    const result = await read(side, id);
    expect(result.value, `${what}: read ${i + 1} of ${CHECK_READS} (${result.source})`).to.equal(expected);
    if (result.source === 'near') near++;
    await sleep(CHECK_SPAN_MS / CHECK_READS);
  }
  return near;
}

/**
 * After an invalidation acknowledged at `ackedAt` (`performance.now()`): measures when A
 * counted it (`heard`, polled without sleeping; not asserted — the reads are the assertion),
 * then waits out the rest of {@link ALLOWANCE_MS}.
 */
async function allowance(what: string, ackedAt: number, heard: () => boolean): Promise<void> {
  const ms = await until(`A to hear of ${what}`, heard, 2000).then(
    () => performance.now() - ackedAt,
    () => Number.POSITIVE_INFINITY,
  );
  propagation.push({ what, ms });
  const left = ALLOWANCE_MS - (performance.now() - ackedAt);
  if (left > 0) await sleep(left);
}

/**
 * Whether A has heard, since this call, of a change of `key` (an entry key or a tag key) —
 * or has emptied its memory meanwhile: the backend's own bookkeeping, which other messages
 * (such as the lock keys') do not satisfy.
 */
function watch(side: Side, key: string): () => boolean {
  const backend = side.backend;
  const mark = (backend.changeMark as () => number)();
  const ref = { prefix: '', id: '', entryKey: key, lockKey: '' };
  return () => (backend.changedSince as NonNullable<RedisBackend['changedSince']>)(ref, [], mark);
}

/** A's subscriber connection through `proxy`: the open one that is not its data connection. */
function subscriberConnection(proxy: GatedProxy, side: Side): GatedConnection {
  const dataPort = (side.backend.client as Redis).stream.localPort;
  const subscribers = proxy.connections.filter((c) => c.open && c.clientPort !== dataPort);
  expect(subscribers, 'the subscriber connection in the proxy').to.have.length(1);
  return subscribers[0] as GatedConnection;
}

/** The `CLIENT LIST` lines of the connections named `name`, as maps of their fields. */
async function clientsNamed(admin: Redis, name: string): Promise<Array<Map<string, string>>> {
  const list = (await admin.client('LIST')) as string;
  return list
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => new Map(line.trim().split(' ').map((field) => {
      const at = field.indexOf('=');
      return [field.slice(0, at), field.slice(at + 1)] as [string, string];
    })))
    .filter((fields) => fields.get('name') === name);
}

/**
 * A's two connections on the server, as `CLIENT LIST` shows them: the subscriber (flags `P`,
 * RESP2) and the data connection (flags `t`, tracking redirected to the subscriber).
 */
async function connectionsOf(admin: Redis, name: string): Promise<{ subscriber: string; data: string }> {
  const clients = await clientsNamed(admin, name);
  const subscriber = clients.find((c) => (c.get('flags') ?? '').includes('P') && c.get('resp') === '2');
  expect(subscriber, `the subscriber among ${JSON.stringify(clients.map((c) => Object.fromEntries(c)))}`).to.not.equal(undefined);
  const subscriberId = subscriber?.get('id') ?? '';
  const data = clients.find((c) => (c.get('flags') ?? '').includes('t') && c.get('redir') === subscriberId);
  expect(data, `the tracking data connection among ${JSON.stringify(clients.map((c) => Object.fromEntries(c)))}`).to.not.equal(undefined);
  return { subscriber: subscriberId, data: data?.get('id') ?? '' };
}

describe('Redis near-cache against real servers', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let admin: Redis;
  const closers: (() => Promise<unknown>)[] = [];

  before(async function () {
    server = await startRedisServer();
    admin = new Redis({ host: server.host, port: server.port, lazyConnect: true });
    await admin.connect();
  });

  after(async function () {
    admin.disconnect();
    await server.stop();
    if (verbose && propagation.length > 0) {
      for (const { what, ms } of propagation) console.log(`      acknowledged -> heard by A: ${ms.toFixed(2)} ms (${what})`);
    }
  });

  afterEach(async function () {
    for (const close of closers.splice(0).reverse()) await close();
  });

  /** A raw client on `target`, closed after the test. */
  async function rawClient(target: { host: string; port: number }): Promise<Redis> {
    const client = new Redis({ host: target.host, port: target.port, lazyConnect: true });
    client.on('error', () => undefined); // a restarted server: it reconnects
    closers.push(async () => {
      client.disconnect();
    });
    await client.connect();
    return client;
  }

  /**
   * Processes sharing one prefix and one source of truth (a version per id; `bump` makes a
   * newer one). `side(options)` opens a process on `target` (default: the shared server).
   */
  function world(options: { ttl?: number; grace?: number } = {}): {
    prefix: string;
    bump: (id: number) => string;
    current: (id: number) => string;
    side: (extra?: Partial<RedisBackendOptions>, target?: { host: string; port: number }) => Side;
  } {
    const prefix = newPrefix('near');
    const versions = new Map<number, number>();
    return {
      prefix,
      bump: (id) => {
        const version = (versions.get(id) ?? 0) + 1;
        versions.set(id, version);
        return valueOf(id, version);
      },
      current: (id) => valueOf(id, versions.get(id) ?? 0),
      side: (extra = {}, target = server) => {
        const cache = new Hermes(RedisBackend, {
          host: target.host,
          port: target.port,
          prefix,
          ttl: options.ttl ?? 60,
          grace: options.grace ?? 0,
          jitter: 0,
          ...extra,
        });
        closers.push(() => cache.close());
        const hits: Side['hits'] = [];
        const errors: HermesError[] = [];
        cache.on('hit', (event) => hits.push({ key: event.key, source: event.source }));
        cache.on('error', (error) => errors.push(error));
        let computations = 0;
        const item = cache.wrap(
          async (id: number) => {
            computations++;
            return valueOf(id, versions.get(id) ?? 0);
          },
          { name: 'item', tags: ['catalog'] },
        );
        return {
          cache,
          backend: cache.backend as RedisBackend,
          item,
          hits,
          errors,
          near: () => {
            const near = cache.stats().near;
            if (near === undefined) throw new Error('no near-cache stats');
            return near;
          },
          computations: () => computations,
        };
      },
    };
  }

  describe('invalidations by another process', function () {
    it('by entry: B invalidate(args)', async function () {
      const w = world();
      const a = w.side({ nearCache: true });
      const b = w.side();
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      const heard = watch(a, a.item.key(1));
      const fresh = w.bump(1);
      await b.item.invalidate(1);
      await allowance('invalidate(args)', performance.now(), heard);
      await expectOnly(a, 1, fresh, 'after B invalidate(1)');
      expect(await untilNear(a, 1), 'served from memory again, new').to.equal(fresh);
      expect(a.errors).to.deep.equal([]);
    });

    it('by tag: B clean([tag])', async function () {
      const w = world();
      const a = w.side({ nearCache: true });
      const b = w.side();
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      expect(await untilNear(a, 2)).to.equal(valueOf(2, 0));
      const heard = watch(a, a.cache.keyspace.tagKey('catalog'));
      const fresh1 = w.bump(1);
      const fresh2 = w.bump(2);
      await b.cache.clean(['catalog']);
      await allowance("clean(['catalog'])", performance.now(), heard);
      await expectOnly(a, 1, fresh1, 'item 1 after B clean([catalog])');
      await expectOnly(a, 2, fresh2, 'item 2 after B clean([catalog])');
      expect(await untilNear(a, 1)).to.equal(fresh1);
    });

    it('many(): near hits served from memory, the rest read in one batch; after B clean([tag]) nothing old is served', async function () {
      const w = world();
      const a = w.side({ nearCache: true });
      const b = w.side();
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      expect(await untilNear(a, 2)).to.equal(valueOf(2, 0));
      const hits = a.hits.length;
      expect(await a.item.many([[1], [3], [2]])).to.deep.equal([valueOf(1, 0), valueOf(3, 0), valueOf(2, 0)]);
      expect(a.hits.slice(hits).map((hit) => hit.source)).to.deep.equal(['near', 'near']); // 3 was computed
      const heard = watch(a, a.cache.keyspace.tagKey('catalog'));
      const fresh = [1, 2, 3].map((id) => w.bump(id));
      await b.cache.clean(['catalog']);
      await allowance("clean(['catalog'])", performance.now(), heard);
      expect(await a.item.many([[1], [2], [3]])).to.deep.equal(fresh);
    });

    it("by a tag from a tags function: B clean(['item:1']) drops item 1 from A's memory, and item 2 stays there", async function () {
      const w = world();
      const a = w.side({ nearCache: true });
      const b = w.side();
      let computed = 0;
      const perItem = (side: Side): CachedFunction<[number], Promise<string>> =>
        side.cache.wrap(async (id: number) => {
          computed++;
          return w.current(id);
        }, { name: 'perItem', tags: (id) => [`item:${id}`] });
      const aItem = perItem(a);
      const bItem = perItem(b);
      /** One read of `aItem(id)` by A, and where it came from. */
      const readA = async (id: number): Promise<{ value: string; source: HitSource | 'miss' }> => {
        const before = a.hits.length;
        const value = await aItem(id);
        const hit = a.hits.slice(before).find((event) => event.key === aItem.key(id));
        return { value, source: hit?.source ?? 'miss' };
      };
      await until('near hits of items 1 and 2', async () => (await readA(1)).source === 'near' && (await readA(2)).source === 'near', POLL_BOUND_MS, 5);
      const heard = watch(a, a.cache.keyspace.tagKey('item:1'));
      const fresh1 = w.bump(1);
      w.bump(2); // item 2 changes too, but its tag is not cleaned: A may keep serving v0
      await b.cache.clean(['item:1']);
      await allowance("clean(['item:1'])", performance.now(), heard);
      for (let i = 0; i < CHECK_READS; i++) {
        expect((await readA(1)).value, `item 1, read ${i + 1}`).to.equal(fresh1);
        await sleep(CHECK_SPAN_MS / CHECK_READS);
      }
      expect(await readA(2)).to.deep.equal({ value: valueOf(2, 0), source: 'near' });
      expect(await bItem(1)).to.equal(fresh1);
      expect(computed).to.equal(3); // items 1 and 2 by A, item 1 again after the clean
      expect(a.errors).to.deep.equal([]);
    });

    it('by tag, while A chains near hits without ever waiting for I/O: heard within a few event-loop turns', async function () {
      const w = world();
      const a = w.side({ nearCache: true });
      const b = w.side();
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      const fresh = w.bump(1);
      // B's clean is sent now; its acknowledgement and Redis' message to A can only be read when
      // A's event loop polls I/O. A's calls are near hits (microtasks): without the turn limit it
      // would serve the old value until its heartbeat lapsed (2 × 1000 ms).
      let acknowledged = 0;
      const cleaning = b.cache.clean(['catalog']).then(() => {
        acknowledged = performance.now();
      });
      const started = performance.now();
      let value = await a.item(1);
      while (value !== fresh && performance.now() - started < 3000) value = await a.item(1);
      const tookMs = performance.now() - started;
      await cleaning;
      expect(value, 'the new value, reached by the chained calls').to.equal(fresh);
      expect(tookMs, 'chained calls see the clean within a few turns of 5 ms').to.be.below(500);
      if (verbose) console.log(`      chained: new value after ${tookMs.toFixed(1)} ms, ${(performance.now() - acknowledged).toFixed(1)} ms after B's acknowledgement was read`);
    });

    it('by clean() from B', async function () {
      const w = world();
      const a = w.side({ nearCache: true });
      const b = w.side();
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      const heard = watch(a, a.item.key(1));
      const fresh = w.bump(1);
      await b.cache.clean();
      await allowance('clean()', performance.now(), heard);
      await expectOnly(a, 1, fresh, 'after B clean()');
      expect(await untilNear(a, 1)).to.equal(fresh);
    });

    it('by B writing a newer value (invalidate, then compute it): A serves the new one', async function () {
      const w = world();
      const a = w.side({ nearCache: true });
      const b = w.side();
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      const heard = watch(a, a.item.key(1));
      const fresh = w.bump(1);
      await b.item.invalidate(1);
      expect(await b.item(1)).to.equal(fresh);
      const computed = a.computations();
      await allowance('invalidate + write', performance.now(), heard);
      await expectOnly(a, 1, fresh, "after B's new value");
      expect(a.computations(), "A read B's value, did not compute").to.equal(computed);
      expect(await untilNear(a, 1)).to.equal(fresh);
    });

    // With no grace, Redis expires the key at the fresh-until time and tells A; with grace, the
    // key outlives it (stale, for the lock holder to recompute) and only A's own clock check stops it.
    for (const grace of [0, 60]) {
      it(`by TTL expiry (grace ${grace} s): never served past the entry’s fresh-until time`, async function () {
        const w = world({ ttl: 2, grace });
        const a = w.side({ nearCache: true });
        expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
        const stored = await admin.getBuffer(a.item.key(1));
        expect(stored).to.not.equal(null);
        const freshUntil = freshUntilOf(stored as Buffer) as number;
        expect(freshUntil).to.be.a('number');
        // The source changes without an invalidation: the old value may be served until it expires, not after.
        const fresh = w.bump(1);
        const MARGIN_MS = 20; // the call's timestamp is taken before the near-cache's own clock check
        let nearBeforeExpiry = 0;
        const late: Read[] = [];
        while (Date.now() <= freshUntil + MARGIN_MS + CHECK_SPAN_MS) {
          const result = await read(a, 1);
          if (result.source === 'near' && result.value === valueOf(1, 0)) nearBeforeExpiry++;
          if (result.value !== fresh && result.startedAt > freshUntil + MARGIN_MS) late.push(result);
          await sleep(5);
        }
        expect(late, 'old values from calls made after the expiry').to.deep.equal([]);
        expect(nearBeforeExpiry, 'near hits of the old value before it expired').to.be.greaterThan(0);
        await expectOnly(a, 1, fresh, 'after expiry');
        expect(await untilNear(a, 1)).to.equal(fresh);
      });
    }

    it('by server eviction (maxmemory, allkeys-lru): the evicted entry is not served', async function () {
      const own = await startRedisServer();
      closers.push(() => own.stop());
      const ownAdmin = await rawClient(own);
      const w = world();
      const a = w.side({ nearCache: true }, own);
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      const entryKey = a.item.key(1);
      const fresh = w.bump(1); // no invalidation: only the eviction tells A
      const heard = watch(a, entryKey);
      const used = Number(/used_memory:(\d+)/.exec(await ownAdmin.info('memory'))?.[1]);
      await ownAdmin.config('SET', 'maxmemory-policy', 'allkeys-lru');
      await ownAdmin.config('SET', 'maxmemory', String(used + 2 * 1024 * 1024));
      const junk = Buffer.alloc(10 * 1024, 'j');
      let written = 0;
      while ((await ownAdmin.exists(entryKey)) === 1) {
        expect(written, 'junk written without evicting the entry').to.be.below(50_000);
        const batch = ownAdmin.pipeline();
        for (let i = 0; i < 100; i++) batch.set(`junk:${written++}`, junk);
        await batch.exec();
      }
      const ackedAt = performance.now();
      expect(await ownAdmin.exists(entryKey), 'the entry key is gone on the server').to.equal(0);
      await ownAdmin.config('SET', 'maxmemory', '0'); // (no FLUSHDB of the junk: it would tell A to empty everything)
      await allowance('eviction', ackedAt, heard);
      await expectOnly(a, 1, fresh, 'after eviction');
      expect(await untilNear(a, 1)).to.equal(fresh);
    });

    it('by FLUSHALL: the near-cache is emptied', async function () {
      const w = world();
      const a = w.side({ nearCache: true });
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      expect(await untilNear(a, 2)).to.equal(valueOf(2, 0));
      const flushes = a.near().flushes;
      const fresh1 = w.bump(1);
      const fresh2 = w.bump(2);
      await admin.flushall();
      await allowance('FLUSHALL', performance.now(), () => a.near().flushes > flushes);
      expect(a.near().entries).to.equal(0);
      await expectOnly(a, 1, fresh1, 'item 1 after FLUSHALL');
      await expectOnly(a, 2, fresh2, 'item 2 after FLUSHALL');
      expect(await untilNear(a, 1)).to.equal(fresh1);
    });
  });

  describe('a read in flight when its key changes', function () {
    let proxy: GatedProxy;

    beforeEach(async function () {
      proxy = await startGatedProxy(server.port);
      closers.push(() => proxy.close());
    });

    /** A's data connection through the proxy (the one whose client port is the data client's). */
    function dataConnection(side: Side): GatedConnection {
      const port = (side.backend.client as Redis).stream.localPort;
      const found = proxy.connections.find((c) => c.open && c.clientPort === port);
      expect(found, 'the data connection in the proxy').to.not.equal(undefined);
      return found as GatedConnection;
    }

    const changes: Array<{ what: string; key: (side: Side) => string; change: (side: Side) => Promise<void> }> = [
      { what: 'invalidate(args)', key: (side) => side.item.key(1), change: (side) => side.item.invalidate(1) },
      { what: "clean(['catalog'])", key: (side) => side.cache.keyspace.tagKey('catalog'), change: (side) => side.cache.clean(['catalog']) },
      { what: 'clean()', key: (side) => side.item.key(1), change: (side) => side.cache.clean() },
    ];
    for (const { what, key, change } of changes) it(`B's ${what} heard before the reply: the reply is returned but not kept`, async function () {
      const w = world();
      const a = w.side({ nearCache: true }, { host: '127.0.0.1', port: proxy.port });
      const b = w.side();
      await untilNear(a, 99); // tracking established
      expect(await b.item(1)).to.equal(valueOf(1, 0)); // in Redis, not in A's memory
      const data = dataConnection(a);
      const sent = data.bytesFromClient;
      const fills = a.near().fills;
      data.holdReplies();
      const inFlight = read(a, 1);
      // Redis has run the read (and tracks the key for A): its reply waits in the proxy.
      await until('the read to reach Redis and its reply the proxy', () => data.bytesFromClient > sent && data.heldFromServer > 0);
      const fresh = w.bump(1);
      const heard = watch(a, key(a));
      await change(b);
      await until('A to hear of the invalidation', heard);
      data.release();
      const first = await inFlight;
      // Read before the invalidation: returning the old value is linearizable, keeping it is not.
      expect(first).to.include({ value: valueOf(1, 0), source: 'backend' });
      expect(a.near().fills, 'fills after the late reply').to.equal(fills);
      const next = await read(a, 1);
      expect(next.value, `the next read (${next.source})`).to.equal(fresh);
      expect(next.source).to.not.equal('near');
      expect(await untilNear(a, 1)).to.equal(fresh);
    });

    it('the same reply, with no invalidation meanwhile, is kept (the hold itself does not prevent fills)', async function () {
      const w = world();
      const a = w.side({ nearCache: true }, { host: '127.0.0.1', port: proxy.port });
      const b = w.side();
      await untilNear(a, 99);
      expect(await b.item(1)).to.equal(valueOf(1, 0));
      const data = dataConnection(a);
      const sent = data.bytesFromClient;
      const fills = a.near().fills;
      data.holdReplies();
      const inFlight = read(a, 1);
      await until('the reply in the proxy', () => data.bytesFromClient > sent && data.heldFromServer > 0);
      await sleep(20);
      data.release();
      expect(await inFlight).to.include({ value: valueOf(1, 0), source: 'backend' });
      expect(a.near().fills).to.equal(fills + 1);
      expect(await read(a, 1)).to.include({ value: valueOf(1, 0), source: 'near' });
    });
  });

  describe("A's own invalidations", function () {
    it('invalidate(args), clean([tag]) and clean() resolve and the very next call is new — even with Redis’ message late', async function () {
      // A's subscriber goes through a proxy that holds Redis' messages back during each
      // invalidation: A must not need them for its own changes.
      const proxy = await startGatedProxy(server.port);
      closers.push(() => proxy.close());
      const w = world();
      const a = w.side({ nearCache: true }, { host: '127.0.0.1', port: proxy.port });
      const operations: Array<[string, () => Promise<void>]> = [
        ['invalidate(1)', () => a.item.invalidate(1)],
        ["clean(['catalog'])", () => a.cache.clean(['catalog'])],
        ['clean()', () => a.cache.clean()],
      ];
      for (const [what, operation] of operations) {
        expect(await untilNear(a, 1)).to.not.equal(w.bump(1));
        const fresh = w.current(1);
        const subscriber = subscriberConnection(proxy, a);
        subscriber.holdReplies();
        await operation();
        const next = await read(a, 1);
        subscriber.release();
        expect(next.value, `the call right after ${what} (${next.source})`).to.equal(fresh);
        expect(await untilNear(a, 1), `after ${what}`).to.equal(fresh);
      }
    });
  });

  describe('connection faults', function () {
    /**
     * Kills one of A's connections and, in the same transaction, deletes the entry behind A's
     * back: Redis runs the deletion with A's subscriber (or tracking connection) gone, so no
     * invalidation message can ever reach A. A must empty its memory, bypass it while it
     * re-establishes tracking, then serve again — the new value.
     */
    async function killAndChange(which: 'subscriber' | 'data'): Promise<void> {
      const w = world();
      const name = `${w.prefix}-a`;
      const a = w.side({ nearCache: true, connectionName: name });
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      const ids = await connectionsOf(admin, name);
      const before = a.near();
      const fresh = w.bump(1);
      const replies = (await admin.multi().client('KILL', 'ID', ids[which]).del(a.item.key(1)).exec()) ?? [];
      expect(replies.map(([error, reply]) => error ?? reply)).to.deep.equal([1, 1]);
      await until('the near-cache to be emptied', () => a.near().flushes > before.flushes);
      expect(a.near().entries).to.equal(0);
      // At once (same event-loop turn as the flush was seen): tracking is not back yet.
      const during = await read(a, 1);
      expect(during.value).to.equal(fresh);
      expect(during.source).to.not.equal('near');
      expect(a.near().bypassed, 'reads bypassed while re-establishing').to.be.greaterThan(before.bypassed);
      expect(await untilNear(a, 1), 'served from memory again').to.equal(fresh);
      const after = await connectionsOf(admin, name);
      expect(after[which], `a new ${which} connection`).to.not.equal(ids[which]);
      await expectOnly(a, 1, fresh, `after the ${which} connection was killed`);
      // And invalidations work on the new connections.
      const newer = w.bump(1);
      const b = w.side();
      const heard = watch(a, a.item.key(1));
      await b.item.invalidate(1);
      await allowance(`invalidate after a new ${which} connection`, performance.now(), heard);
      await expectOnly(a, 1, newer, `invalidation after the ${which} connection came back`);
    }

    it("CLIENT KILL of A's subscriber connection", async function () {
      await killAndChange('subscriber');
    });

    it("CLIENT KILL of A's data connection", async function () {
      await killAndChange('data');
    });

    it('a server restart on the same port', async function () {
      const own = await startRedisServer();
      closers.push(() => own.stop());
      const ownAdmin = await rawClient(own);
      const w = world();
      const a = w.side({ nearCache: true }, own);
      const b = w.side({}, own);
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      const before = a.near();
      const fresh = w.bump(1); // the restarted server is empty: the old value exists nowhere
      // A reads all along, every 10 ms.
      let reading = true;
      const results: Read[] = [];
      const reader = (async () => {
        while (reading) {
          results.push(await read(a, 1));
          await sleep(10);
        }
      })();
      try {
        await own.restart();
        const restartedAt = Date.now();
        // B stores the new value as soon as it can: possibly before A's tracking is back.
        await until('B to store the new value on the restarted server', async () => (await b.item(1)) === fresh && (await ownAdmin.exists(a.item.key(1))) === 1, POLL_BOUND_MS, 20);
        await until('near hits again after the restart', () => results.at(-1)?.source === 'near', POLL_BOUND_MS, 5);
        expect(results.filter((r) => r.startedAt >= restartedAt && r.value !== fresh), 'old values after the restart').to.deep.equal([]);
      } finally {
        reading = false;
        await reader;
      }
      const after = a.near();
      expect(after.flushes, 'flushes').to.be.greaterThan(before.flushes);
      expect(after.bypassed, 'reads bypassed while re-establishing').to.be.greaterThan(before.bypassed);
      await expectOnly(a, 1, fresh, 'after the restart');
    });

    it('a silent subscriber (no FIN): memory stops serving within 2 × heartbeatMs, then tracking comes back', async function () {
      const HEARTBEAT_MS = 100;
      const MARGIN_MS = 25; // between the near-cache's clock check and the call's timestamp
      const proxy = await startGatedProxy(server.port);
      closers.push(() => proxy.close());
      const w = world();
      const a = w.side({ nearCache: { heartbeatMs: HEARTBEAT_MS } }, { host: '127.0.0.1', port: proxy.port });
      const b = w.side();
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      const subscriber = subscriberConnection(proxy, a);
      const { flushes, bypassed } = a.near();
      subscriber.freeze();
      // Every ping answered before the freeze was sent before this instant.
      const frozenAt = Date.now();
      const bound = frozenAt + 2 * HEARTBEAT_MS + MARGIN_MS;
      const fresh = w.bump(1);
      await b.item.invalidate(1); // its message is stuck in the frozen connection
      const results: Read[] = [];
      while (Date.now() < bound + 300) {
        results.push(await read(a, 1));
        await sleep(5);
      }
      const lateOld = results.filter((r) => r.value !== fresh && r.startedAt >= bound);
      expect(lateOld, `old values after ${bound - frozenAt} ms of silence`).to.deep.equal([]);
      const lastOld = results.filter((r) => r.value !== fresh).at(-1);
      expect(lastOld?.source, 'the old value was served from memory during the silence').to.equal('near');
      if (verbose && lastOld !== undefined) console.log(`      last old value served ${lastOld.startedAt - frozenAt} ms after the freeze (bound ${bound - frozenAt} ms)`);
      expect(a.near().bypassed, 'reads bypassed once the trust lapsed').to.be.greaterThan(bypassed);
      // Two missed pings: A dropped the silent connection and re-established tracking on a new one.
      await until('the near-cache to be emptied', () => a.near().flushes > flushes);
      expect(await untilNear(a, 1), 'served from memory again, new').to.equal(fresh);
      await expectOnly(a, 1, fresh, 'after the silence');
    });
  });

  it('tracking-table-max-keys overflow: keys dropped from the table are dropped from memory', async function () {
    const own = await startRedisServer();
    closers.push(() => own.stop());
    const ownAdmin = await rawClient(own);
    await ownAdmin.config('SET', 'tracking-table-max-keys', '10');
    const w = world();
    const a = w.side({ nearCache: true }, own);
    const b = w.side({}, own);
    const IDS = 50;
    await untilNear(a, 999);
    const before = a.near();
    let near = 0;
    for (let id = 0; id < IDS; id++) {
      expect(await a.item(id)).to.equal(valueOf(id, 0)); // computed and written
      expect(await a.item(id)).to.equal(valueOf(id, 0)); // read back from Redis: filled, unless a key of it was evicted meanwhile
      if ((await read(a, id)).source === 'near') near++; // no request: the near-cache served it
    }
    // Each read made Redis evict keys from its 10-key table, telling A for each.
    expect(near, 'near hits').to.be.at.least(5);
    expect(a.near().invalidations - before.invalidations, 'keys named by invalidations').to.be.at.least(IDS);
    expect(a.near().entries, 'entries left in memory').to.be.at.most(12);
    const fresh = Array.from({ length: IDS }, (_, id) => w.bump(id));
    for (let id = 0; id < IDS; id++) await b.item.invalidate(id);
    await sleep(ALLOWANCE_MS);
    for (let id = 0; id < IDS; id++) expect((await read(a, id)).value, `item ${id}`).to.equal(fresh[id]);
    const tracking = await ownAdmin.info('stats');
    expect(Number(/tracking_total_keys:(\d+)/.exec(tracking)?.[1])).to.be.at.most(20);
  });

  describe('options', function () {
    it('bad nearCache values are OptionErrors naming nearCache', function () {
      const bad: unknown[] = ['yes', 1, null, [], { maxEntries: 0 }, { maxBytes: 10 }, { heartbeatMs: 1 }, { heartbeatMs: 1.5 }, { maxEntries: Number.NaN }, { size: 10 }];
      for (const value of bad) {
        let error: unknown;
        try {
          new RedisBackend({ lazyConnect: true, nearCache: value as RedisBackendOptions['nearCache'] });
        } catch (caught) {
          error = caught;
        }
        expect(error, JSON.stringify(value)).to.be.instanceOf(OptionError);
        expect((error as OptionError).option, JSON.stringify(value)).to.equal('nearCache');
      }
      for (const value of [true, false, undefined, {}, { maxEntries: 5, maxBytes: 4096, heartbeatMs: 50 }]) {
        const backend = new RedisBackend({ lazyConnect: true, nearCache: value });
        closers.push(() => backend.close());
      }
    });

    it('on a cluster (accepted since the cluster support): checked at construction the same way, no server needed', async function () {
      // (The brief asked for a refusal; main has since made the near-cache work on Redis Cluster.)
      const backend = new RedisBackend({ cluster: [{ host: '127.0.0.1', port: 1 }], nearCache: { heartbeatMs: 100 } });
      expect(backend.nearCacheStats()).to.include({ hits: 0, entries: 0 });
      await backend.close();
      expect(() => new RedisBackend({ cluster: [{ host: '127.0.0.1', port: 1 }], nearCache: { heartbeatMs: 0 } })).to.throw(OptionError, /nearCache/);
    });

    it('stats().near only with the option; hit events say where they came from', async function () {
      const w = world();
      const plain = w.side();
      expect(await plain.item(1)).to.equal(valueOf(1, 0));
      expect(await read(plain, 1)).to.include({ source: 'backend' });
      expect(plain.cache.stats()).to.not.have.property('near');
      const a = w.side({ nearCache: true });
      expect(await untilNear(a, 1)).to.equal(valueOf(1, 0));
      const stats = a.cache.stats();
      expect(stats.near).to.include.keys('hits', 'fills', 'invalidations', 'flushes', 'bypassed', 'entries', 'bytes');
      expect(stats.near?.hits).to.be.greaterThan(0);
      expect(stats.near?.entries).to.equal(1);
      expect(stats.hits, 'near hits are hits').to.be.at.least(stats.near?.hits ?? 0);
      expect(a.hits.filter((hit) => hit.source === 'near')).to.have.length(stats.near?.hits ?? -1);
      expect(plain.hits.every((hit) => hit.source === 'backend')).to.equal(true);
    });
  });

  it('the join window: a call made after A heard of a change does not join a call that read before it', async function () {
    const w = world();
    const a = w.side({ nearCache: true });
    const b = w.side();
    await untilNear(a, 99); // tracking established, so that A's next read is tracked
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let versions = 0;
    let computing = 0;
    const slow = a.cache.wrap(
      async (id: number) => {
        computing++;
        const value = valueOf(id, versions);
        if (value === valueOf(id, 0)) await gate; // the first computation waits, under the lock
        return value;
      },
      { name: 'slow', tags: ['catalog'] },
    );
    expect(a.near().entries, 'item 99, tagged catalog, in memory').to.equal(1);
    const first = slow(1);
    // The first call's read has reached Redis (a miss, the lock taken) and it computes.
    await until('the first call to compute', () => computing === 1);
    expect(await admin.exists(slow.key(1).replace(':entry:', ':lock:')), 'its lock').to.equal(1);
    versions = 1;
    await b.cache.clean(['catalog']);
    // A heard of the tag: item 99, which carries it, left its memory (other messages, such as
    // the lock key's, do not count).
    await until('A to hear of the clean', () => a.near().entries === 0);
    const second = slow(1);
    open();
    expect(await first, 'the first call, started before the clean').to.equal(valueOf(1, 0));
    expect(await second, 'a call made after A heard of the clean').to.equal(valueOf(1, 1));
    expect(computing).to.equal(2);
  });

  it('the join window with invalidate(args) while the entry is being computed: the deletion of its lock is heard', async function () {
    const w = world();
    const a = w.side({ nearCache: true });
    const b = w.side();
    await untilNear(a, 98);
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let versions = 0;
    let computing = 0;
    const compute = async (id: number): Promise<string> => {
      computing++;
      const value = valueOf(id, versions);
      if (value === valueOf(id, 0)) await gate; // the first computation waits, under the lock
      return value;
    };
    const slow = a.cache.wrap(compute, { name: 'slowinv' });
    const other = b.cache.wrap(compute, { name: 'slowinv' });
    const first = slow(1);
    await until('the first call to compute', () => computing === 1);
    const ref = a.cache.keyspace.refOf(slow.key(1));
    expect(await admin.exists(ref.lockKey), 'its lock').to.equal(1);
    const backend = a.backend;
    const mark = backend.changeMark?.() ?? -1;
    versions = 1;
    // The entry does not exist yet: deleting it tells nobody; deleting the lock does.
    await other.invalidate(1);
    await until('A to hear of the lock deletion', () => backend.changedSince?.(ref, [], mark) === true);
    const second = slow(1);
    open();
    expect(await first, 'the first call, started before the invalidation').to.equal(valueOf(1, 0));
    expect(await second, 'a call made after A heard of the invalidation').to.equal(valueOf(1, 1));
  });
});

describe('NearCache (memory only)', function () {
  const codec = new EntryCodec();
  /** The bytes of a fresh hit, fresh until `freshUntil`. */
  function hit(freshUntil = Date.now() + 60_000): Buffer {
    return Buffer.from(codec.encode({ tagHash: '0123456789abcdef', freshUntil, value: 'payload' }));
  }
  const SETTINGS = { maxEntries: 100, maxBytes: 1 << 20, heartbeatMs: 1000, liveValues: false };
  const TAGS = ['p:tag:a', 'p:tag:b'];

  function trusted(): NearCache {
    const cache = new NearCache(SETTINGS);
    cache.trust(Date.now() + 60_000, 1);
    return cache;
  }

  it('fills when nothing changed since the read was sent, and serves it', function () {
    const cache = trusted();
    const since = cache.seq;
    cache.fill('p:entry:x', TAGS, since, hit(), codec);
    expect(cache.get('p:entry:x', TAGS)).to.not.equal(undefined);
    expect(cache.stats()).to.include({ fills: 1, hits: 1, entries: 1 });
  });

  it('does not fill after a change of the entry key or of a tag key, heard after the read was sent', function () {
    for (const key of ['p:entry:x', 'p:tag:a', 'p:tag:b']) {
      const cache = trusted();
      const since = cache.seq;
      cache.invalidated([key]);
      expect(cache.changedSince('p:entry:x', TAGS, since), key).to.equal(true);
      cache.fill('p:entry:x', TAGS, since, hit(), codec);
      expect(cache.get('p:entry:x', TAGS), key).to.equal(undefined);
      expect(cache.stats().fills).to.equal(0);
      // A read sent after the change may fill.
      expect(cache.changedSince('p:entry:x', TAGS, cache.seq)).to.equal(false);
      cache.fill('p:entry:x', TAGS, cache.seq, hit(), codec);
      expect(cache.get('p:entry:x', TAGS)).to.not.equal(undefined);
    }
  });

  it('a change of another key does not prevent the fill', function () {
    const cache = trusted();
    const since = cache.seq;
    cache.invalidated(['p:entry:other', 'p:tag:c']);
    expect(cache.changedSince('p:entry:x', TAGS, since)).to.equal(false);
    cache.fill('p:entry:x', TAGS, since, hit(), codec);
    expect(cache.stats().fills).to.equal(1);
  });

  it('no fill across a flush, a loss of trust, or while untrusted', function () {
    let cache = trusted();
    let since = cache.seq;
    cache.flush();
    cache.fill('p:entry:x', TAGS, since, hit(), codec);
    expect(cache.stats().fills).to.equal(0);

    cache = trusted();
    since = cache.seq;
    cache.distrust();
    cache.trust(Date.now() + 60_000, 1);
    expect(cache.changedSince('p:entry:x', TAGS, since)).to.equal(true);
    cache.fill('p:entry:x', TAGS, since, hit(), codec);
    expect(cache.stats().fills).to.equal(0);

    cache = new NearCache(SETTINGS);
    cache.fill('p:entry:x', TAGS, cache.seq, hit(), codec);
    expect(cache.stats().fills).to.equal(0);
    expect(cache.get('p:entry:x', TAGS)).to.equal(undefined);
    expect(cache.stats().bypassed).to.equal(1);
  });

  it('an invalidated tag drops every entry carrying it; null empties everything', function () {
    const cache = trusted();
    cache.fill('p:entry:x', ['p:tag:a'], cache.seq, hit(), codec);
    cache.fill('p:entry:y', ['p:tag:a', 'p:tag:b'], cache.seq, hit(), codec);
    cache.fill('p:entry:z', ['p:tag:b'], cache.seq, hit(), codec);
    cache.invalidated(['p:tag:a']);
    expect(cache.get('p:entry:x', ['p:tag:a'])).to.equal(undefined);
    expect(cache.get('p:entry:y', ['p:tag:a', 'p:tag:b'])).to.equal(undefined);
    expect(cache.get('p:entry:z', ['p:tag:b'])).to.not.equal(undefined);
    cache.invalidated(null);
    expect(cache.get('p:entry:z', ['p:tag:b'])).to.equal(undefined);
    expect(cache.stats()).to.include({ entries: 0, flushes: 1 });
  });

  it('not served past the trust bound, nor past the fresh-until time (with the server clock ahead)', function () {
    const cache = new NearCache(SETTINGS);
    cache.trust(Date.now() - 1, 1);
    cache.fill('p:entry:x', TAGS, cache.seq, hit(), codec);
    expect(cache.get('p:entry:x', TAGS), 'trust expired').to.equal(undefined);
    cache.extend(Date.now() + 60_000);
    expect(cache.get('p:entry:x', TAGS), 'extended by a heartbeat').to.not.equal(undefined);

    const ahead = new NearCache(SETTINGS);
    ahead.trust(Date.now() + 60_000, 5_000); // the server's clock may be 5 s ahead
    ahead.fill('p:entry:x', TAGS, ahead.seq, hit(Date.now() + 2_000), codec);
    expect(ahead.get('p:entry:x', TAGS)).to.equal(undefined);
    ahead.fill('p:entry:y', TAGS, ahead.seq, hit(Date.now() + 10_000), codec);
    expect(ahead.get('p:entry:y', TAGS)).to.not.equal(undefined);
    expect(ahead.get('p:entry:y', ['p:tag:a']), 'other tags').to.equal(undefined);
  });
});
