import assert from 'node:assert/strict';
import { refreshEarly } from '../src/backend/index.js';
import { Hermes, OptionError } from '../src/index.js';

/** Options as plain JavaScript may give them: any key, any value. */
const loose = (options: unknown): never => options as never;

describe('earlyRefresh', function () {
  it('is validated where it is given (cache or wrap), with an OptionError naming it', function () {
    for (const bad of [0, 'yes', null, [], { beta: 0 }, { beta: -1 }, { beta: Number.NaN }, { beta: Infinity }, { beta: '2' }]) {
      assert.throws(() => new Hermes(undefined, loose({ earlyRefresh: bad })), (e: unknown) => e instanceof OptionError && e.option === 'earlyRefresh', JSON.stringify(bad));
      const cache = new Hermes();
      assert.throws(() => cache.wrap(async function f() { return 1; }, loose({ earlyRefresh: bad })), (e: unknown) => e instanceof OptionError && e.option === 'earlyRefresh');
    }
    assert.throws(() => new Hermes(undefined, loose({ earlyRefresh: { beta: 1, bta: 2 } })), (e: unknown) => e instanceof OptionError && /did you mean 'earlyRefresh.beta'/.test(e.message));
    for (const good of [true, false, {}, { beta: 0.5 }, { beta: 10 }]) {
      new Hermes(undefined, { earlyRefresh: good });
      new Hermes().wrap(async function g() { return 1; }, { earlyRefresh: good });
    }
  });

  it('XFetch: refreshes when now + computeMs × beta × -ln(random) reaches the fresh time, never without a compute time', function () {
    // -ln(e^-1) = 1: the look-ahead is exactly computeMs × beta.
    const r = Math.exp(-1);
    assert.equal(refreshEarly(1000, 1100, 50, 2, r), true); // 1000 + 100 >= 1100
    assert.equal(refreshEarly(1000, 1101, 50, 2, r), false);
    assert.equal(refreshEarly(1000, 1100, undefined, 2, r), false);
    assert.equal(refreshEarly(1000, 1100, 0, 2, r), false);
    assert.equal(refreshEarly(1000, 1100, 50, 0, r), false);
    assert.equal(refreshEarly(1000, 1001, 50, 2, 1), false); // random 1: no look-ahead
    assert.equal(refreshEarly(1000, 1000, 50, 2, 1), true);
    // The share of reads that refresh at 100 ms before the expiry of a 50 ms function, beta 1:
    // P(-ln U >= 2) = e^-2 ≈ 13.5 %.
    let count = 0;
    for (let i = 0; i < 20_000; i++) if (refreshEarly(0, 100, 50, 1, 1 - Math.random())) count++;
    assert.ok(Math.abs(count / 20_000 - Math.exp(-2)) < 0.015, String(count / 20_000));
  });
});
