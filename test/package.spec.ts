import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';

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
    // Run where chai cannot be imported, as in a project with mocha alone: the suite asserts with node:assert.
    const run = mochaJson(['--node-option', 'import=./test/fixtures/without-chai.mjs', fixture]);
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

/** The package.json fields these tests read. */
interface PackageJson {
  readonly engines: { readonly node: string };
  readonly exports: Record<string, string | { readonly types: string; readonly default: string }>;
  readonly bin: Record<string, string>;
  readonly repository?: { readonly url: string };
  readonly homepage?: string;
  readonly bugs?: { readonly url: string };
  readonly peerDependencies: Record<string, string>;
}

/** The paths `npm pack` would put in the tarball (no build, no scripts: a dry run). */
function packedFiles(): Set<string> {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { encoding: 'utf8' });
  const [report] = JSON.parse(out) as { files: { path: string }[] }[];
  return new Set(report!.files.map((file) => file.path));
}

describe('the tarball (`npm pack`)', function () {
  this.timeout(60_000);
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as PackageJson;
  let files: Set<string>;
  before(function () {
    files = packedFiles();
  });

  it('holds the licence, the docs, the Lua scripts and every entry point, and no tests, scripts or data', function () {
    const expected = ['package.json', 'LICENSE', 'README.md', 'CHANGELOG.md', 'bench/chart.svg'];
    for (const target of Object.values(pkg.exports)) expected.push(...(typeof target === 'string' ? [target] : [target.types, target.default]));
    expected.push(...Object.values(pkg.bin));
    for (const dir of ['lua', 'docs']) expected.push(...readdirSync(dir).map((name) => join(dir, name)));
    expect(expected.map((path) => normalize(path)).filter((path) => !files.has(path))).to.deep.equal([]);
    const unwanted = [...files].filter((path) => /^(test|scripts|node_modules|\.github)\//.test(path) || /^bench\/.*\.json$/.test(path) || /(^|\/)\.[^/]+$/.test(path));
    expect(unwanted).to.deep.equal([]);
    expect(readFileSync('LICENSE', 'utf8')).to.match(/^MIT License\n\nCopyright \(c\) 2026 the hermes-cache authors\n/);
  });

  it('ships the sources every source map names (src/), so the maps resolve', function () {
    const maps = [...files].filter((path) => path.endsWith('.map'));
    expect(maps.length).to.be.above(0);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const path = normalize(join(dirname(map), source));
        if (!files.has(path)) missing.push(`${map}: ${source}`);
      }
    }
    expect(missing).to.deep.equal([]);
    expect([...files].filter((path) => path.startsWith('src/') && !path.endsWith('.ts'))).to.deep.equal([]);
  });

  it('has no relative link in a shipped markdown file to a file left out of the tarball', function () {
    const dirs = new Set([...files].map((path) => dirname(path)));
    const broken: string[] = [];
    for (const file of [...files].filter((path) => path.endsWith('.md'))) {
      const text = readFileSync(file, 'utf8')
        .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
        .replace(/`[^`\n]*`/g, '');
      for (const match of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
        const target = match[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue;
        const path = normalize(join(dirname(file), decodeURIComponent(target.split('#')[0]!))).replace(/\/$/, '');
        if (!files.has(path) && !dirs.has(path)) broken.push(`${file}: ${target}`);
      }
    }
    expect(broken).to.deep.equal([]);
  });

  it('names its repository, home page and issue tracker, and has no test-only peer dependencies', function () {
    expect(pkg.repository?.url).to.match(/^git\+https:\/\/github\.com\/[^/]+\/[^/]+\.git$/);
    expect(pkg.homepage).to.match(/^https:\/\//);
    expect(pkg.bugs?.url).to.match(/^https:\/\/.*\/issues$/);
    // npm refuses to install next to a version outside a peer range, optional or not: a peer on
    // chai would block apps on chai 4 that never import hermes-cache/testing.
    expect(Object.keys(pkg.peerDependencies).sort()).to.deep.equal(['ioredis', 'memcache-client']);
  });

  it('locks no dependency whose engines exclude the oldest Node.js the package supports (npm ci: no EBADENGINE)', function () {
    for (const range of ['>=20', '^20.19.0 || >=22.12.0', '20 || >=22', '^18.18.0 || ^20.9.0 || >=21.1.0', '>=20.0.0', '*', '~20.19', '<21', '>= 18', '6.* || 8.* || >= 10.*']) {
      expect(satisfies('20.19.0', range), range).to.equal(true);
    }
    for (const range of ['>=22', '^18.0.0', '~20.18.0', '18 || >=22', '>=20.19.1', '<20.19.0', '21']) expect(satisfies('20.19.0', range), range).to.equal(false);
    const oldest = /^>=(\d+\.\d+)$/.exec(pkg.engines.node)?.[1];
    expect(oldest, pkg.engines.node).to.be.a('string');
    const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { version?: string; engines?: { node?: string } | string[] }> };
    const refused: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (range !== undefined && !satisfies(`${oldest!}.0`, range)) refused.push(`${path}@${entry.version ?? ''} wants node ${range}`);
    }
    expect(refused).to.deep.equal([]);
  });
});

/** Whether `version` (x.y.z) is in a node-semver range of the forms engines use (`>=`, `^`, `~`, `x.y`, `||`, hyphen-free). */
function satisfies(version: string, range: string): boolean {
  const parse = (text: string): number[] => text.replace(/^v/, '').split('.').map((part) => (/^\d+$/.test(part) ? Number(part) : Number.NaN));
  const compare = (a: number[], b: number[]): number => {
    for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  const v = parse(version);
  return range.split('||').some((alternative) =>
    alternative.replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').trim().split(/\s+/).filter(Boolean).every((comparator) => {
      const [, op = '', rest = ''] = /^(>=|<=|>|<|=|\^|~)?\s*(.*)$/.exec(comparator) ?? [];
      if (rest === '*' || rest === 'x' || rest === '') return true;
      const parts = parse(rest);
      const given = parts.findIndex((part) => Number.isNaN(part));
      const n = given === -1 ? parts.length : given; // how many numbers are given
      const low = [0, 1, 2].map((i) => (i < n ? parts[i]! : 0));
      const bump = (i: number): number[] => low.map((part, j) => (j < i ? part : j === i ? part + 1 : 0));
      switch (op) {
        case '>=': return compare(v, low) >= 0;
        case '>': return n === 3 ? compare(v, low) > 0 : compare(v, bump(n - 1)) >= 0;
        case '<': return compare(v, low) < 0;
        case '<=': return n === 3 ? compare(v, low) <= 0 : compare(v, bump(n - 1)) < 0;
        case '^': {
          const first = low[0] !== 0 || n === 1 ? 0 : low[1] !== 0 || n === 2 ? 1 : 2;
          return compare(v, low) >= 0 && compare(v, bump(first)) < 0;
        }
        case '~': return compare(v, low) >= 0 && compare(v, bump(n >= 2 ? 1 : 0)) < 0;
        default: return compare(v, low) >= 0 && (n === 3 ? compare(v, low) === 0 : compare(v, bump(n - 1)) < 0);
      }
    }),
  );
}

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
