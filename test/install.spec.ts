import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A new user's first hour, replayed: the packed tarball installed into a fresh app (with ioredis,
 * memcache-client, TypeScript and @types/node, as the README's Install section says), the README's TypeScript
 * examples compiled there in strict mode and the quickstart run, and a misconfigured cache made
 * there. The app is installed offline with `npm ci` from a lockfile built from this repository's
 * (the same versions, whose tarballs `npm ci` of this repository left in npm's cache), so the test
 * needs no network and installs exactly what a user's `npm install` would unpack.
 */

/** One entry of a v3 `package-lock.json`'s `packages`. */
interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  [field: string]: unknown;
}

/** What the README's Install section has an app add beside hermes-cache, at this repository's locked versions. */
const APP_DEPENDENCIES = ['ioredis', 'memcache-client', 'typescript', '@types/node'];

/**
 * A lockfile for an app that depends on the tarball and on {@link APP_DEPENDENCIES}: the closure
 * of those packages taken from this repository's lockfile (Node's lookup, nearest
 * `node_modules` first), their dev flags dropped.
 */
function appLockfile(tarball: string): { lock: object; dependencies: Record<string, string> } {
  const repo = (JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, LockEntry> }).packages;
  const own = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; dependencies: Record<string, string>; peerDependencies: Record<string, string> };
  const dependencies: Record<string, string> = { 'hermes-cache': `file:${tarball}` };
  for (const name of APP_DEPENDENCIES) dependencies[name] = repo[`node_modules/${name}`]!.version!;
  const packages: Record<string, LockEntry> = {
    '': { name: 'app', dependencies },
    'node_modules/hermes-cache': {
      version: own.version,
      resolved: `file:${tarball}`,
      integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
      dependencies: own.dependencies,
      peerDependencies: own.peerDependencies,
    },
  };
  const locate = (from: string, name: string): string => {
    for (let dir = from; ; ) {
      const key = `${dir ? `${dir}/` : ''}node_modules/${name}`;
      if (repo[key]) return key;
      if (!dir) throw new Error(`${name} (needed by ${from || 'the app'}) is not in package-lock.json`);
      const parent = dir.lastIndexOf('/node_modules/');
      dir = parent < 0 ? '' : dir.slice(0, parent);
    }
  };
  // hermes-cache's own dependencies resolve from the app's top level, where npm hoists them.
  const queue: [string, string][] = [...APP_DEPENDENCIES.map((name): [string, string] => ['', name]), ...Object.keys(own.dependencies).map((name): [string, string] => ['', name])];
  for (let next = queue.shift(); next; next = queue.shift()) {
    const key = locate(...next);
    if (packages[key]) continue;
    const entry = Object.fromEntries(Object.entries(repo[key]!).filter(([field]) => !['dev', 'devOptional', 'peer', 'optional'].includes(field))) as LockEntry;
    packages[key] = entry;
    for (const name of Object.keys(entry.dependencies ?? {})) queue.push([key, name]);
  }
  return { lock: { name: 'app', lockfileVersion: 3, requires: true, packages }, dependencies };
}

/** The README's fenced TypeScript blocks that are whole modules (they begin with an import). */
function readmeModules(): string[] {
  const readme = readFileSync('README.md', 'utf8');
  return [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1]!).filter((code) => code.startsWith('import '));
}

/** Declarations the README's examples take as given (the user's own functions). */
const GIVEN = 'declare function fetchUser(id: number): Promise<{ id: number; name: string }>;\n';

