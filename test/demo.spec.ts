import { expect } from 'chai';
import { execFileSync } from 'node:child_process';

describe('npm run demo (scripts/demo.ts)', function () {
  it('runs the ported quickstart with no server: computes once, invalidates, cleans', function () {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { encoding: 'utf8' });
    const computed = (fn: string): number => out.split('\n').filter((l) => l.includes(`(computing ${fn}(`)).length;
    expect(computed('foo')).to.equal(2); // first call + after invalidate
    expect(computed('bar')).to.equal(2); // first call + after clean(['math'])
    expect(computed('baz')).to.equal(3); // first call + after clean(['avg']) + after clean(['math'])
    expect(out).to.include("'cache:entry:Example.baz:avg:2:10': 6");
    expect(out).to.match(/'cache:entry:foo:c4be94f1f3e36935': 666/);
    expect(out.trimEnd().endsWith('{}')).to.equal(true); // clean() left nothing under the prefix
  });
});
