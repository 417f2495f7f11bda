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

import { expect } from 'chai';
import { HEADER_LENGTH } from '../codec.js';
import { CorruptEntryError } from '../errors.js';
import type { EntryRef } from '../keys.js';
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
    expect(plain).to.include({ entry: undefined, locked: false, stale: false });
    expect(plain.tagHash).to.match(/^[0-9a-f]{16}$/);
    expect(await h.read(ref, 'token-a')).to.include({ entry: undefined, locked: true, stale: false });
    expect(await h.read(ref, 'token-b')).to.include({ entry: undefined, locked: false, stale: false });
    expect(await h.read(ref, 'token-c', [], h.peer)).to.include({ entry: undefined, locked: false, stale: false });
  });

  it('read without a token never takes the lock', async function () {
    const ref = entryRef(h.keys, 'untokened');
    await h.read(ref);
    await h.read(ref, undefined, [h.keys.tagKey('t')]);
    expect((await h.read(ref, 'token-a')).locked).to.equal(true);
  });

  it('a missing tag version is created once: every read agrees on the tag hash until cleanTags', async function () {
    const ref = entryRef(h.keys, 'tagged');
    const tags = [h.keys.tagKey('a'), h.keys.tagKey('b')];
    const untagged = (await h.read(ref)).tagHash;
    // Two processes reading a tag that has no version yet, at the same time.
    const [first, second] = await Promise.all([h.read(ref, undefined, tags), h.read(ref, undefined, tags, h.peer)]);
    expect(first?.tagHash).to.equal(second?.tagHash);
    expect(first?.tagHash).to.not.equal(untagged);
    expect((await h.read(ref, undefined, tags)).tagHash).to.equal(first?.tagHash);
    expect((await h.read(ref, undefined, tags, h.peer)).tagHash).to.equal(first?.tagHash);
    await h.backend.cleanTags(h.keys.prefix, [h.keys.tagKey('b')]);
    const renewed = (await h.read(ref, undefined, tags)).tagHash;
    expect(renewed).to.not.equal(first?.tagHash);
    expect((await h.read(ref, undefined, tags, h.peer)).tagHash).to.equal(renewed);
  });

  it('stale: an entry past its fresh-until time but within its TTL reads as stale, and lockable', async function () {
    const ref = entryRef(h.keys, 'stale');
    const tags = [h.keys.tagKey('s')];
    const { tagHash } = await h.read(ref, undefined, tags);
    expect(await h.write(ref, 'old', tagHash, undefined, Date.now() - 1000)).to.equal(true);
    const plain = await h.read(ref, undefined, tags);
    expect(plain).to.include({ tagHash, locked: false, stale: true });
    expect(h.value(plain)).to.equal('old');
    const refreshing = await h.read(ref, 'token-a', tags);
    expect(refreshing).to.include({ locked: true, stale: true });
    expect(h.value(refreshing)).to.equal('old');
    const other = await h.read(ref, 'token-b', tags, h.peer);
    expect(other).to.include({ locked: false, stale: true });
    expect(await h.write(ref, 'new', tagHash, 'token-a')).to.equal(true);
    const fresh = await h.read(ref, 'token-b', tags, h.peer);
    expect(fresh).to.include({ locked: false, stale: false });
    expect(h.value(fresh)).to.equal('new');
    // A stale entry whose tag is cleaned is a miss, not a stale hit.
    expect(await h.write(ref, 'old again', tagHash, undefined, Date.now() - 1000)).to.equal(true);
    await h.backend.cleanTags(h.keys.prefix, tags);
    expect(await h.read(ref, undefined, tags)).to.include({ entry: undefined, stale: false });
  });

  it('an entry written under another tag hash is a miss', async function () {
    const ref = entryRef(h.keys, 'foreign-hash');
    expect(await h.write(ref, 'orphan', FOREIGN_HASH)).to.equal(true);
    expect(await h.read(ref, 'token-a')).to.include({ entry: undefined, locked: true, stale: false });
  });

  it('the optional readSync answers as read does; failureDomain never throws', async function () {
    const ref = entryRef(h.keys, 'sync');
    expect(() => h.backend.failureDomain?.(ref)).to.not.throw();
    expect(h.backend.failureDomain?.(ref)).to.satisfy((d: unknown) => d === undefined || typeof d === 'string');
    const readSync = h.backend.readSync?.bind(h.backend);
    if (readSync === undefined) return;
    const miss = readSync(readRequest(ref, [], 'token-a'));
    expect(miss).to.include({ entry: undefined, locked: true, stale: false, tagHash: (await h.read(ref)).tagHash });
    expect(await h.write(ref, 'sync', miss.tagHash, 'token-a')).to.equal(true);
    const hit = readSync(readRequest(ref, []));
    expect(h.value(hit)).to.equal('sync');
    expect(hit).to.deep.equal(await h.read(ref));
  });
}

