import { expect } from 'chai';
import { Redis } from 'ioredis';
import { type RedisSentinelSetup, startRedisSentinel } from '../helpers/redis-sentinel.js';

describe('Redis Sentinel test servers (groundwork for the Sentinel tests)', function () {
  this.timeout(60_000);
  let setup: RedisSentinelSetup;

  before(async function () {
    setup = await startRedisSentinel();
  });

  after(async function () {
    await setup.stop();
  });

  it('serves through the sentinels, and after a forced failover from the new primary', async function () {
    const client = new Redis({ sentinels: [...setup.sentinels], name: setup.name, lazyConnect: true });
    try {
      await client.connect();
      await client.set('before', '1');
      const oldPrimary = await setup.primaryPort();
      const newPrimary = await setup.failover();
      expect(newPrimary).not.to.equal(oldPrimary);
      // ioredis asks the sentinels again after the switch; writes go to the new primary.
      let written = false;
      for (let i = 0; i < 50 && !written; i++) {
        written = await client.set('after', '2').then(
          () => true,
          () => false,
        );
        if (!written) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(written).to.equal(true);
      expect(await client.get('before')).to.equal('1'); // replicated before the failover
      expect(await client.get('after')).to.equal('2');
    } finally {
      client.disconnect();
    }
  });
});
