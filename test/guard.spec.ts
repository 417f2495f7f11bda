import { expect } from 'chai';
import { Redis } from 'ioredis';
import { DeadlineQueue } from '../src/core/guard.js';
import { type RedisServer, startRedisServer } from './helpers/redis-server.js';

/** Resolves once `condition()` holds, polling; rejects after 5 s. */
async function until(condition: () => boolean): Promise<void> {
  const giveUp = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > giveUp) throw new Error('condition not met within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('DeadlineQueue: one timer for the deadlines of every backend call', function () {
  it('expires the calls that did not end, in order; the ended ones leave at once', async function () {
    const queue = new DeadlineQueue(40);
    const expired: number[] = [];
    const started = Date.now();
    const entries = Array.from({ length: 1000 }, (_, i) => queue.add(() => expired.push(i)));
    for (let i = 0; i < 1000; i += 2) expect(queue.end(entries[i] as (typeof entries)[number])).to.equal(true); // in time
    expect(queue.size).to.equal(500); // nothing kept for the calls that ended
    await until(() => expired.length >= 500);
    expect(Date.now() - started).to.be.at.least(39);
    expect(expired).to.have.length(500);
    expect(expired.every((i) => i % 2 === 1)).to.equal(true);
    expect(expired).to.deep.equal([...expired].sort((a, b) => a - b));
    expect(queue.size).to.equal(0);
    expect(queue.end(entries[1] as (typeof entries)[number])).to.equal(false); // expired already
    // The queue empties and starts again for later calls.
    let late = false;
    queue.add(() => (late = true));
    await until(() => late);
  });
});

describe('DeadlineQueue: a process that was busy past a deadline', function () {
  let server: RedisServer;
  let client: Redis;

  before(async function () {
    server = await startRedisServer();
    client = new Redis({ host: server.host, port: server.port });
    await client.ping();
  });

  after(async function () {
    client.disconnect();
    await server.stop();
  });

  it('reads the answers that arrived meanwhile before it expires anything', async function () {
    const queue = new DeadlineQueue(20);
    let expired = false;
    const deadline = queue.add(() => (expired = true));
    let answered = false;
    void client.ping().then(() => {
      answered = queue.end(deadline); // the answer arrived while the process was busy
    });
    const busyUntil = Date.now() + 100; // busy well past the 20 ms deadline; the server answers meanwhile
    while (Date.now() < busyUntil);
    await until(() => answered || expired);
    expect({ answered, expired }).to.deep.equal({ answered: true, expired: false });
    // With nothing arriving, a deadline still expires.
    let unanswered = false;
    queue.add(() => (unanswered = true));
    await until(() => unanswered);
  });
});
