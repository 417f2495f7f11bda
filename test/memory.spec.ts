import { expect } from 'chai';
import { HEADER_LENGTH } from '../src/backend/index.js';
import { Hermes, MemoryBackend, OptionError } from '../src/index.js';
import { registerBackendContract } from '../src/testing/index.js';

registerBackendContract({
  name: 'MemoryBackend (live values)',
  createBackend: () => new MemoryBackend(),
  createPeer: (backend) => backend,
});

registerBackendContract({
  name: 'MemoryBackend (serialize: true)',
  createBackend: () => new MemoryBackend({ serialize: true }),
  createPeer: (backend) => backend,
  writeRaw: async (backend, key, bytes) => { (backend as MemoryBackend).setRaw(key, bytes); },
});

describe('MemoryBackend', function () {
  it('evicts the least recently used entries beyond maxEntries', async function () {
    const cache = new Hermes(new MemoryBackend({ maxEntries: 3 }));
    let calls = 0;
    const id = cache.wrap(async function id(n: number) {
      calls++;
      return n;
    });
    for (const n of [1, 2, 3]) await id(n);
    await id(1); // 1 is now the most recent; 2 is the least
    await id(4); // evicts 2
    expect(calls).to.equal(4);
    await id(1);
    await id(3);
    expect(calls).to.equal(4);
    await id(2);
    expect(calls).to.equal(5);
    expect(Object.keys(await cache.backend.dump())).to.have.length(3);
  });

  it('bounds stored bytes with maxBytes (serialize: true measures encoded bytes), evicting the least recently used', async function () {
    const cache = new Hermes(new MemoryBackend({ serialize: true, maxBytes: 2000 }));
    let calls = 0;
    const blob = cache.wrap(async function blob(n: number) {
      calls++;
      return `${n}`.repeat(300);
    }, { ttl: 60 });
    for (let n = 0; n < 50; n++) await blob(n);
    // An entry costs its key plus its encoded bytes (header + JSON, under the compression
    // threshold): 33 + 33 + 602 = 668 bytes for n >= 10. Two fit in 2000 bytes, three do not.
    const entryBytes = blob.key(49).length + HEADER_LENGTH + JSON.stringify('49'.repeat(300)).length;
    expect(Math.floor(2000 / entryBytes)).to.equal(2);
    const kept = async (): Promise<string[]> => Object.keys(await cache.backend.dump()).sort();
    expect(await kept()).to.deep.equal([blob.key(48), blob.key(49)].sort());
    expect((await cache.backend.dump())[blob.key(49)]).to.equal('49'.repeat(300));
    // A hit makes 48 the most recent: the next entry evicts 49.
    expect(await blob(48)).to.equal('48'.repeat(300));
    await blob(50);
    expect(await kept()).to.deep.equal([blob.key(48), blob.key(50)].sort());
    expect(calls).to.equal(51);
  });

  it('bounds live values with maxBytes through the size estimate, evicting the least recently used', async function () {
    const cache = new Hermes(new MemoryBackend({ maxBytes: 10_000 }));
    let calls = 0;
    const big = cache.wrap(async function big(n: number) {
      calls++;
      return { n, text: 'x'.repeat(1000) };
    });
    for (let n = 0; n < 100; n++) await big(n);
    // The estimate counts 2 bytes per character, so each entry takes a little over 2000
    // bytes (2170 with the key and the record's overhead): four fit in 10 000, five do not.
    const kept = async (): Promise<string[]> => Object.keys(await cache.backend.dump()).sort();
    expect(await kept()).to.deep.equal([96, 97, 98, 99].map((n) => big.key(n)).sort());
    expect(await big(96)).to.deep.equal({ n: 96, text: 'x'.repeat(1000) }); // now the most recent
    await big(100);
    expect(await kept()).to.deep.equal([96, 98, 99, 100].map((n) => big.key(n)).sort());
    expect(calls).to.equal(101);
  });

  it('returns the cached object itself without serialize, a fresh copy with it', async function () {
    const live = new Hermes(new MemoryBackend());
    const copy = new Hermes(new MemoryBackend({ serialize: true }));
    const make = async (): Promise<{ list: number[] }> => ({ list: [1] });
    const a = live.wrap(make, { name: 'make' });
    const b = copy.wrap(make, { name: 'make' });
    expect(await a()).to.equal(await a());
    const first = await b();
    expect(first).to.deep.equal(await b());
    expect(first).not.to.equal(await b());
  });

  it('rejects bad bounds with an OptionError naming the option', function () {
    expect(() => new MemoryBackend({ maxEntries: 0 })).to.throw(OptionError, /maxEntries/);
    expect(() => new MemoryBackend({ maxBytes: -1 })).to.throw(OptionError, /maxBytes/);
  });

  it('wakes waiters when a lock expires, and resolves them as timed out on close()', async function () {
    const backend = new MemoryBackend();
    const cache = new Hermes(backend, { prefix: 'w' });
    const request = { ref: cache.keyspace.entryRef('f', '1'), tagKeys: [], lockTtlMs: 80 };
    expect((await backend.read({ ...request, lockToken: 'holder' })).locked).to.equal(true);
    expect((await backend.read({ ...request, lockToken: 'other' })).locked).to.equal(false);
    const started = Date.now();
    expect(await backend.waitForRelease(request.ref, 5000)).to.equal(true);
    expect(Date.now() - started).to.be.within(40, 1000);
    expect((await backend.read({ ...request, lockToken: 'other' })).locked).to.equal(true);
    const pending = backend.waitForRelease(request.ref, 5000);
    await cache.close();
    expect(await pending).to.equal(false);
  });
});
