import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** The built package, imported by its name through the `exports` map, as users import it. */
describe('the published package (dist/, built by `npm test`)', function () {
  it('exports the API through the package name, with type declarations', async function () {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, { types: string; default: string }> };
    const main = pkg.exports['.'];
    expect(main && existsSync(main.types) && existsSync(main.default)).to.equal(true);
    const packageName = 'hermes-cache'; // a variable: typechecking must not need dist/
    const api = (await import(packageName)) as Record<string, unknown>;
    for (const name of ['Hermes', 'MemoryBackend', 'HermesError', 'OptionError', 'ArgumentError', 'BackendError']) {
      expect(api[name], name).to.be.a('function');
    }
    for (const name of ['Keyspace', 'uniqueToken', 'tagHash', 'LockWaiters']) expect(api[name], name).to.equal(undefined);
  });

  it('exports the backend writer\'s kit as hermes-cache/backend', async function () {
    const subpath = 'hermes-cache/backend'; // a variable: typechecking must not need dist/
    const kit = (await import(subpath)) as Record<string, unknown>;
    for (const name of ['LockWaiters', 'decodeForDump', 'sortedByKey', 'integerOption', 'numberOption', 'Keyspace', 'uniqueToken', 'tagHash', 'EntryCodec']) {
      expect(kit[name], name).to.be.a('function');
    }
    expect(kit.HEADER_LENGTH).to.equal(33);
  });

  it('caches from a plain JavaScript process, with no server', function () {
    const code = `
      import { Hermes } from 'hermes-cache';
      const cache = new Hermes();
      let calls = 0;
      const f = cache.wrap(async function f(n) { calls++; return n * 2; }, { tags: ['t'] });
      console.log(await f(2), await f(2), calls);
      await cache.clean(['t']);
      console.log(await f(2), calls);
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(out).to.equal('4 4 1\n4 2\n');
  });

  it('exports the backend contract suite as hermes-cache/testing, runnable by a third-party backend', function () {
    this.timeout(60_000);
    const result = spawnSync(
      process.execPath,
      ['node_modules/mocha/bin/mocha.js', '--no-config', '--timeout', '20000', 'test/fixtures/third-party-backend.mjs'],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stdout + result.stderr).to.equal(0);
    expect(result.stdout).to.match(/Backend contract: a third-party backend through hermes-cache\/testing/);
    const passing = Number(/(\d+) passing/.exec(result.stdout)?.[1]);
    expect(passing).to.be.above(15);
  });
});
