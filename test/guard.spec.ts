import { expect } from 'chai';
import { DeadlineQueue } from '../src/core/guard.js';

/** Resolves once `condition()` holds, polling; rejects after 5 s. */
async function until(condition: () => boolean): Promise<void> {
  const giveUp = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error('condition not met within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('DeadlineQueue: one timer for the deadlines of every backend call', function () {
  it('expires the calls that did not settle, in order, and leaves the settled ones alone', async function () {
    const queue = new DeadlineQueue(40);
    const expired: number[] = [];
    const started = Date.now();
    const entries = Array.from({ length: 1000 }, (_, i) => queue.add(() => expired.push(i)));
    for (let i = 0; i < 1000; i += 2) (entries[i] as { done: boolean }).done = true; // settled in time
    await until(() => expired.length >= 500);
    expect(Date.now() - started).to.be.at.least(39);
    expect(expired).to.have.length(500);
    expect(expired.every((i) => i % 2 === 1)).to.equal(true);
    expect(expired).to.deep.equal([...expired].sort((a, b) => a - b));
    expect(entries.every((e) => e.done)).to.equal(true);
    // The queue empties and starts again for later calls.
    const late = queue.add(() => expired.push(1000));
    expect(late.done).to.equal(false);
    await until(() => late.done);
    expect(expired.at(-1)).to.equal(1000);
  });
});
