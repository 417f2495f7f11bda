/**
 * The direct Backend tier of the contract suite: each clause of the {@link Backend} contract
 * (`backend/backend.ts`) tested on the backend itself, without `Hermes` in between, so that a
 * backend that breaks a clause fails a test named after that clause instead of showing a
 * cache-level symptom. {@link registerBackendContract} registers it beside the tests that go
 * through `Hermes`; every backend that runs the contract suite runs this tier too.
 *
 * Every call of a backend method goes through one of the small request helpers below
 * ({@link entryRef}, {@link readRequest}, {@link writeRequest}, …): the only place that knows
 * how a request names its keys.
 *
 * @module
 */

import { expect } from 'chai';
import type { Backend, ReadReply, ReadRequest, StoredEntry, WriteRequest } from '../backend/backend.js';
import { EntryCodec, type EntryRecord } from '../codec.js';
import { Keyspace } from '../keys.js';
import type { BackendContractOptions } from './contract.js';

/** One entry as the tests name it: the keys of the entry and of its lock. */
interface EntryRef {
  readonly entryKey: string;
  readonly lockKey: string;
}

/** Long enough never to expire during a test; the tests that want expiry say so. */
const LOCK_TTL_MS = 30_000;
const ENTRY_TTL_MS = 60_000;
/** A wait that must end by a wake-up, not by this timeout. */
const LONG_WAIT_MS = 15_000;
/** The bound a woken wait must beat: far below {@link LONG_WAIT_MS}, lenient on a loaded machine. */
const WOKEN_WITHIN_MS = 5_000;
/** A tag hash no read ever reports: entries written with it never match. */
const FOREIGN_HASH = 'ffffffffffffffff';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// --- The request helpers: the only code that builds requests from keys. ---

function entryRef(keys: Keyspace, id: string): EntryRef {
  const entryKey = keys.entryKey('clause', id);
  return { entryKey, lockKey: keys.lockKeyOf(entryKey) };
}

function readRequest(ref: EntryRef, tagKeys: readonly string[], lockToken?: string, lockTtlMs = LOCK_TTL_MS): ReadRequest {
  return { entryKey: ref.entryKey, lockKey: ref.lockKey, tagKeys, lockToken, lockTtlMs };
}

function writeRequest(ref: EntryRef, entry: StoredEntry, lockToken?: string): WriteRequest {
  return { entryKey: ref.entryKey, lockKey: ref.lockKey, entry, ttlMs: ENTRY_TTL_MS, lockToken };
}

function releaseLock(backend: Backend, ref: EntryRef, token: string): Promise<void> {
  return backend.release(ref.lockKey, token);
}

function waitForLock(backend: Backend, ref: EntryRef, timeoutMs: number): Promise<boolean> {
  return backend.waitForRelease(ref.lockKey, timeoutMs);
}

function invalidateEntry(backend: Backend, ref: EntryRef): Promise<void> {
  return backend.invalidate(ref.entryKey, ref.lockKey);
}

// --- Entries, encoded as the core encodes them. ---

/** What the core hands to `write`: the codec's bytes when the backend stores bytes, else the record. */
function storedEntry(backend: Backend, codec: EntryCodec, record: EntryRecord): StoredEntry {
  return backend.storesBytes ? codec.encode(record) : record;
}

/** The cached value of a read's entry, decoded as the core decodes it. */
function valueOf(backend: Backend, codec: EntryCodec, reply: ReadReply): unknown {
  const { entry } = reply;
  if (entry === undefined) throw new Error('expected a hit, got a miss');
  return backend.storesBytes ? codec.decode(entry as Uint8Array).value : (entry as EntryRecord).value;
}

let prefixCounter = 0;

/**
 * Registers the direct Backend tier for one backend: one mocha test per clause of the
 * {@link Backend} contract. Called by {@link registerBackendContract}; backends need not call it.
 * @param options - the same options as the contract suite's
 */
