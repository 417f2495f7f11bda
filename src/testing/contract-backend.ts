/**
 * The direct Backend tier of the contract suite: each clause of the `Backend` contract
 * (`backend/backend.ts`) tested on the backend itself, without `Hermes` in between, so that a
 * backend that breaks a clause fails a test named after that clause instead of showing a
 * cache-level symptom. {@link registerBackendContract} registers it beside the tests that go
 * through `Hermes`; every backend that runs the contract suite runs this tier too.
 *
 * Every request the tests send is built by the small helpers of `backend-harness.ts`
 * ({@link entryRef}, {@link readRequest}, …): the only place that knows how a request names
 * its keys. Each clause group below is a function of its own; each `it` is one clause.
 *
 * @module
 */

import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { HEADER_LENGTH } from '../codec.js';
import { CorruptEntryError } from '../errors.js';
import type { EntryRef } from '../keys.js';
import { assertBelow, assertIncludes } from './assertions.js';
import { entryRef, Harness, invalidateEntry, readRequest, releaseLock, waitForLock } from './backend-harness.js';
import type { BackendContractOptions } from './contract.js';
import { registerEarlyBackendClauses } from './contract-early.js';

/** A wait that must end by a wake-up, not by this timeout. */
const LONG_WAIT_MS = 15_000;
/** The bound a woken wait must beat: far below {@link LONG_WAIT_MS}, lenient on a loaded machine. */
const WOKEN_WITHIN_MS = 5_000;
/** A tag hash no read ever reports: entries written with it never match. */
const FOREIGN_HASH = 'ffffffffffffffff';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Registers the direct Backend tier for one backend: one mocha test per clause of the
 * `Backend` contract. Called by {@link registerBackendContract}; backends need not call it.
 * @param options - the same options as the contract suite's
 */
export function registerBackendClauses(options: BackendContractOptions): void {
  describe(`Backend contract, clause by clause: ${options.name}`, function () {
    const h = new Harness();
    beforeEach(() => h.open(options));
    afterEach(() => h.close());
    readClauses(h);
    writeClauses(h);
    waitClauses(h);
    storeWideClauses(h);
    if (options.writeRaw) foreignBytesClauses(h, options.writeRaw.bind(options));
    registerEarlyBackendClauses(h);
  });
}