/** The clauses of writes and releases: the lock token decides. */
function writeClauses(h: Harness): void {
  it('write with the lock token: true, the entry hits, the lock is released', async function () {
    const ref = entryRef(h.keys, 'locked-write');
    const tags = [h.keys.tagKey('w')];
    const miss = await h.read(ref, 'token-a', tags);
    expect(miss.locked).to.equal(true);
    expect(await h.write(ref, { n: 1 }, miss.tagHash, 'token-a')).to.equal(true);
    const hit = await h.read(ref, 'token-b', tags);
    expect(hit).to.include({ tagHash: miss.tagHash, locked: false, stale: false });
    expect(h.value(hit)).to.deep.equal({ n: 1 });
    expect(h.value(await h.read(ref, undefined, tags, h.peer))).to.deep.equal({ n: 1 });
    // Neither the write kept the lock nor the fresh hit with token-b took it: once the tag is
    // cleaned (the lock stays), a third token gets the lock.
    await h.backend.cleanTags(h.keys.prefix, tags);
    expect(await h.read(ref, 'token-c', tags)).to.include({ entry: undefined, locked: true });
  });

  it('write with a lock token refuses (false, nothing stored) once invalidate() removed the lock', async function () {
    const ref = entryRef(h.keys, 'invalidated');
    const miss = await h.read(ref, 'token-a');
    expect(miss.locked).to.equal(true);
    await invalidateEntry(h.backend, ref);
    expect(await h.write(ref, 'late', miss.tagHash, 'token-a')).to.equal(false);
    expect((await h.read(ref)).entry).to.equal(undefined);
    expect((await h.read(ref, undefined, [], h.peer)).entry).to.equal(undefined);
  });

  it('write with a lock token refuses (false, nothing stored) when another token holds the lock', async function () {
    const ref = entryRef(h.keys, 'taken-over');
    const first = await h.read(ref, 'token-a');
    expect(first.locked).to.equal(true);
    // A token that never held the lock.
    expect(await h.write(ref, 'intruder', first.tagHash, 'token-x')).to.equal(false);
    expect((await h.read(ref)).entry).to.equal(undefined);
    // The lock changes hands (as after an expiry): the former holder's write is refused.
    await releaseLock(h.backend, ref, 'token-a');
    expect((await h.read(ref, 'token-b', [], h.peer)).locked).to.equal(true);
    expect(await h.write(ref, 'former holder', first.tagHash, 'token-a')).to.equal(false);
    expect((await h.read(ref)).entry).to.equal(undefined);
    expect(await h.write(ref, 'holder', first.tagHash, 'token-b')).to.equal(true);
    expect(h.value(await h.read(ref))).to.equal('holder');
  });

  it('write without a token stores unconditionally and leaves a held lock alone', async function () {
    const free = entryRef(h.keys, 'free');
    const { tagHash } = await h.read(free);
    expect(await h.write(free, 'no lock at all', tagHash)).to.equal(true);
    expect(h.value(await h.read(free))).to.equal('no lock at all');
    const held = entryRef(h.keys, 'held');
    expect((await h.read(held, 'token-a')).locked).to.equal(true);
    expect(await h.write(held, 'beside the lock', tagHash)).to.equal(true);
    expect(h.value(await h.read(held, undefined, [], h.peer))).to.equal('beside the lock');
    // Still token-a's lock: its write is accepted.
    expect(await h.write(held, 'holder', tagHash, 'token-a')).to.equal(true);
    expect(h.value(await h.read(held))).to.equal('holder');
  });

  it('release with a foreign token leaves the lock; with the holder token it frees it', async function () {
    const ref = entryRef(h.keys, 'release');
    expect((await h.read(ref, 'token-a')).locked).to.equal(true);
    await releaseLock(h.backend, ref, 'token-b');
    await releaseLock(h.peer, ref, 'token-b');
    expect((await h.read(ref, 'token-c')).locked).to.equal(false);
    await releaseLock(h.peer, ref, 'token-a');
    expect((await h.read(ref, 'token-c')).locked).to.equal(true);
  });
}

