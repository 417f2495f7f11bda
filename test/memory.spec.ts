import { expect } from 'chai';
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

  it('bounds stored bytes with maxBytes (serialize: true measures encoded bytes)', async function () {
    const cache = new Hermes(new MemoryBackend({ serialize: true, maxBytes: 2000 }));
    const blob = cache.wrap(async function blob(n: number) {
      return `${n}`.repeat(300);
    }, { ttl: 60 });
    for (let n = 0; n < 50; n++) await blob(n);
    const dump = await cache.backend.dump();
    const keys = Object.keys(dump);
    expect(keys.length).to.be.within(1, 6);
    expect(dump[blob.key(49)]).to.equal('49'.repeat(300)); // the newest survived
  });

  it('bounds live values with maxBytes through the size estimate', async function () {
    const cache = new Hermes(new MemoryBackend({ maxBytes: 10_000 }));
    const big = cache.wrap(async function big(n: number) {
      return { n, text: 'x'.repeat(1000) };
    });
    for (let n = 0; n < 100; n++) await big(n);
    expect(Object.keys(await cache.backend.dump()).length).to.be.within(1, 10);
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