/** The clauses of reads: misses, locks, tag versions, stale and foreign entries. */
function readClauses(h: Harness): void {
  it('read of an absent entry: a miss; with a token it takes the lock, unless another token holds it', async function () {
    const ref = entryRef(h.keys, 'absent');
    const plain = await h.read(ref);
    assertIncludes(plain, { entry: undefined, locked: false, stale: false }, 'the reply');
    assert.match(plain.tagHash, /^[0-9a-f]{16}$/);
    assertIncludes(await h.read(ref, 'token-a'), { entry: undefined, locked: true, stale: false }, 'the reply');
    assertIncludes(await h.read(ref, 'token-b'), { entry: undefined, locked: false, stale: false }, 'the reply');
    assertIncludes(await h.read(ref, 'token-c', [], h.peer), { entry: undefined, locked: false, stale: false }, 'the reply');
  });

  it('read without a token never takes the lock', async function () {
    const ref = entryRef(h.keys, 'untokened');
    await h.read(ref);
    await h.read(ref, undefined, [h.keys.tagKey('t')]);
    assert.equal((await h.read(ref, 'token-a')).locked, true);
  });

  it('a missing tag version is created once: every read agrees on the tag hash until cleanTags', async function () {
    const ref = entryRef(h.keys, 'tagged');
    const tags = [h.keys.tagKey('a'), h.keys.tagKey('b')];
    const untagged = (await h.read(ref)).tagHash;
    // Two processes reading a tag that has no version yet, at the same time.
    const [first, second] = await Promise.all([h.read(ref, undefined, tags), h.read(ref, undefined, tags, h.peer)]);
    assert.equal(first?.tagHash, second?.tagHash);
    assert.notEqual(first?.tagHash, untagged);
    assert.equal((await h.read(ref, undefined, tags)).tagHash, first?.tagHash);
    assert.equal((await h.read(ref, undefined, tags, h.peer)).tagHash, first?.tagHash);
    await h.backend.cleanTags(h.keys.prefix, [h.keys.tagKey('b')]);
    const renewed = (await h.read(ref, undefined, tags)).tagHash;
    assert.notEqual(renewed, first?.tagHash);
    assert.equal((await h.read(ref, undefined, tags, h.peer)).tagHash, renewed);
  });

  it('stale: an entry past its fresh-until time but within its TTL reads as stale, and lockable', async function () {
    const ref = entryRef(h.keys, 'stale');
    const tags = [h.keys.tagKey('s')];
    const { tagHash } = await h.read(ref, undefined, tags);
    assert.equal(await h.write(ref, 'old', tagHash, undefined, Date.now() - 1000), true);
    const plain = await h.read(ref, undefined, tags);
    assertIncludes(plain, { tagHash, locked: false, stale: true }, 'the reply');
    assert.equal(h.value(plain), 'old');
    const refreshing = await h.read(ref, 'token-a', tags);
    assertIncludes(refreshing, { locked: true, stale: true }, 'the reply');
    assert.equal(h.value(refreshing), 'old');
    const other = await h.read(ref, 'token-b', tags, h.peer);
    assertIncludes(other, { locked: false, stale: true }, 'the reply');
    assert.equal(await h.write(ref, 'new', tagHash, 'token-a'), true);
    const fresh = await h.read(ref, 'token-b', tags, h.peer);
    assertIncludes(fresh, { locked: false, stale: false }, 'the reply');
    assert.equal(h.value(fresh), 'new');
    // A stale entry whose tag is cleaned is a miss, not a stale hit.
    assert.equal(await h.write(ref, 'old again', tagHash, undefined, Date.now() - 1000), true);
    await h.backend.cleanTags(h.keys.prefix, tags);
    assertIncludes(await h.read(ref, undefined, tags), { entry: undefined, stale: false }, 'the reply');
  });

  it('an entry written under another tag hash is a miss', async function () {
    const ref = entryRef(h.keys, 'foreign-hash');
    assert.equal(await h.write(ref, 'orphan', FOREIGN_HASH), true);
    assertIncludes(await h.read(ref, 'token-a'), { entry: undefined, locked: true, stale: false }, 'the reply');
  });

  it('the optional readSync answers as read does; failureDomain never throws', async function () {
    const ref = entryRef(h.keys, 'sync');
    assert.doesNotThrow(() => h.backend.failureDomain?.(ref));
    const domain: unknown = h.backend.failureDomain?.(ref);
    assert.ok(domain === undefined || typeof domain === 'string', `failureDomain returned ${inspect(domain)}, expected a string or undefined`);
    const readSync = h.backend.readSync?.bind(h.backend);
    if (readSync === undefined) return;
    const miss = readSync(readRequest(ref, [], 'token-a'));
    assertIncludes(miss, { entry: undefined, locked: true, stale: false, tagHash: (await h.read(ref)).tagHash }, 'the reply');
    assert.equal(await h.write(ref, 'sync', miss.tagHash, 'token-a'), true);
    const hit = readSync(readRequest(ref, []));
    assert.equal(h.value(hit), 'sync');
    assert.deepEqual(hit, await h.read(ref));
  });
}