describe('a fresh app installed from the packed tarball', function () {
  this.timeout(180_000);
  let work: string;
  let app: string;
  let install: string;

  /** Runs node in the app; returns its exit status and output. */
  function node(args: string[]): { status: number | null; output: string } {
    const run = spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8' });
    return { status: run.status, output: `${run.stdout}${run.stderr}` };
  }

  before(function () {
    expect(existsSync('dist/index.js'), 'dist/ is built by `npm test` (npm run build)').to.equal(true);
    work = mkdtempSync(join(tmpdir(), 'hermes-install-'));
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { encoding: 'utf8' })) as { filename: string }[];
    const tarball = join(work, packed!.filename);
    app = join(work, 'app');
    mkdirSync(app);
    const { lock, dependencies } = appLockfile(tarball);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies }, null, 2));
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(lock, null, 2));
    const run = spawnSync('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, encoding: 'utf8' });
    install = `${run.stdout}${run.stderr}`;
    expect(run.status, `npm ci in the app (offline, from npm's cache):\n${install}`).to.equal(0);
  });
  after(function () {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installs the tarball\'s files, with no warning from npm (no unmet peer, no engine mismatch)', function () {
    const installed = join(app, 'node_modules', 'hermes-cache');
    for (const path of ['package.json', 'LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/backend/redis/index.js', 'lua']) {
      expect(existsSync(join(installed, path)), path).to.equal(true);
    }
    expect(existsSync(join(installed, 'test')), 'tests are not shipped').to.equal(false);
    expect(install).not.to.match(/npm warn/i);
    expect(readdirSync(join(app, 'node_modules')).sort()).to.not.include.members(['chai', 'mocha']);
  });

  it('compiles the README\'s TypeScript examples (decorators, typed key, generics) under strict, and runs the quickstart', function () {
    const modules = readmeModules();
    expect(modules.length, 'the quickstart, Redis, Memcached and Types examples').to.be.at.least(4);
    const types = modules.find((code) => code.includes('asCached'));
    expect(types, 'the Types example (asCached, a typed key, a generic function)').to.not.equal(undefined);
    expect(types).to.include('@cache.cached({ key: (id: number)');
    expect(types).to.include('cache.wrap<[number[]], number>(first)');
    const files = modules.map((code, index) => {
      const file = `example${index + 1}.ts`;
      writeFileSync(join(app, file), `${code.includes('fetchUser') ? GIVEN : ''}${code}\nexport {};\n`);
      return file;
    });
    const compilerOptions = { strict: true, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', outDir: 'out', types: ['node'], skipLibCheck: false, noUnusedLocals: false };
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }, null, 2));
    const tsc = node([join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
    expect(tsc.output, 'tsc in the app').to.equal('');
    expect(tsc.status).to.equal(0);

    // The quickstart, compiled by the app's TypeScript (standard decorators), runs without a server.
    const quickstart = node([join('out', files[0]!.replace(/\.ts$/, '.js'))]);
    expect(quickstart.status, quickstart.output).to.equal(0);
    expect(quickstart.output, 'the dump after clean(): empty').to.equal('{}\n');
  });

  it('fails at construction, naming the option, when a cache is misconfigured', function () {
    const script = `
      import { Hermes, OptionError } from 'hermes-cache';
      import { RedisBackend } from 'hermes-cache/redis';
      const cases = [
        () => new Hermes(undefined, { tll: 60 }),
        () => new Hermes(undefined, { ttl: '60' }),
        () => new Hermes(RedisBackend, { url: 'http://localhost:6379' }),
        () => new Hermes(RedisBackend, { keyPrefix: 'app:' }),
        () => new Hermes(undefined, { maxEntries: -5 }),
      ];
      for (const make of cases) {
        try { make(); console.log('constructed'); }
        catch (error) { console.log(error instanceof OptionError, error.option, error.message); }
      }
    `;
    const run = node(['--input-type=module', '-e', script]);
    expect(run.status, run.output).to.equal(0);
    const lines = run.output.trim().split('\n');
    expect(lines).to.have.length(5);
    const [tll, ttl, url, keyPrefix, maxEntries] = lines;
    expect(tll).to.match(/^true tll .*'tll'.*'ttl'/);
    expect(ttl).to.match(/^true ttl .*string/);
    expect(url).to.match(/^true url .*http:/);
    expect(keyPrefix).to.match(/^true keyPrefix /);
    expect(maxEntries).to.match(/^true maxEntries /);
  });

  it('is usable from CommonJS (require) as well', function () {
    const script = `
      const { Hermes } = require('hermes-cache');
      const cache = new Hermes();
      const twice = cache.wrap(async function twice(n) { return n * 2; });
      twice(21).then((value) => { console.log(value); return cache.close(); });
    `;
    const run = node(['--input-type=commonjs', '-e', script]);
    expect(run.output.trim()).to.equal('42');
    expect(run.status).to.equal(0);
  });
});
