import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { Hermes, type HermesError, MemoryBackend, OptionError, SerializationError } from '../src/index.js';
import type { BackendClass } from '../src/backend/index.js';
import { MemcachedBackend } from '../src/backend/memcached/index.js';
import { RedisBackend } from '../src/backend/redis/index.js';
import { freePort } from './helpers/memcached-server.js';

/** The OptionError `build` throws; fails the test when it throws nothing or something else. */
function optionErrorOf(build: () => unknown): OptionError {
  try {
    build();
  } catch (error) {
    expect(error).to.be.instanceOf(OptionError);
    return error as OptionError;
  }
  expect.fail('expected an OptionError');
}

/** Options as plain JavaScript may give them: any key, any value. */
const loose = (options: unknown): never => options as never;

describe('Configuration fails loudly and early', function () {
  describe('the Redis url', function () {
    for (const url of ['redis//localhost:6379', 'http://localhost:6379', 'localhost:6379', 'redis:localhost']) {
      it(`refuses ${url} when the cache is constructed`, function () {
        const error = optionErrorOf(() => new Hermes(RedisBackend, { url }));
        expect(error.option).to.equal('url');
        expect(error.message).to.contain(url).and.to.match(/redis:\/\//);
      });
    }

    it('keeps the credentials of a refused url out of the message', function () {
      const error = optionErrorOf(() => new Hermes(RedisBackend, { url: 'http://user:s3cret@localhost:6379' }));
      expect(error.option).to.equal('url');
      expect(error.message).not.to.contain('s3cret');
    });

    it('accepts redis:// and rediss:// URLs, opening nothing', async function () {
      for (const url of ['redis://localhost:6379/1', 'rediss://user:pass@example.com:6380']) {
        const cache = new Hermes(RedisBackend, { url });
        await cache.close();
      }
    });
  });

  describe("backend options are checked when the Hermes is constructed, not at the first call", function () {
    it('Redis: keyPrefix, a bad nearCache, a bad writeBatch', function () {
      expect(optionErrorOf(() => new Hermes(RedisBackend, { keyPrefix: 'app:' })).option).to.equal('keyPrefix');
      expect(optionErrorOf(() => new Hermes(RedisBackend, { nearCache: loose({ maxEntries: -5 }) })).option).to.equal('nearCache');
      expect(optionErrorOf(() => new Hermes(RedisBackend, { nearCache: loose({ maxEntrie: 5 }) })).option).to.equal('nearCache');
      expect(optionErrorOf(() => new Hermes(RedisBackend, { writeBatch: 0 })).option).to.equal('writeBatch');
    });

    it('memory: maxEntries, maxBytes, serialize', function () {
      expect(optionErrorOf(() => new Hermes(MemoryBackend, { maxEntries: -5 })).option).to.equal('maxEntries');
      expect(optionErrorOf(() => new Hermes(undefined, loose({ maxEntries: -5 }))).option).to.equal('maxEntries');
      expect(optionErrorOf(() => new Hermes(MemoryBackend, { maxBytes: 0 })).option).to.equal('maxBytes');
      expect(optionErrorOf(() => new Hermes(MemoryBackend, { serialize: loose('yes') })).option).to.equal('serialize');
    });

    it('Memcached: servers, pollMin', function () {
      expect(optionErrorOf(() => new Hermes(MemcachedBackend, { servers: 'no-port' })).option).to.equal('servers');
      expect(optionErrorOf(() => new Hermes(MemcachedBackend, { pollMin: -1 })).option).to.equal('pollMin');
    });

    it("calls a third-party backend class' static validateOptions, and constructs nothing", function () {
      let constructed = 0;
      const seen: unknown[] = [];
      const inner = new MemoryBackend();
      class Checked {
        static validateOptions(options: { shards?: number }): void {
          seen.push(options);
          if (options.shards !== undefined && options.shards < 1) throw new OptionError('shards', 'shards must be at least 1');
        }
        static readonly optionNames: ReadonlySet<string> = new Set(['shards']);
        constructor(options: { shards?: number }) {
          constructed++;
          seen.push(options);
          // A real backend would use `options.shards`; this one stores in memory.
          return inner;
        }
      }
      const Backend = Checked as unknown as BackendClass<{ shards?: number }>;
      expect(optionErrorOf(() => new Hermes(Backend, { ttl: 5, shards: 0 })).option).to.equal('shards');
      expect(optionErrorOf(() => new Hermes(Backend, loose({ shard: 1 }))).message).to.contain("'shards'");
      const cache = new Hermes(Backend, { ttl: 5, shards: 2 });
      expect(seen).to.deep.equal([{ shards: 0 }, { shards: 2 }]);
      expect(constructed).to.equal(0);
      expect(cache.backend).to.equal(inner);
      expect(constructed).to.equal(1);
    });
  });

  describe('unknown options are refused with the closest known name', function () {
    it("the cache's own options, whatever the backend", function () {
      for (const backend of [undefined, MemoryBackend, RedisBackend, MemcachedBackend] as const) {
        const error = optionErrorOf(() => new Hermes(backend as typeof MemoryBackend, loose({ tll: 60 })));
        expect(error.option).to.equal('tll');
        expect(error.message).to.contain("did you mean 'ttl'?");
      }
      expect(optionErrorOf(() => new Hermes(new MemoryBackend(), loose({ prefx: 'a' }))).message).to.contain("'prefix'");
      expect(optionErrorOf(() => new Hermes(undefined, loose({ lockwait: 5 }))).message).to.contain("'lockWait'");
      expect(optionErrorOf(() => new Hermes(undefined, loose({ timeout: { sofft: 5 } }))).message).to.contain("'timeout.soft'");
      expect(optionErrorOf(() => new Hermes(undefined, loose({ circuitBreaker: { failure: 5 } }))).message).to.contain(
        "'circuitBreaker.failures'",
      );
      const far = optionErrorOf(() => new Hermes(undefined, loose({ zzzzzzzz: 1 })));
      expect(far.message).to.equal("Unknown option 'zzzzzzzz'");
    });

    it('wrap() and cached() options', function () {
      const cache = new Hermes();
      const error = optionErrorOf(() => cache.wrap(async (n: number) => n, loose({ name: 'f', tgas: ['a'] })));
      expect(error.option).to.equal('tgas');
      expect(error.message).to.contain("did you mean 'tags'?");
      expect(optionErrorOf(() => cache.cached(loose({ tll: 5 }))).message).to.contain("'ttl'");
      expect(optionErrorOf(() => cache.wrap(async (n: number) => n, loose({ name: 'g', timeout: { hrad: 5 } }))).message).to.contain(
        "'timeout.hard'",
      );
    });

    it("each backend's own names: memory, Memcached, Redis with ioredis' options", async function () {
      expect(optionErrorOf(() => new Hermes(undefined, loose({ maxEntrys: 5 }))).message).to.contain("'maxEntries'");
      expect(optionErrorOf(() => new MemoryBackend(loose({ maxEntrys: 5 }))).message).to.contain("'maxEntries'");
      expect(optionErrorOf(() => new Hermes(MemcachedBackend, loose({ server: 'localhost:11211' }))).message).to.contain("'servers'");
      expect(optionErrorOf(() => new Hermes(RedisBackend, loose({ hots: 'localhost' }))).message).to.contain("'host'");
      expect(optionErrorOf(() => new Hermes(RedisBackend, loose({ comandTimeout: 5 }))).message).to.contain("'commandTimeout'");
      expect(optionErrorOf(() => new RedisBackend(loose({ nearcache: true }))).message).to.contain("'nearCache'");
      // ioredis' own options pass through, including those without a default in ioredis.
      const cache = new Hermes(RedisBackend, {
        host: 'localhost',
        tls: undefined,
        enableAutoPipelining: false,
        sentinelPassword: undefined,
        connectionName: 'app',
        disconnectTimeout: 100,
        keepAlive: 1000,
        noDelay: true,
        buckets: 8,
      });
      await cache.close();
    });
  });

  describe('messages', function () {
    it('name a string given for a number', function () {
      const cases: [string, Record<string, unknown>][] = [
        ['ttl', { ttl: '60' }],
        ['lockTimeout', { lockTimeout: '60' }],
        ['lockWait', { lockWait: '60' }],
        ['grace', { grace: '60' }],
        ['staleWhileRevalidate', { staleWhileRevalidate: '60' }],
        ['jitter', { jitter: '0.1' }],
        ['backendTimeout', { backendTimeout: '60' }],
        ['compressThreshold', { compressThreshold: '60' }],
        ['circuitBreaker', { circuitBreaker: { failures: '5' } }],
        ['maxEntries', { maxEntries: '60' }],
      ];
      for (const [option, options] of cases) {
        const error = optionErrorOf(() => new Hermes(undefined, loose(options)));
        expect(error.option).to.equal(option);
        expect(error.message, option).to.match(/got the string "[0-9.]+"/);
      }
      expect(optionErrorOf(() => new Hermes().wrap(async () => 1, loose({ name: 'f', ttl: '60' }))).message).to.contain(
        'got the string "60"',
      );
      expect(optionErrorOf(() => new Hermes(RedisBackend, loose({ commandTimeout: '60' }))).message).to.contain('got the string "60"');
    });

    it('a serialisation error ends its sentences with one period', async function () {
      const cache = new Hermes(undefined, { serializer: { serialize: () => { throw new Error('no codec for Thing.'); }, deserialize: () => 1 } });
      const memory = new Hermes(new MemoryBackend({ serialize: true }));
      const errors: HermesError[] = [];
      cache.on('error', (e) => errors.push(e));
      memory.on('error', (e) => errors.push(e));
      await cache.wrap(async () => 1, { name: 'f' })();
      await memory.wrap(async () => ({ run: (): number => 1 }), { name: 'f' })();
      await new Hermes(new MemoryBackend({ serialize: true }), {
        serializer: { serialize: () => { throw new Error('no codec for Thing.'); }, deserialize: () => 1 },
      })
        .on('error', (e) => errors.push(e))
        .wrap(async () => 1, { name: 'f' })();
      const serialisation = errors.filter((e) => e instanceof SerializationError);
      expect(serialisation).to.have.length.of.at.least(2);
      for (const error of serialisation) expect(error.message).not.to.match(/\.\s*\./);
      expect(serialisation.map((e) => e.message).join('\n')).to.contain('no codec for Thing. Return plain data');
    });
  });

  describe('durations and the functions of wrap()', function () {
    it("ttl, grace and staleWhileRevalidate take seconds or '500ms', '90s', '5m', '1h', '1d'", function () {
      const cases: [unknown, number][] = [
        [90, 90_000],
        [0.25, 250],
        ['500ms', 500],
        ['90s', 90_000],
        ['1.5s', 1500],
        ['.5s', 500],
        ['5m', 300_000],
        ['1h', 3_600_000],
        ['1d', 86_400_000],
      ];
      for (const [ttl, ms] of cases) expect(new Hermes(undefined, loose({ ttl })).ttlMs, String(ttl)).to.equal(ms);
      const cache = new Hermes(undefined, { grace: '1h', staleWhileRevalidate: '30s' });
      cache.wrap(async (n: number) => n, { name: 'f', ttl: '5m', grace: '1d', staleWhileRevalidate: '500ms' });
      cache.wrap(async (n: number) => n, { name: 'g', grace: 0, staleWhileRevalidate: '0s' });
    });

    it('refuses a bad duration with an OptionError naming the option and the string', function () {
      const bad = ['60', '5 m', '5min', '1w', '-5s', '1e3s', 's', '', ' 5s', '5S', '0x10s', 'Infinitys'];
      for (const option of ['ttl', 'grace', 'staleWhileRevalidate']) {
        for (const value of bad) {
          for (const make of [
            () => new Hermes(undefined, loose({ [option]: value })),
            () => new Hermes().wrap(async () => 1, loose({ name: 'f', [option]: value })),
            () => new Hermes().cached(loose({ [option]: value })),
          ]) {
            const error = optionErrorOf(make);
            expect(error.option, `${option}: ${value}`).to.equal(option);
            expect(error.message, `${option}: ${value}`).to.contain(`got the string ${JSON.stringify(value)}`).and.to.contain("'90s'");
          }
        }
      }
      for (const ttl of [0, '0s', '0ms', -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(optionErrorOf(() => new Hermes(undefined, loose({ ttl }))).option, String(ttl)).to.equal('ttl');
      }
      expect(optionErrorOf(() => new Hermes(undefined, loose({ grace: -1 }))).option).to.equal('grace');
    });

    it('refuses a cacheIf that is not a function, and tags that are neither strings nor a function', function () {
      const cache = new Hermes();
      for (const cacheIf of [true, 'yes', {}]) {
        const error = optionErrorOf(() => cache.wrap(async () => 1, loose({ name: 'f', cacheIf })));
        expect(error.option).to.equal('cacheIf');
        expect(error.message).to.match(/cacheIf must be a function/);
      }
      for (const tags of ['math', [1], {}, ['']]) expect(optionErrorOf(() => cache.wrap(async () => 1, loose({ name: 'f', tags }))).option).to.equal('tags');
      expect(optionErrorOf(() => cache.wrap(async () => 1, loose({ name: 'f', ttl: () => 1, cacheIf: null }))).option).to.equal('cacheIf');
      // Functions are accepted as they are: what they return is checked per call.
      cache.wrap(async (n: number) => n, { name: 'g', ttl: () => '1h', tags: (n) => [`n:${n}`], cacheIf: () => true });
    });

    it('a ttl function returning a bad duration rejects the call with an OptionError naming ttl, the function and the value', async function () {
      const cache = new Hermes();
      for (const ttl of ['5 minutes', -1, Number.NaN, null, '1w']) {
        const fn = cache.wrap(async (n: number) => n, { name: `ttl${String(ttl)}`, ttl: (() => ttl) as () => number });
        const error = await fn(1).then(() => undefined, (e: unknown) => e);
        expect(error, String(ttl)).to.be.instanceOf(OptionError);
        expect((error as OptionError).option).to.equal('ttl');
        expect((error as OptionError).message).to.contain(`'ttl${String(ttl)}'`).and.to.contain(String(typeof ttl === 'string' ? JSON.stringify(ttl) : ttl));
      }
    });
  });

  describe('an unreachable Redis', function () {
    it('is named by host and port from the first error on', async function () {
      const port = await freePort();
      const cache = new Hermes(RedisBackend, { port });
      const errors: HermesError[] = [];
      cache.on('error', (e) => errors.push(e));
      const double = cache.wrap(async (n: number) => 2 * n, { name: 'double' });
      expect(await double(1)).to.equal(2);
      expect(await double(2)).to.equal(4);
      await cache.close();
      expect(errors.length).to.be.at.least(1);
      for (const error of errors) expect(error.message).to.contain(`localhost:${port}`);
    });

    it('lets the process exit right after close(): no timer keeps it alive', async function () {
      const port = await freePort();
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/close-exit.mts', String(port)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).to.equal(0);
      // Before: ioredis' disconnect timer and the wait for an 'end' that never comes held it 2-3 s.
      expect(Number(out.trim())).to.be.a('number').and.to.be.below(1000);
    });
  });
});