export function registerBackendClauses(options: BackendContractOptions): void {
  describe(`Backend contract, clause by clause: ${options.name}`, function () {
    let backend: Backend;
    let peer: Backend;
    let keys: Keyspace;
    let codec: EntryCodec;
    const prefixes: string[] = [];
    const opened: Backend[] = [];

    beforeEach(async function () {
      const prefix = `clauses${process.pid}x${++prefixCounter}`;
      prefixes.push(prefix);
      keys = new Keyspace(prefix);
      codec = new EntryCodec();
      backend = await options.createBackend();
      opened.push(backend);
      backend.attach({ prefix, codec });
      peer = await options.createPeer(backend);
      if (peer !== backend) {
        opened.push(peer);
        peer.attach({ prefix, codec });
      }
    });

    afterEach(async function () {
      for (const prefix of prefixes.splice(0)) await backend.clear(prefix).catch(() => undefined);
      for (const b of opened.splice(0)) await b.close();
    });

    /** Reads `ref` on `on` (default: the backend) with its tags and, if given, a lock token. */
    const read = (ref: EntryRef, token?: string, tagKeys: readonly string[] = [], on: Backend = backend): Promise<ReadReply> =>
      on.read(readRequest(ref, tagKeys, token));

    /** Writes `value` under `ref` with `tagHash`, fresh for a minute unless `freshUntil` says otherwise. */
    const write = (ref: EntryRef, value: unknown, tagHash: string, token?: string, freshUntil = Date.now() + ENTRY_TTL_MS): Promise<boolean> =>
      backend.write(writeRequest(ref, storedEntry(backend, codec, { tagHash, freshUntil, value }), token));

    /** Reads `ref` and writes `value` with the tag hash the read reported: a valid entry. */
    const store = async (ref: EntryRef, value: unknown, tagKeys: readonly string[] = []): Promise<void> => {
      const { tagHash } = await read(ref, undefined, tagKeys);
      expect(await write(ref, value, tagHash)).to.equal(true);
    };

    it('read of an absent entry: a miss; with a token it takes the lock, unless another token holds it', async function () {
      const ref = entryRef(keys, 'absent');
      const plain = await read(ref);
      expect(plain).to.include({ entry: undefined, locked: false, stale: false });
      expect(plain.tagHash).to.match(/^[0-9a-f]{16}$/);
      expect(await read(ref, 'token-a')).to.include({ entry: undefined, locked: true, stale: false });
      expect(await read(ref, 'token-b')).to.include({ entry: undefined, locked: false, stale: false });
      expect(await read(ref, 'token-c', [], peer)).to.include({ entry: undefined, locked: false, stale: false });
    });

    it('read without a token never takes the lock', async function () {
      const ref = entryRef(keys, 'untokened');
      await read(ref);
      await read(ref, undefined, [keys.tagKey('t')]);
      expect((await read(ref, 'token-a')).locked).to.equal(true);
    });

    it('a missing tag version is created once: every read agrees on the tag hash until cleanTags', async function () {
      const ref = entryRef(keys, 'tagged');
      const tags = [keys.tagKey('a'), keys.tagKey('b')];
      const untagged = (await read(ref)).tagHash;
      // Two processes reading a tag that has no version yet, at the same time.
      const [first, second] = await Promise.all([read(ref, undefined, tags), read(ref, undefined, tags, peer)]);
      expect(first?.tagHash).to.equal(second?.tagHash);
      expect(first?.tagHash).to.not.equal(untagged);
      expect((await read(ref, undefined, tags)).tagHash).to.equal(first?.tagHash);
      expect((await read(ref, undefined, tags, peer)).tagHash).to.equal(first?.tagHash);
      await backend.cleanTags([keys.tagKey('b')]);
      const renewed = (await read(ref, undefined, tags)).tagHash;
      expect(renewed).to.not.equal(first?.tagHash);
      expect((await read(ref, undefined, tags, peer)).tagHash).to.equal(renewed);
    });

    it('write with the lock token: true, the entry hits, the lock is released', async function () {
      const ref = entryRef(keys, 'locked-write');
      const tags = [keys.tagKey('w')];
      const miss = await read(ref, 'token-a', tags);
      expect(miss.locked).to.equal(true);
      expect(await write(ref, { n: 1 }, miss.tagHash, 'token-a')).to.equal(true);
      const hit = await read(ref, 'token-b', tags);
      expect(hit).to.include({ tagHash: miss.tagHash, locked: false, stale: false });
      expect(valueOf(backend, codec, hit)).to.deep.equal({ n: 1 });
      expect(valueOf(backend, codec, await read(ref, undefined, tags, peer))).to.deep.equal({ n: 1 });
      // Neither the write kept the lock nor the fresh hit with token-b took it: once the tag is
      // cleaned (the lock stays), a third token gets the lock.
      await backend.cleanTags(tags);
      expect(await read(ref, 'token-c', tags)).to.include({ entry: undefined, locked: true });
    });

    it('write with a lock token refuses (false, nothing stored) once invalidate() removed the lock', async function () {
      const ref = entryRef(keys, 'invalidated');
      const miss = await read(ref, 'token-a');
      expect(miss.locked).to.equal(true);
      await invalidateEntry(backend, ref);
      expect(await write(ref, 'late', miss.tagHash, 'token-a')).to.equal(false);
      expect((await read(ref)).entry).to.equal(undefined);
      expect((await read(ref, undefined, [], peer)).entry).to.equal(undefined);
    });

    it('write with a lock token refuses (false, nothing stored) when another token holds the lock', async function () {
      const ref = entryRef(keys, 'taken-over');
      const first = await read(ref, 'token-a');
      expect(first.locked).to.equal(true);
      // A token that never held the lock.
      expect(await write(ref, 'intruder', first.tagHash, 'token-x')).to.equal(false);
      expect((await read(ref)).entry).to.equal(undefined);
      // The lock changes hands (as after an expiry): the former holder's write is refused.
      await releaseLock(backend, ref, 'token-a');
      expect((await read(ref, 'token-b', [], peer)).locked).to.equal(true);
      expect(await write(ref, 'former holder', first.tagHash, 'token-a')).to.equal(false);
      expect((await read(ref)).entry).to.equal(undefined);
      expect(await write(ref, 'holder', first.tagHash, 'token-b')).to.equal(true);
      expect(valueOf(backend, codec, await read(ref))).to.equal('holder');
    });

    it('write without a token stores unconditionally and leaves a held lock alone', async function () {
      const free = entryRef(keys, 'free');
      const { tagHash } = await read(free);
      expect(await write(free, 'no lock at all', tagHash)).to.equal(true);
      expect(valueOf(backend, codec, await read(free))).to.equal('no lock at all');
      const held = entryRef(keys, 'held');
      expect((await read(held, 'token-a')).locked).to.equal(true);
      expect(await write(held, 'beside the lock', tagHash)).to.equal(true);
      expect(valueOf(backend, codec, await read(held, undefined, [], peer))).to.equal('beside the lock');
      // Still token-a's lock: its write is accepted.
      expect(await write(held, 'holder', tagHash, 'token-a')).to.equal(true);
      expect(valueOf(backend, codec, await read(held))).to.equal('holder');
    });

    it('release with a foreign token leaves the lock; with the holder token it frees it', async function () {
      const ref = entryRef(keys, 'release');
      expect((await read(ref, 'token-a')).locked).to.equal(true);
      await releaseLock(backend, ref, 'token-b');
      await releaseLock(peer, ref, 'token-b');
      expect((await read(ref, 'token-c')).locked).to.equal(false);
      await releaseLock(peer, ref, 'token-a');
      expect((await read(ref, 'token-c')).locked).to.equal(true);
    });

    it('waitForRelease resolves true when the holder releases the lock', async function () {
      const ref = entryRef(keys, 'wait-release');
      expect((await read(ref, 'token-a')).locked).to.equal(true);
      expect((await read(ref, 'token-b', [], peer)).locked).to.equal(false);
      const started = Date.now();
      const waiting = waitForLock(peer, ref, LONG_WAIT_MS);
      await sleep(50);
      await releaseLock(backend, ref, 'token-a');
      expect(await waiting).to.equal(true);
      expect(Date.now() - started).to.be.below(WOKEN_WITHIN_MS);
    });

    it('waitForRelease resolves true when the holder writes the entry', async function () {
      const ref = entryRef(keys, 'wait-write');
      const miss = await read(ref, 'token-a');
      expect(miss.locked).to.equal(true);
      const started = Date.now();
      const waiting = waitForLock(peer, ref, LONG_WAIT_MS);
      await sleep(50);
      expect(await write(ref, 'done', miss.tagHash, 'token-a')).to.equal(true);
      expect(await waiting).to.equal(true);
      expect(Date.now() - started).to.be.below(WOKEN_WITHIN_MS);
      expect(valueOf(backend, codec, await read(ref, 'token-b', [], peer))).to.equal('done');
    });

    it('waitForRelease resolves false on timeout when nobody releases', async function () {
      const ref = entryRef(keys, 'wait-timeout');
      expect((await read(ref, 'token-a')).locked).to.equal(true);
      expect((await read(ref, 'token-b', [], peer)).locked).to.equal(false);
      const started = Date.now();
      expect(await waitForLock(peer, ref, 300)).to.equal(false);
      expect(Date.now() - started).to.be.at.least(250);
      expect((await read(ref, 'token-b', [], peer)).locked).to.equal(false); // still held
    });

    it('invalidate deletes the entry and its lock, and wakes the waiters', async function () {
      const ref = entryRef(keys, 'invalidate');
      const { tagHash } = await read(ref, 'token-a');
      expect(await write(ref, 'cached', tagHash)).to.equal(true); // the lock stays token-a's
      const started = Date.now();
      const waiting = waitForLock(peer, ref, LONG_WAIT_MS);
      await sleep(50);
      await invalidateEntry(backend, ref);
      expect(await waiting).to.equal(true);
      expect(Date.now() - started).to.be.below(WOKEN_WITHIN_MS);
      expect((await read(ref, undefined, [], peer)).entry).to.equal(undefined);
      expect((await read(ref, 'token-b')).locked).to.equal(true);
      expect(await write(ref, 'late', tagHash, 'token-a')).to.equal(false);
    });

    it('cleanTags invalidates every entry carrying a cleaned tag, and no other', async function () {
      const [a, b] = [keys.tagKey('a'), keys.tagKey('b')];
      const entries: [EntryRef, string[]][] = [
        [entryRef(keys, 'a'), [a]],
        [entryRef(keys, 'ab'), [a, b]],
        [entryRef(keys, 'b'), [b]],
        [entryRef(keys, 'none'), []],
      ];
      for (const [ref, tags] of entries) await store(ref, ref.entryKey, tags);
      const hits = async (): Promise<boolean[]> =>
        Promise.all(entries.map(async ([ref, tags]) => (await read(ref, undefined, tags, peer)).entry !== undefined));
      expect(await hits()).to.deep.equal([true, true, true, true]);
      await backend.cleanTags([keys.tagKey('unused')]);
      expect(await hits()).to.deep.equal([true, true, true, true]);
      await backend.cleanTags([a]);
      expect(await hits()).to.deep.equal([false, false, true, true]);
    });

    /** A second prefix on the backend: another cache sharing the store. */
    const otherPrefix = (): Keyspace => {
      const other = new Keyspace(`${keys.prefix}other`);
      prefixes.push(other.prefix);
      backend.attach({ prefix: other.prefix, codec });
      return other;
    };

    it('clear(prefix) removes the entries and tags of that prefix, and nothing of another', async function () {
      const otherKeys = otherPrefix();
      const mine = entryRef(keys, 'mine');
      const theirs = entryRef(otherKeys, 'mine');
      const [tag, theirTag] = [keys.tagKey('t'), otherKeys.tagKey('t')];
      await store(mine, 'mine', [tag]);
      await store(theirs, 'theirs', [theirTag]);
      await backend.clear(keys.prefix);
      expect(await backend.dump(keys.prefix)).to.deep.equal({});
      expect((await read(mine, undefined, [tag])).entry).to.equal(undefined);
      expect((await read(mine, undefined, [tag], peer)).entry).to.equal(undefined);
      expect(valueOf(backend, codec, await read(theirs, undefined, [theirTag]))).to.equal('theirs');
      expect(await backend.dump(otherKeys.prefix)).to.include.keys(theirs.entryKey, theirTag);
    });

    it('clear(prefix) removes the locks of that prefix, and nothing of another', async function () {
      const otherKeys = otherPrefix();
      const bare = entryRef(keys, 'bare'); // a lock beside no entry
      const beside = entryRef(keys, 'beside'); // a lock beside a (stale) entry
      const theirs = entryRef(otherKeys, 'locked');
      const { tagHash } = await read(beside);
      expect(await write(beside, 'stale', tagHash, undefined, Date.now() - 1000)).to.equal(true);
      for (const ref of [bare, beside, theirs]) expect((await read(ref, 'token-a')).locked, ref.lockKey).to.equal(true);
      await backend.clear(keys.prefix);
      for (const ref of [bare, beside]) {
        expect((await read(ref, 'token-b')).locked, `clear(prefix) left the lock ${ref.lockKey}`).to.equal(true);
      }
      expect((await read(theirs, 'token-b')).locked, theirs.lockKey).to.equal(false);
    });

    it('dump shows entries as their values, tags as their versions, locks as their tokens', async function () {
      const ref = entryRef(keys, 'dumped');
      const tags = [keys.tagKey('d')];
      const { tagHash } = await read(ref, undefined, tags);
      // Written past its fresh time, so that the next read takes the lock beside the entry.
      const value = { n: 5, when: new Date(0) };
      expect(await write(ref, value, tagHash, undefined, Date.now() - 1000)).to.equal(true);
      expect((await read(ref, 'token-a', tags)).locked).to.equal(true);
      for (const dump of [await backend.dump(), await backend.dump(keys.prefix)]) {
        expect(Object.keys(dump).sort()).to.deep.equal([ref.entryKey, ref.lockKey, tags[0]].sort());
        expect(dump[ref.entryKey]).to.deep.equal(value);
        expect(dump[ref.lockKey]).to.equal('token-a');
        expect(dump[tags[0] as string]).to.be.a('string').and.not.equal('');
      }
    });

    it('stale: an entry past its fresh-until time but within its TTL reads as stale, and lockable', async function () {
      const ref = entryRef(keys, 'stale');
      const tags = [keys.tagKey('s')];
      const { tagHash } = await read(ref, undefined, tags);
      expect(await write(ref, 'old', tagHash, undefined, Date.now() - 1000)).to.equal(true);
      const plain = await read(ref, undefined, tags);
      expect(plain).to.include({ tagHash, locked: false, stale: true });
      expect(valueOf(backend, codec, plain)).to.equal('old');
      const refreshing = await read(ref, 'token-a', tags);
      expect(refreshing).to.include({ locked: true, stale: true });
      expect(valueOf(backend, codec, refreshing)).to.equal('old');
      const other = await read(ref, 'token-b', tags, peer);
      expect(other).to.include({ locked: false, stale: true });
      expect(await write(ref, 'new', tagHash, 'token-a')).to.equal(true);
      const fresh = await read(ref, 'token-b', tags, peer);
      expect(fresh).to.include({ locked: false, stale: false });
      expect(valueOf(backend, codec, fresh)).to.equal('new');
      // A stale entry whose tag is cleaned is a miss, not a stale hit.
      expect(await write(ref, 'old again', tagHash, undefined, Date.now() - 1000)).to.equal(true);
      await backend.cleanTags(tags);
      expect(await read(ref, undefined, tags)).to.include({ entry: undefined, stale: false });
    });

    it('an entry written under another tag hash is a miss', async function () {
      const ref = entryRef(keys, 'foreign-hash');
      expect(await write(ref, 'orphan', FOREIGN_HASH)).to.equal(true);
      expect(await read(ref, 'token-a')).to.include({ entry: undefined, locked: true, stale: false });
    });

    it('close() resolves pending waits as timed out (false), and is idempotent', async function () {
      const ref = entryRef(keys, 'closing');
      expect((await read(ref, 'token-a')).locked).to.equal(true);
      expect((await read(ref, 'token-b', [], peer)).locked).to.equal(false);
      const started = Date.now();
      const waiting = waitForLock(peer, ref, LONG_WAIT_MS);
      await sleep(50);
      await peer.close();
      expect(await waiting).to.equal(false);
      expect(Date.now() - started).to.be.below(WOKEN_WITHIN_MS);
      await peer.close();
    });

    it('the optional readSync answers as read does; failureDomain never throws', async function () {
      const ref = entryRef(keys, 'sync');
      expect(() => backend.failureDomain?.(ref.entryKey)).to.not.throw();
      expect(backend.failureDomain?.(ref.entryKey)).to.satisfy((d: unknown) => d === undefined || typeof d === 'string');
      const readSync = backend.readSync?.bind(backend);
      if (readSync === undefined) return;
      const miss = readSync(readRequest(ref, [], 'token-a'));
      expect(miss).to.include({ entry: undefined, locked: true, stale: false, tagHash: (await read(ref)).tagHash });
      expect(await write(ref, 'sync', miss.tagHash, 'token-a')).to.equal(true);
      const hit = readSync(readRequest(ref, []));
      expect(valueOf(backend, codec, hit)).to.equal('sync');
      expect(hit).to.deep.equal(await read(ref));
    });
  });
}
