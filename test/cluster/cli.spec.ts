import { expect } from 'chai';
import { Cluster, Redis } from 'ioredis';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { listRedisScripts } from '../../src/backend/redis/scripts.js';
import { main } from '../../src/backend/redis/cli.js';
import type { NodeTracking } from '../../src/backend/redis/cli-tracking.js';
import { type HermesError, Hermes } from '../../src/index.js';
import { type RedisCluster, startRedisCluster } from '../helpers/redis-cluster.js';

/** Runs the CLI in-process, capturing its output. */
async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await main(argv, { out: (t) => lines.push(t) });
  return { code, out: lines.join('\n') };
}

describe('operating hermes on a real 3-master Redis Cluster: the CLI (--cluster) and the ACL', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  let client: Cluster;
  let url: string;

  before(async function () {
    cluster = await startRedisCluster(3);
    client = new Cluster([...cluster.nodes], { lazyConnect: true });
    await client.connect();
    url = `redis://127.0.0.1:${cluster.nodes[0]?.port ?? 0}`;
  });

  after(async function () {
    client.disconnect();
    await cluster.stop();
  });

  /** 60 tagged entries, spread over the buckets and so over every master. */
  async function fill(prefix: string, buckets?: number): Promise<{ calls: () => number; run: (n: number) => Promise<number>; cache: Hermes }> {
    const cache = new Hermes(new RedisBackend({ cluster: [...cluster.nodes], buckets }), { prefix, ttl: 600 });
    let calls = 0;
    const square = cache.wrap(
      (n: number) => {
        calls++;
        return n * n;
      },
      { name: 'square', tags: ['math'] },
    );
    for (let n = 0; n < 60; n++) await square(n);
    return { calls: () => calls, run: square, cache };
  }

  it('scripts load and check work on every master; check finds a script missing on one of them', async function () {
    const load = await cli('scripts', 'load', '--url', url, '--cluster', '--json');
    expect(load.code).to.equal(0);
    for (const node of client.nodes('master')) {
      const exists = (await node.script('EXISTS', ...listRedisScripts().map((s) => s.sha))) as number[];
      expect(exists.every((e) => e === 1)).to.equal(true);
    }
    expect((await cli('scripts', 'check', '--url', url, '--cluster')).code).to.equal(0);
    await client.nodes('master')[1]?.script('FLUSH');
    const check = await cli('scripts', 'check', '--url', url, '--cluster', '--json');
    expect(check.code).to.equal(3);
    const report = JSON.parse(check.out) as { allPresent: boolean };
    expect(report.allPresent).to.equal(false);
  });

  it('inspect counts the entries on every master; clean --tag invalidates in every bucket; clean removes every key', async function () {
    const { calls, run, cache } = await fill('cli', 16);
    try {
      const perMaster = await Promise.all(client.nodes('master').map((node) => node.dbsize()));
      expect(perMaster.every((n) => n > 0)).to.equal(true); // the entries live on every master

      const inspect = JSON.parse((await cli('inspect', '--url', url, '--cluster', '--prefix', 'cli', '--json')).out) as {
        keys: { entries: number; tags: number; locks: number };
      };
      expect(inspect.keys.entries).to.equal(60);
      expect(inspect.keys.tags).to.be.greaterThan(3); // one copy of 'math' per bucket used
      expect(inspect.keys.locks).to.equal(0);

      const cleaned = await cli('clean', '--url', url, '--cluster', '--buckets', '16', '--prefix', 'cli', '--tag', 'math');
      expect(cleaned.code).to.equal(0);
      const before = calls();
      for (let n = 0; n < 60; n++) await run(n);
      expect(calls() - before).to.equal(60); // every entry was invalidated, whatever its bucket

      const removed = JSON.parse((await cli('clean', '--url', url, '--cluster', '--prefix', 'cli', '--yes', '--json')).out) as { removedKeys: number };
      expect(removed.removedKeys).to.be.greaterThan(60);
      const left = await Promise.all(client.nodes('master').map((node) => node.keys('cli:*')));
      expect(left.flat()).to.deep.equal([]);
    } finally {
      await cache.close();
    }
  });

  it('inspect --key finds an entry in its bucket (on the master serving it); clean --tag says when no copy of a tag existed', async function () {
    const cache = new Hermes(new RedisBackend({ cluster: [...cluster.nodes], buckets: 16 }), { prefix: 'clikey', ttl: 600 });
    const square = cache.wrap((n: number) => n * n, { name: 'square', tags: ['math'] });
    try {
      await square(12);
      const key = square.key(12);
      const report = JSON.parse((await cli('inspect', '--url', url, '--cluster', '--buckets', '16', '--key', key, '--tag', 'math', '--json')).out) as {
        key: string;
        storedKey: string;
        present: boolean;
        value: unknown;
        fresh: boolean;
        tagsMatch: boolean;
      };
      expect(report).to.deep.include({ key, present: true, value: 144, fresh: true, tagsMatch: true });
      expect(report.storedKey).to.match(/\{[^}]+\}/); // the bucket's hash tag
      expect(report.storedKey).not.to.equal(key);
      const byStoredKey = JSON.parse((await cli('inspect', '--url', url, '--cluster', '--buckets', '16', '--key', report.storedKey, '--json')).out) as {
        key: string;
        value: unknown;
      };
      expect(byStoredKey).to.deep.include({ key, value: 144 }); // a key copied from SCAN works too

      const cleaned = await cli('clean', '--url', url, '--cluster', '--buckets', '16', '--prefix', 'clikey', '--tag', 'math', '--tag', 'nosuchtag', '--json');
      expect(cleaned.code).to.equal(0);
      expect((JSON.parse(cleaned.out) as { absentTags: string[] }).absentTags).to.deep.equal(['nosuchtag']);
    } finally {
      await cache.close();
    }
  });

  it('says --buckets must match: with the wrong count clean --tag leaves some buckets valid (documented)', async function () {
    const { calls, run, cache } = await fill('mismatch', 16);
    try {
      expect((await cli('clean', '--url', url, '--cluster', '--buckets', '4', '--prefix', 'mismatch', '--tag', 'math')).code).to.equal(0);
      const before = calls();
      for (let n = 0; n < 60; n++) await run(n);
      expect(calls() - before).to.be.lessThan(60);
    } finally {
      await cache.clean();
      await cache.close();
    }
  });

  it('works as an ACL user confined to the prefix: the standalone rules plus cluster|slots and cluster|info', async function () {
    const rules = [
      '~acl:*', '&acl:*', '+eval', '+evalsha', '+script|load', '+scan', '+unlink', '+get', '+exists', '+publish', '+subscribe',
      '+unsubscribe', '+pubsub|numsub', '+spublish', '+ssubscribe', '+sunsubscribe', '+pubsub|shardnumsub',
      '+set', '+del', '+pttl', '+time', '+ping', '+hello', '+info', '+cluster|slots', '+cluster|info',
    ];
    for (const node of client.nodes('master')) await node.call('ACL', 'SETUSER', 'hermes', 'reset', 'on', '>secret', ...rules);
    for (const node of client.nodes('master')) await node.script('FLUSH'); // the user loads the scripts itself
    const options = { cluster: [...cluster.nodes], username: 'hermes', password: 'secret' };
    const cache = new Hermes(new RedisBackend(options), { prefix: 'acl', failOpen: false, lockWait: 10_000 });
    const peer = new Hermes(new RedisBackend(options), { prefix: 'acl', failOpen: false, lockWait: 10_000 });
    const errors: HermesError[] = [];
    cache.on('error', (error) => errors.push(error));
    peer.on('error', (error) => errors.push(error));
    try {
      let calls = 0;
      const fn = async (n: number): Promise<number> => {
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 100));
        return n * 2;
      };
      const f = cache.wrap(fn, { name: 'f', tags: ['t'] });
      const g = peer.wrap(fn, { name: 'f', tags: ['t'] });
      const [a, b] = await Promise.all([f(1), new Promise((resolve) => setTimeout(resolve, 20)).then(() => g(1))]);
      expect([a, b, calls]).to.deep.equal([2, 2, 1]); // the peer waited on the lock, woken by pub/sub
      await f.invalidate(1);
      expect(await f(1)).to.equal(2);
      await cache.clean(['t']);
      expect(await f(1)).to.equal(2);
      expect(calls).to.equal(3);
      await cache.clean();
      const left = await Promise.all(client.nodes('master').map((node) => node.keys('acl:*')));
      expect(left.flat()).to.deep.equal([]);
      expect(errors).to.deep.equal([]);
    } finally {
      await cache.close();
      await peer.close();
      for (const node of client.nodes('master')) await node.call('ACL', 'DELUSER', 'hermes');
    }
  });

  it('inspect reports client-side caching per master: the tracking client on its own node only', async function () {
    const target = cluster.nodes[1];
    if (target === undefined) throw new Error('no second master');
    const subscriber = new Redis({ ...target, protocol: 2 });
    const data = new Redis({ ...target });
    try {
      const subscriberId = await subscriber.client('ID');
      await subscriber.subscribe('__redis__:invalidate');
      await data.client('SETNAME', 'cli-cluster-near-cache');
      await data.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(subscriberId));
      let read = 0; // keys of this node's slots (the others answer MOVED)
      for (let n = 0; n < 50; n++) await data.get(`clitrack:${n}`).then(() => read++, () => undefined);
      expect(read).to.be.above(0);
      const { code, out } = await cli('inspect', '--url', url, '--cluster', '--json');
      expect(code).to.equal(0);
      const { tracking } = JSON.parse(out) as { tracking: NodeTracking[] };
      expect(tracking.map((n) => n.node).sort()).to.deep.equal(client.nodes('master').map((n) => `${n.options.host}:${n.options.port}`).sort());
      const names = tracking.map((n) => (n.clients.listed ? n.clients.shown.map((c) => c.name) : []));
      const onTarget = tracking.findIndex((n) => n.node.endsWith(`:${target.port}`));
      names.forEach((list, i) => {
        expect(list.includes('cli-cluster-near-cache'), tracking[i]?.node).to.equal(i === onTarget);
      });
      const text = await cli('inspect', '--url', url, '--cluster');
      expect(text.out.match(/client-side caching \(CLIENT TRACKING\) on /g)).to.have.length(3);
      expect(text.out).to.match(new RegExp(`name cli-cluster-near-cache\\s+redirect -> ${subscriberId} \\(connected\\)`));
    } finally {
      subscriber.disconnect();
      data.disconnect();
    }
  });

  it('refuses bad usage with exit code 2 and says why', async function () {
    const failure = async (...argv: string[]): Promise<{ exitCode: unknown; message: string }> => {
      try {
        await main(argv, { out: () => undefined });
      } catch (error) {
        return { exitCode: (error as { exitCode?: unknown }).exitCode, message: (error as Error).message };
      }
      throw new Error('expected a failure');
    };
    expect(await failure('inspect', '--url', url, '--buckets', '8')).to.deep.include({ exitCode: 2, message: '--buckets applies to a cluster only (add --cluster)' });
    expect((await failure('clean', '--url', url, '--cluster', '--buckets', '0', '--tag', 'x')).message).to.match(/--buckets must be an integer from 1 to 16384/);
    expect((await failure('inspect', '--url', `${url}/2`, '--cluster')).message).to.match(/database 0 only/);
  });
});