/** The clauses of writes and releases: the lock token decides. */
function writeClauses(h: Harness): void {
  it('write with the lock token: true, the entry hits, the lock is released', async function () {
    const ref = entryRef(h.keys, 'locked-write');
    const tags = [h.keys.tagKey('w')];
    const miss = await h.read(ref, 'token-a', tags);
    assert.equal(miss.locked, true);
    assert.equal(await h.write(ref, { n: 1 }, miss.tagHash, 'token-a'), true);
    const hit = await h.read(ref, 'token-b', tags);
    assertIncludes(hit, { tagHash: miss.tagHash, locked: false, stale: false }, 'the reply');
    assert.deepEqual(h.value(hit), { n: 1 });
    assert.deepEqual(h.value(await h.read(ref, undefined, tags, h.peer)), { n: 1 });
    // Neither the write kept the lock nor the fresh hit with token-b took it: once the tag is
    // cleaned (the lock stays), a third token gets the lock.
    await h.backend.cleanTags(h.keys.prefix, tags);
    assertIncludes(await h.read(ref, 'token-c', tags), { entry: undefined, locked: true }, 'the reply');
  });

  it('write with a lock token refuses (false, nothing stored) once invalidate() removed the lock', async function () {
    const ref = entryRef(h.keys, 'invalidated');
    const miss = await h.read(ref, 'token-a');
    assert.equal(miss.locked, true);
    await invalidateEntry(h.backend, ref);
    assert.equal(await h.write(ref, 'late', miss.tagHash, 'token-a'), false);
    assert.equal((await h.read(ref)).entry, undefined);
    assert.equal((await h.read(ref, undefined, [], h.peer)).entry, undefined);
  });

  it('write with a lock token refuses (false, nothing stored) when another token holds the lock', async function () {
    const ref = entryRef(h.keys, 'taken-over');
    const first = await h.read(ref, 'token-a');
    assert.equal(first.locked, true);
    // A token that never held the lock.
    assert.equal(await h.write(ref, 'intruder', first.tagHash, 'token-x'), false);
    assert.equal((await h.read(ref)).entry, undefined);
    // The lock changes hands (as after an expiry): the former holder's write is refused.
    await releaseLock(h.backend, ref, 'token-a');
    assert.equal((await h.read(ref, 'token-b', [], h.peer)).locked, true);
    assert.equal(await h.write(ref, 'former holder', first.tagHash, 'token-a'), false);
    assert.equal((await h.read(ref)).entry, undefined);
    assert.equal(await h.write(ref, 'holder', first.tagHash, 'token-b'), true);
    assert.equal(h.value(await h.read(ref)), 'holder');
  });

  it('write without a token stores unconditionally and leaves a held lock alone', async function () {
    const free = entryRef(h.keys, 'free');
    const { tagHash } = await h.read(free);
    assert.equal(await h.write(free, 'no lock at all', tagHash), true);
    assert.equal(h.value(await h.read(free)), 'no lock at all');
    const held = entryRef(h.keys, 'held');
    assert.equal((await h.read(held, 'token-a')).locked, true);
    assert.equal(await h.write(held, 'beside the lock', tagHash), true);
    assert.equal(h.value(await h.read(held, undefined, [], h.peer)), 'beside the lock');
    // Still token-a's lock: its write is accepted.
    assert.equal(await h.write(held, 'holder', tagHash, 'token-a'), true);
    assert.equal(h.value(await h.read(held)), 'holder');
  });

  it('release with a foreign token leaves the lock; with the holder token it frees it', async function () {
    const ref = entryRef(h.keys, 'release');
    assert.equal((await h.read(ref, 'token-a')).locked, true);
    await releaseLock(h.backend, ref, 'token-b');
    await releaseLock(h.peer, ref, 'token-b');
    assert.equal((await h.read(ref, 'token-c')).locked, false);
    await releaseLock(h.peer, ref, 'token-a');
    assert.equal((await h.read(ref, 'token-c')).locked, true);
  });
}

