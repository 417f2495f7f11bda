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
    const fixture = 'test/fixtures/third-party-backend.mjs';
    const registered = mochaJson(['--dry-run', fixture]); // what the suite registers, run or not
    const run = mochaJson([fixture]);
    expect(run.status, run.output).to.equal(0);
    const titles = run.report.tests.map((test) => test.fullTitle);
    for (const suite of ['Backend contract: ', 'Backend contract, clause by clause: ']) {
      expect(titles.some((title) => title.startsWith(`${suite}a third-party backend through hermes-cache/testing`)), suite).to.equal(true);
    }
    // Every registered test ran and passed: none failed, none skipped.
    const { stats } = run.report;
    expect(registered.report.stats.tests).to.be.above(0);
    expect({ tests: stats.tests, passes: stats.passes, pending: stats.pending, failures: stats.failures }).to.deep.equal({
      tests: registered.report.stats.tests,
      passes: registered.report.stats.tests,
      pending: 0,
      failures: 0,
    });
    // The published suite is the source's: as many tests as the in-repo spec registers for the
    // same kind of backend (MemoryBackend with serialize: true, also given writeRaw).
    const fromSource = mochaJson(['--dry-run', '--node-option', 'import=tsx', '--grep', 'MemoryBackend \\(serialize: true\\)', 'test/memory.spec.ts']);
    expect(fromSource.report.stats.tests, fromSource.output).to.equal(registered.report.stats.tests);
  });
});

/** What mocha's JSON reporter writes. */
interface MochaReport {
  readonly stats: { readonly tests: number; readonly passes: number; readonly pending: number; readonly failures: number };
  readonly tests: readonly { readonly fullTitle: string }[];
}

/** Runs mocha in its own process, without the repository's config, and parses its JSON report. */
function mochaJson(args: readonly string[]): { status: number | null; report: MochaReport; output: string } {
  const result = spawnSync(process.execPath, ['node_modules/mocha/bin/mocha.js', '--no-config', '--timeout', '20000', '--reporter', 'json', ...args], {
    encoding: 'utf8',
  });
  const output = result.stdout + result.stderr;
  const start = result.stdout.indexOf('{\n');
  if (start < 0) throw new Error(`mocha ${args.join(' ')} wrote no JSON report:\n${output}`);
  return { status: result.status, report: JSON.parse(result.stdout.slice(start)) as MochaReport, output };
}