/** The clauses of waits: woken by a release, a write, an invalidation; false on timeout and on close. */
function waitClauses(h: Harness): void {
  it('waitForRelease resolves true when the holder releases the lock', async function () {
    const ref = entryRef(h.keys, 'wait-release');
    expect((await h.read(ref, 'token-a')).locked).to.equal(true);
    expect((await h.read(ref, 'token-b', [], h.peer)).locked).to.equal(false);
    const started = Date.now();
    const waiting = waitForLock(h.peer, ref, LONG_WAIT_MS);
    await sleep(50);
    await releaseLock(h.backend, ref, 'token-a');
    expect(await waiting).to.equal(true);
    expect(Date.now() - started).to.be.below(WOKEN_WITHIN_MS);
  });

  it('waitForRelease resolves true when the holder writes the entry', async function () {
    const ref = entryRef(h.keys, 'wait-write');
    const miss = await h.read(ref, 'token-a');
    expect(miss.locked).to.equal(true);
    const started = Date.now();
    const waiting = waitForLock(h.peer, ref, LONG_WAIT_MS);
    await sleep(50);
    expect(await h.write(ref, 'done', miss.tagHash, 'token-a')).to.equal(true);
    expect(await waiting).to.equal(true);
    expect(Date.now() - started).to.be.below(WOKEN_WITHIN_MS);
    expect(h.value(await h.read(ref, 'token-b', [], h.peer))).to.equal('done');
  });

  it('waitForRelease resolves false on timeout when nobody releases', async function () {
    const ref = entryRef(h.keys, 'wait-timeout');
    expect((await h.read(ref, 'token-a')).locked).to.equal(true);
    expect((await h.read(ref, 'token-b', [], h.peer)).locked).to.equal(false);
    const started = Date.now();
    expect(await waitForLock(h.peer, ref, 300)).to.equal(false);
    expect(Date.now() - started).to.be.at.least(250);
    expect((await h.read(ref, 'token-b', [], h.peer)).locked).to.equal(false); // still held
  });

  it('invalidate deletes the entry and its lock, and wakes the waiters', async function () {
    const ref = entryRef(h.keys, 'invalidate');
    const { tagHash } = await h.read(ref, 'token-a');
    expect(await h.write(ref, 'cached', tagHash)).to.equal(true); // the lock stays token-a's
    const started = Date.now();
    const waiting = waitForLock(h.peer, ref, LONG_WAIT_MS);
    await sleep(50);
    await invalidateEntry(h.backend, ref);
    expect(await waiting).to.equal(true);
    expect(Date.now() - started).to.be.below(WOKEN_WITHIN_MS);
    expect((await h.read(ref, undefined, [], h.peer)).entry).to.equal(undefined);
    expect((await h.read(ref, 'token-b')).locked).to.equal(true);
    expect(await h.write(ref, 'late', tagHash, 'token-a')).to.equal(false);
  });

  it('close() resolves pending waits as timed out (false), and is idempotent', async function () {
    const ref = entryRef(h.keys, 'closing');
    expect((await h.read(ref, 'token-a')).locked).to.equal(true);
    expect((await h.read(ref, 'token-b', [], h.peer)).locked).to.equal(false);
    const started = Date.now();
    const waiting = waitForLock(h.peer, ref, LONG_WAIT_MS);
    await sleep(50);
    await h.peer.close();
    expect(await waiting).to.equal(false);
    expect(Date.now() - started).to.be.below(WOKEN_WITHIN_MS);
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
    expect(await hits()).to.deep.equal([true, true, true, true]);
    await h.backend.cleanTags(h.keys.prefix, [h.keys.tagKey('unused')]);
    expect(await hits()).to.deep.equal([true, true, true, true]);
    await h.backend.cleanTags(h.keys.prefix, [a]);
    expect(await hits()).to.deep.equal([false, false, true, true]);
  });

  it('clear(prefix) removes the entries and tags of that prefix, and nothing of another', async function () {
    const otherKeys = h.otherPrefix();
    const mine = entryRef(h.keys, 'mine');
    const theirs = entryRef(otherKeys, 'mine');
    const [tag, theirTag] = [h.keys.tagKey('t'), otherKeys.tagKey('t')];
    await h.store(mine, 'mine', [tag]);
    await h.store(theirs, 'theirs', [theirTag]);
    await h.backend.clear(h.keys.prefix);
    expect(await h.backend.dump(h.keys.prefix)).to.deep.equal({});
    expect((await h.read(mine, undefined, [tag])).entry).to.equal(undefined);
    expect((await h.read(mine, undefined, [tag], h.peer)).entry).to.equal(undefined);
    expect(h.value(await h.read(theirs, undefined, [theirTag]))).to.equal('theirs');
    expect(await h.backend.dump(otherKeys.prefix)).to.include.keys(theirs.entryKey, theirTag);
  });

  it('clear(prefix) removes the locks of that prefix, and nothing of another', async function () {
    const otherKeys = h.otherPrefix();
    const bare = entryRef(h.keys, 'bare'); // a lock beside no entry
    const beside = entryRef(h.keys, 'beside'); // a lock beside a (stale) entry
    const theirs = entryRef(otherKeys, 'locked');
    const { tagHash } = await h.read(beside);
    expect(await h.write(beside, 'stale', tagHash, undefined, Date.now() - 1000)).to.equal(true);
    for (const ref of [bare, beside, theirs]) expect((await h.read(ref, 'token-a')).locked, ref.lockKey).to.equal(true);
    await h.backend.clear(h.keys.prefix);
    for (const ref of [bare, beside]) {
      expect((await h.read(ref, 'token-b')).locked, `clear(prefix) left the lock ${ref.lockKey}`).to.equal(true);
    }
    expect((await h.read(theirs, 'token-b')).locked, theirs.lockKey).to.equal(false);
  });

  it('dump shows entries as their values, tags as their versions, locks as their tokens', async function () {
    const ref = entryRef(h.keys, 'dumped');
    const tags = [h.keys.tagKey('d')];
    const { tagHash } = await h.read(ref, undefined, tags);
    // Written past its fresh time, so that the next read takes the lock beside the entry.
    const value = { n: 5, when: new Date(0) };
    expect(await h.write(ref, value, tagHash, undefined, Date.now() - 1000)).to.equal(true);
    expect((await h.read(ref, 'token-a', tags)).locked).to.equal(true);
    for (const dump of [await h.backend.dump(), await h.backend.dump(h.keys.prefix)]) {
      expect(Object.keys(dump).sort()).to.deep.equal([ref.entryKey, ref.lockKey, tags[0]].sort());
      expect(dump[ref.entryKey]).to.deep.equal(value);
      expect(dump[ref.lockKey]).to.equal('token-a');
      expect(dump[tags[0] as string]).to.be.a('string').and.not.equal('');
    }
  });
}