/** The clauses of waits: woken by a release, a write, an invalidation; false on timeout and on close. */
function waitClauses(h: Harness): void {
  it('waitForRelease resolves true when the holder releases the lock', async function () {
    const ref = entryRef(h.keys, 'wait-release');
    assert.equal((await h.read(ref, 'token-a')).locked, true);
    assert.equal((await h.read(ref, 'token-b', [], h.peer)).locked, false);
    const started = Date.now();
    const waiting = waitForLock(h.peer, ref, LONG_WAIT_MS);
    await sleep(50);
    await releaseLock(h.backend, ref, 'token-a');
    assert.equal(await waiting, true);
    assertBelow(Date.now() - started, WOKEN_WITHIN_MS, 'ms until the wait ended');
  });

  it('waitForRelease resolves true when the holder writes the entry', async function () {
    const ref = entryRef(h.keys, 'wait-write');
    const miss = await h.read(ref, 'token-a');
    assert.equal(miss.locked, true);
    const started = Date.now();
    const waiting = waitForLock(h.peer, ref, LONG_WAIT_MS);
    await sleep(50);
    assert.equal(await h.write(ref, 'done', miss.tagHash, 'token-a'), true);
    assert.equal(await waiting, true);
    assertBelow(Date.now() - started, WOKEN_WITHIN_MS, 'ms until the wait ended');
    assert.equal(h.value(await h.read(ref, 'token-b', [], h.peer)), 'done');
  });

  it('waitForRelease resolves false on timeout when nobody releases', async function () {
    const ref = entryRef(h.keys, 'wait-timeout');
    assert.equal((await h.read(ref, 'token-a')).locked, true);
    assert.equal((await h.read(ref, 'token-b', [], h.peer)).locked, false);
    const started = Date.now();
    assert.equal(await waitForLock(h.peer, ref, 300), false);
    const waited = Date.now() - started;
    assert.ok(waited >= 250, `the 300 ms wait ended after ${waited} ms, expected at least 250`);
    assert.equal((await h.read(ref, 'token-b', [], h.peer)).locked, false); // still held
  });

  it('invalidate deletes the entry and its lock, and wakes the waiters', async function () {
    const ref = entryRef(h.keys, 'invalidate');
    const { tagHash } = await h.read(ref, 'token-a');
    assert.equal(await h.write(ref, 'cached', tagHash), true); // the lock stays token-a's
    const started = Date.now();
    const waiting = waitForLock(h.peer, ref, LONG_WAIT_MS);
    await sleep(50);
    await invalidateEntry(h.backend, ref);
    assert.equal(await waiting, true);
    assertBelow(Date.now() - started, WOKEN_WITHIN_MS, 'ms until the wait ended');
    assert.equal((await h.read(ref, undefined, [], h.peer)).entry, undefined);
    assert.equal((await h.read(ref, 'token-b')).locked, true);
    assert.equal(await h.write(ref, 'late', tagHash, 'token-a'), false);
  });

  it('close() resolves pending waits as timed out (false), and is idempotent', async function () {
    const ref = entryRef(h.keys, 'closing');
    assert.equal((await h.read(ref, 'token-a')).locked, true);
    assert.equal((await h.read(ref, 'token-b', [], h.peer)).locked, false);
    const started = Date.now();
    const waiting = waitForLock(h.peer, ref, LONG_WAIT_MS);
    await sleep(50);
    await h.peer.close();
    assert.equal(await waiting, false);
    assertBelow(Date.now() - started, WOKEN_WITHIN_MS, 'ms until the wait ended');
    await h.peer.close();
  });
}

