import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The repository's own TypeScript compiler. */
const TSC = resolve('node_modules', 'typescript', 'bin', 'tsc');

/** Runs `tsc` with these arguments; returns its exit status and output. */
function tsc(args: string[], cwd = process.cwd()): { status: number | null; output: string } {
  const run = spawnSync(process.execPath, [TSC, ...args], { cwd, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Imports every entry point of the package by name and uses a value and a type of each. */
const SUBPATHS_FIXTURE = `import { Hermes, type WrapOptions } from 'hermes-cache';
import { RedisBackend, type RedisBackendOptions } from 'hermes-cache/redis';
import { MemcachedBackend, type MemcachedBackendOptions } from 'hermes-cache/memcached';
import { LockWaiters, type Backend } from 'hermes-cache/backend';
import { registerBackendContract } from 'hermes-cache/testing';

const options: WrapOptions<[number]> = { ttl: 60 };
const redis: RedisBackendOptions = {};
const memcached: MemcachedBackendOptions = {};
const backend: Backend | undefined = undefined;
export const used = [Hermes, RedisBackend, MemcachedBackend, LockWaiters, registerBackendContract, options, redis, memcached, backend];
// @ts-expect-error not an entry point
export { nothing } from 'hermes-cache/nosuchpath';
`;

/** Strict compiler options shared by both resolution modes. */
const STRICT = { strict: true, noEmit: true, skipLibCheck: true, types: [] as string[], target: 'ES2022' };

describe('types (tsc on fixtures)', function () {
  this.timeout(120_000);

  it('test/types/api.ts compiles, and each line marked @ts-expect-error fails', function () {
    const { status, output } = tsc(['-p', 'test/types/tsconfig.json']);
    expect(output).to.equal('');
    expect(status).to.equal(0);
  });

  describe('subpath imports from an app that installed the package', function () {
    let app: string;
    before(function () {
      expect(existsSync('dist/backend/redis/index.d.ts'), 'dist/ is built by `npm test` (npm run build)').to.equal(true);
      app = mkdtempSync(join(tmpdir(), 'hermes-types-'));
      mkdirSync(join(app, 'node_modules'));
      symlinkSync(resolve('.'), join(app, 'node_modules', 'hermes-cache'), 'dir');
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
      writeFileSync(join(app, 'index.ts'), SUBPATHS_FIXTURE);
      const node10 = { ...STRICT, module: 'CommonJS', moduleResolution: 'node10', ignoreDeprecations: '6.0' };
      const nodenext = { ...STRICT, module: 'NodeNext', moduleResolution: 'NodeNext' };
      writeFileSync(join(app, 'tsconfig.node10.json'), JSON.stringify({ compilerOptions: node10, files: ['index.ts'] }));
      writeFileSync(join(app, 'tsconfig.nodenext.json'), JSON.stringify({ compilerOptions: nodenext, files: ['index.ts'] }));
    });
    after(function () {
      rmSync(app, { recursive: true, force: true });
    });

    for (const mode of ['node10', 'nodenext']) {
      it(`resolve under moduleResolution: ${mode}`, function () {
        const { status, output } = tsc(['-p', `tsconfig.${mode}.json`], app);
        expect(output).to.equal('');
        expect(status).to.equal(0);
      });
    }
  });
});