/** The clauses about bytes the cache did not write, for a spec that can write raw bytes. */
function foreignBytesClauses(h: Harness, writeRaw: NonNullable<BackendContractOptions['writeRaw']>): void {
  it('bytes too short for a header read as a miss; undecodable bytes are returned, and dumped as a CorruptEntryError', async function () {
    const short = entryRef(h.keys, 'short');
    await h.store(short, 'replaced below');
    await writeRaw(h.backend, short.entryKey, Buffer.from('h1j0', 'latin1'));
    expect(await h.read(short, 'token-a')).to.include({ entry: undefined, locked: true, stale: false });
    // A valid header over a payload that does not decode: the backend serves it (decoding is the core's part).
    const broken = entryRef(h.keys, 'broken');
    const { tagHash } = await h.read(broken);
    await h.store(broken, 'replaced below'); // stored first, so that a store that cannot list keys knows it
    const header = Buffer.from(h.codec.encode({ tagHash, freshUntil: Date.now() + 60_000, value: 0 })).subarray(0, HEADER_LENGTH);
    const bytes = Buffer.concat([header, Buffer.from('{"n": 1, broken', 'latin1')]);
    await writeRaw(h.backend, broken.entryKey, bytes);
    const hit = await h.read(broken, 'token-a');
    expect(hit).to.include({ tagHash, locked: false, stale: false });
    expect(Buffer.from(hit.entry as Uint8Array).equals(bytes)).to.equal(true);
    const dumped = (await h.backend.dump())[broken.entryKey];
    expect(dumped).to.be.instanceOf(CorruptEntryError).with.property('key', broken.entryKey);
  });
}