/** The clauses of store-wide operations: cleanTags, clear, dump. */
function storeWideClauses(h: Harness): void {
  it('cleanTags invalidates every entry carrying a cleaned tag, and no other', async function () {
    const [a, b] = [h.keys.tagKey('a'), h.keys.tagKey('b')];
    const entries: [EntryRef, string[]][] = [
      [entryRef(h.keys, 'a'), [a]],
      [entryRef(h.keys, 'ab'), [a, b]],
      [entryRef(h.keys, 'b'), [b]],
      [entryRef(h.keys, 'none'), []],
    ];
    for (const [ref, tags] of entries) await h.store(ref, ref.entryKey, tags);
    const hits = async (): Promise<boolean[]> =>
      Promise.all(entries.map(async ([ref, tags]) => (await h.read(ref, undefined, tags, h.peer)).entry !== undefined));
    assert.deepEqual(await hits(), [true, true, true, true]);
    await h.backend.cleanTags(h.keys.prefix, [h.keys.tagKey('unused')]);
    assert.deepEqual(await hits(), [true, true, true, true]);
    await h.backend.cleanTags(h.keys.prefix, [a]);
    assert.deepEqual(await hits(), [false, false, true, true]);
  });

  it('clear(prefix) removes the entries and tags of that prefix, and nothing of another', async function () {
    const otherKeys = h.otherPrefix();
    const mine = entryRef(h.keys, 'mine');
    const theirs = entryRef(otherKeys, 'mine');
    const [tag, theirTag] = [h.keys.tagKey('t'), otherKeys.tagKey('t')];
    await h.store(mine, 'mine', [tag]);
    await h.store(theirs, 'theirs', [theirTag]);
    await h.backend.clear(h.keys.prefix);
    // Its keys, not the object: deepEqual would also compare prototypes, and a dump may have none.
    assert.deepEqual(Object.keys(await h.backend.dump(h.keys.prefix)), [], 'clear(prefix) left these keys');
    assert.equal((await h.read(mine, undefined, [tag])).entry, undefined);
    assert.equal((await h.read(mine, undefined, [tag], h.peer)).entry, undefined);
    assert.equal(h.value(await h.read(theirs, undefined, [theirTag])), 'theirs');
    const theirKeys = Object.keys(await h.backend.dump(otherKeys.prefix));
    for (const key of [theirs.entryKey, theirTag]) assert.ok(theirKeys.includes(key), `clear(prefix) removed ${key} of another prefix: ${inspect(theirKeys)}`);
  });

  it('clear(prefix) removes the locks of that prefix, and nothing of another', async function () {
    const otherKeys = h.otherPrefix();
    const bare = entryRef(h.keys, 'bare'); // a lock beside no entry
    const beside = entryRef(h.keys, 'beside'); // a lock beside a (stale) entry
    const theirs = entryRef(otherKeys, 'locked');
    const { tagHash } = await h.read(beside);
    assert.equal(await h.write(beside, 'stale', tagHash, undefined, Date.now() - 1000), true);
    for (const ref of [bare, beside, theirs]) assert.equal((await h.read(ref, 'token-a')).locked, true, `token-a did not take the lock ${ref.lockKey}`);
    await h.backend.clear(h.keys.prefix);
    for (const ref of [bare, beside]) {
      assert.equal((await h.read(ref, 'token-b')).locked, true, `clear(prefix) left the lock ${ref.lockKey}`);
    }
    assert.equal((await h.read(theirs, 'token-b')).locked, false, `clear(prefix) removed the lock ${theirs.lockKey} of another prefix`);
  });

  it('dump shows entries as their values, tags as their versions, locks as their tokens', async function () {
    const ref = entryRef(h.keys, 'dumped');
    const tags = [h.keys.tagKey('d')];
    const { tagHash } = await h.read(ref, undefined, tags);
    // Written past its fresh time, so that the next read takes the lock beside the entry.
    const value = { n: 5, when: new Date(0) };
    assert.equal(await h.write(ref, value, tagHash, undefined, Date.now() - 1000), true);
    assert.equal((await h.read(ref, 'token-a', tags)).locked, true);
    for (const dump of [await h.backend.dump(), await h.backend.dump(h.keys.prefix)]) {
      assert.deepEqual(Object.keys(dump).sort(), [ref.entryKey, ref.lockKey, tags[0]].sort());
      assert.deepEqual(dump[ref.entryKey], value);
      assert.equal(dump[ref.lockKey], 'token-a');
      const version = dump[tags[0] as string];
      assert.equal(typeof version, 'string', `the tag version in the dump: ${inspect(version)}, expected a string`);
      assert.notEqual(version, '', 'the tag version in the dump is an empty string');
    }
  });
}

/** The clauses about bytes the cache did not write, for a spec that can write raw bytes. */
function foreignBytesClauses(h: Harness, writeRaw: NonNullable<BackendContractOptions['writeRaw']>): void {
  it('bytes too short for a header read as a miss; undecodable bytes are returned, and dumped as a CorruptEntryError', async function () {
    const short = entryRef(h.keys, 'short');
    await h.store(short, 'replaced below');
    await writeRaw(h.backend, short.entryKey, Buffer.from('h1j0', 'latin1'));
    assertIncludes(await h.read(short, 'token-a'), { entry: undefined, locked: true, stale: false }, 'the reply');
    // A valid header over a payload that does not decode: the backend serves it (decoding is the core's part).
    const broken = entryRef(h.keys, 'broken');
    const { tagHash } = await h.read(broken);
    await h.store(broken, 'replaced below'); // stored first, so that a store that cannot list keys knows it
    const header = Buffer.from(h.codec.encode({ tagHash, freshUntil: Date.now() + 60_000, value: 0 })).subarray(0, HEADER_LENGTH);
    const bytes = Buffer.concat([header, Buffer.from('{"n": 1, broken', 'latin1')]);
    await writeRaw(h.backend, broken.entryKey, bytes);
    const hit = await h.read(broken, 'token-a');
    assertIncludes(hit, { tagHash, locked: false, stale: false }, 'the reply');
    assert.equal(Buffer.from(hit.entry as Uint8Array).equals(bytes), true);
    const dumped = (await h.backend.dump())[broken.entryKey];
    assert.ok(dumped instanceof CorruptEntryError, `dump() of undecodable bytes: ${inspect(dumped)}, expected a CorruptEntryError`);
    assert.equal(dumped.key, broken.entryKey);
  });
}
