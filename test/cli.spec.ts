import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { RedisBackend } from '../src/backend/redis/index.js';
import { listRedisScripts } from '../src/backend/redis/scripts.js';
import { main } from '../src/backend/redis/cli.js';
import { type NodeTracking, readTracking } from '../src/backend/redis/cli-tracking.js';
import { Hermes } from '../src/index.js';
import { type RedisServer, startRedisServer } from './helpers/redis-server.js';

/** Runs the CLI in-process, capturing its output. */
async function cli(...argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await main(argv, { out: (t) => lines.push(t) });
  return { code, out: lines.join('\n') };
}

/** Runs the CLI in-process as on a terminal that answers `answer` to every question. */
async function cliOnTerminal(answer: string, ...argv: string[]): Promise<{ code: number; out: string; asked: string[] }> {
  const lines: string[] = [];
  const asked: string[] = [];
  const ask = (question: string): Promise<string> => {
    asked.push(question);
    return Promise.resolve(answer);
  };
  const code = await main(argv, { out: (t) => lines.push(t), interactive: true, ask });
  return { code, out: lines.join('\n'), asked };
}

/** The reason `main` throws for `argv` (bad usage and the like), with its exit code. */
async function failure(...argv: string[]): Promise<{ message: string; exitCode: unknown }> {
  try {
    await main(argv, { out: () => undefined });
  } catch (error) {
    return { message: (error as Error).message, exitCode: (error as { exitCode?: unknown }).exitCode };
  }
  throw new Error(`hermes ${argv.join(' ')} did not fail`);
}

/** What `inspect --key --json` reports. */
interface EntryReport {
  key: string;
  present: boolean;
  value?: unknown;
  valueText?: string;
  decodeError?: string;
  classes?: string[];
  tagHash?: string;
  freshUntil?: string;
  fresh?: boolean;
  pttlMs?: number;
  format?: string;
  storedAt?: string;
  ageMs?: number;
  computeMs?: number;
  lock: { key: string; held: boolean; holder?: string; pttlMs?: number };
  tags: Array<{ tag: string; version: string | null }> | null;
  tagsHash?: string | null;
  tagsMatch?: boolean | null;
}

/** What `inspect --json` reports about client-side caching (the rest is left out). */
interface TrackingReport {
  tracking: NodeTracking[];
}

/** A tracking client from `inspect --json`'s only node, found by its name. */
function trackingClientNamed(report: TrackingReport, name: string): Record<string, unknown> | undefined {
  expect(report.tracking).to.have.length(1);
  const clients = report.tracking[0]?.clients;
  if (clients?.listed !== true) throw new Error('CLIENT LIST was not read');
  return clients.shown.find((c) => c.name === name) as Record<string, unknown> | undefined;
}

/** Resolves once the server no longer lists client `id` (a disconnect is noticed asynchronously). */
async function untilGone(redis: Redis, id: number): Promise<void> {
  for (;;) {
    const list = String(await redis.client('LIST'));
    if (!list.split('\n').some((line) => line.startsWith(`id=${id} `))) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A near-cache's pair of connections: a RESP2 subscriber on `__redis__:invalidate`, and a data
 * connection named `name` with `CLIENT TRACKING ON REDIRECT <subscriber id>` that read `keys`.
 */
async function trackingPair(port: number, name: string, keys: readonly string[]): Promise<{ data: Redis; subscriber: Redis; subscriberId: number }> {
  const subscriber = new Redis({ host: '127.0.0.1', port, protocol: 2 });
  const subscriberId = await subscriber.client('ID');
  await subscriber.subscribe('__redis__:invalidate');
  const data = new Redis({ host: '127.0.0.1', port });
  await data.client('SETNAME', name);
  expect(await data.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(subscriberId))).to.equal('OK');
  for (const key of keys) await data.get(key);
  return { data, subscriber, subscriberId };
}

/** Runs the built `hermes` executable (dist/bin.js, built by `npm test`) as a user would. */
function bin(...argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['dist/bin.js', ...argv], { encoding: 'utf8', timeout: 20_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('hermes CLI', function () {
  let server: RedisServer;
  let redis: Redis;

  before(async function () {
    server = await startRedisServer();
    redis = new Redis(server.port, '127.0.0.1');
  });

  after(async function () {
    redis.disconnect();
    await server.stop();
  });

  it('lists every script with its SHA1, KEYS and ARGV, as text and as JSON', async function () {
    const { code, out } = await cli('scripts');
    expect(code).to.equal(0);
    for (const script of listRedisScripts()) {
      expect(out).to.include(script.sha);
      expect(out).to.include(script.file);
    }
    expect(out).to.match(/KEYS\[1\]\s+entry key/);
    const json = JSON.parse((await cli('scripts', '--json')).out) as Array<{ name: string; sha: string; keys: unknown[] }>;
    expect(json.map((s) => s.name).sort()).to.deep.equal(listRedisScripts().map((s) => s.name).sort());
    expect(json.every((s) => /^[0-9a-f]{40}$/.test(s.sha) && s.keys.length > 0)).to.equal(true);
  });

  it('shows the exact text the server runs: its SHA1 is the one the server computes', async function () {
    const { code, out } = await cli('scripts', 'show', 'read');
    expect(code).to.equal(0);
    const script = listRedisScripts().find((s) => s.name === 'read');
    expect(`${out}\n`).to.equal(script?.source);
    expect(await redis.script('LOAD', `${out}\n`)).to.equal(script?.sha);
  });

  it('loads the scripts, and check reports which are in the script cache', async function () {
    await redis.script('FLUSH');
    const before = await cli('scripts', 'check', '--url', server.url, '--json');
    expect(before.code).to.equal(3);
    expect((JSON.parse(before.out) as { allPresent: boolean }).allPresent).to.equal(false);
    const load = await cli('scripts', 'load', '--url', server.url);
    expect(load.code).to.equal(0);
    expect(load.out.split('\n')).to.have.length(listRedisScripts().length);
    const after = await cli('scripts', 'check', '--url', server.url);
    expect(after.code).to.equal(0);
    expect(after.out).not.to.include('missing');
    expect(after.out.match(/present/g)).to.have.length(listRedisScripts().length);
  });

  it('inspects a prefix: entries, tags, locks and memory', async function () {
    const cache = new Hermes(RedisBackend, { host: '127.0.0.1', port: server.port, prefix: 'cliinspect' });
    const f = cache.wrap(async function f(n: number) {
      return 'x'.repeat(100) + String(n);
    }, { tags: ['a', 'b'] });
    for (let n = 0; n < 5; n++) await f(n);
    await redis.set('cliinspect:lock:f:manual', 'token', 'PX', 60_000);
    await redis.set('cliinspectother:entry:x:1', 'not mine');
    const { code, out } = await cli('inspect', '--url', server.url, '--prefix', 'cliinspect', '--json');
    expect(code).to.equal(0);
    const report = JSON.parse(out) as { keys: Record<string, number>; memoryBytes: { total: number } };
    expect(report.keys).to.deep.equal({ entries: 5, tags: 2, locks: 1, other: 0 });
    expect(report.memoryBytes.total).to.be.above(5 * 100);
    const text = await cli('inspect', '--url', server.url, '--prefix', 'cliinspect');
    expect(text.out).to.match(/entries\s+5/);
    await cache.close();
  });

  it('inspect shows client-side caching: the tracking client, its redirect, then the redirect broken once its target is gone', async function () {
    await redis.set('clitrack:a', '1');
    await redis.set('clitrack:b', '2');
    const { data, subscriber, subscriberId } = await trackingPair(server.port, 'cli-near-cache', ['clitrack:a', 'clitrack:b']);
    try {
      const json = await cli('inspect', '--url', server.url, '--prefix', 'clitrack', '--json');
      expect(json.code).to.equal(0);
      const report = JSON.parse(json.out) as TrackingReport;
      const node = report.tracking[0];
      expect(node?.info.tracking_clients).to.be.at.least(1);
      expect(node?.info.tracking_total_keys).to.be.above(0);
      expect(node?.info.tracking_total_items).to.be.above(0);
      expect(node?.info.tracking_total_prefixes).to.be.a('number');
      expect(node?.trackingTableMaxKeys).to.be.a('number');
      expect(trackingClientNamed(report, 'cli-near-cache')).to.deep.include({
        redir: subscriberId,
        redirectConnected: true,
        redirectBroken: false,
      });
      const text = await cli('inspect', '--url', server.url, '--prefix', 'clitrack');
      expect(text.out).to.match(/tracking_total_keys\s+[1-9]/);
      expect(text.out).to.match(/tracking-table-max-keys\s+\d+/);
      expect(text.out).to.match(new RegExp(`name cli-near-cache\\s+redirect -> ${subscriberId} \\(connected\\)`));
      expect(text.out).not.to.match(/REDIRECT BROKEN/);

      subscriber.disconnect();
      await untilGone(redis, subscriberId);
      const after = JSON.parse((await cli('inspect', '--url', server.url, '--prefix', 'clitrack', '--json')).out) as TrackingReport;
      expect(trackingClientNamed(after, 'cli-near-cache')).to.deep.include({
        redir: subscriberId,
        redirectConnected: false,
        redirectBroken: true,
      });
      expect(after.tracking[0]?.clients).to.deep.include({ brokenRedirects: 1 });
      const afterText = await cli('inspect', '--url', server.url, '--prefix', 'clitrack');
      expect(afterText.out).to.match(new RegExp(`name cli-near-cache\\s+redirect -> ${subscriberId}\\s+REDIRECT BROKEN`));
      expect(afterText.out).to.match(/clients with tracking on: 1, 1 with a redirect broken/);
    } finally {
      subscriber.disconnect();
      data.disconnect();
      await redis.del('clitrack:a', 'clitrack:b');
    }
  });

  it('inspect tells a tracking client without a redirect on RESP3 from one on RESP2, which cannot be sent invalidations', async function () {
    const resp3 = new Redis({ host: '127.0.0.1', port: server.port });
    const resp2 = new Redis({ host: '127.0.0.1', port: server.port, protocol: 2 });
    try {
      await resp3.client('SETNAME', 'cli-self-3');
      await resp2.client('SETNAME', 'cli-self-2');
      for (const client of [resp3, resp2]) await client.call('CLIENT', 'TRACKING', 'ON');
      const report = JSON.parse((await cli('inspect', '--url', server.url, '--json')).out) as TrackingReport;
      for (const [name, resp] of [['cli-self-3', 3], ['cli-self-2', 2]] as const) {
        expect(trackingClientNamed(report, name)).to.deep.include({ redir: 0, redirectConnected: null, redirectBroken: false, resp });
      }
      const text = (await cli('inspect', '--url', server.url)).out;
      expect(text).to.match(/name cli-self-3\s+no redirect \(RESP3 pushes on its own connection\)/);
      expect(text).to.match(/name cli-self-2\s+no redirect, RESP2 \(its invalidations cannot be delivered\)/);
    } finally {
      resp3.disconnect();
      resp2.disconnect();
    }
  });

  it('inspect lists at most the first tracking clients, broken redirects first, and counts the rest', async function () {
    const pairs = [];
    for (const name of ['cli-limit-1', 'cli-limit-2', 'cli-limit-3']) pairs.push(await trackingPair(server.port, name, ['clilimit:k']));
    try {
      const broken = pairs[2];
      broken?.subscriber.disconnect();
      await untilGone(redis, broken?.subscriberId ?? -1);
      const report = await readTracking(redis, 2);
      if (!report.clients.listed) throw new Error('CLIENT LIST was not read');
      expect(report.clients).to.deep.include({ total: 3, brokenRedirects: 1, more: 1 });
      expect(report.clients.shown.map((c) => c.name)).to.deep.equal(['cli-limit-3', 'cli-limit-1']);
    } finally {
      for (const { data, subscriber } of pairs) {
        subscriber.disconnect();
        data.disconnect();
      }
    }
  });

  it('inspect carries on when the ACL refuses CONFIG and CLIENT LIST: max keys unknown, clients not listed', async function () {
    await redis.call('ACL', 'SETUSER', 'cli-limited', 'reset', 'on', '>secret', '~*', '+@all', '-config', '-client|list');
    try {
      const url = `redis://cli-limited:secret@127.0.0.1:${server.port}`;
      const json = await cli('inspect', '--url', url, '--json');
      expect(json.code).to.equal(0);
      const node = (JSON.parse(json.out) as TrackingReport).tracking[0];
      expect(node?.trackingTableMaxKeys).to.equal('unknown');
      expect(node?.clients.listed).to.equal(false);
      expect(node?.info.tracking_clients).to.be.a('number');
      const text = await cli('inspect', '--url', url);
      expect(text.code).to.equal(0);
      expect(text.out).to.match(/tracking-table-max-keys\s+unknown/);
      expect(text.out).to.match(/CLIENT LIST refused \(NOPERM/);
    } finally {
      await redis.call('ACL', 'DELUSER', 'cli-limited');
    }
  });

  it('cleans by tag and cleans a whole prefix, leaving other prefixes alone', async function () {
    const cache = new Hermes(RedisBackend, { host: '127.0.0.1', port: server.port, prefix: 'cliclean' });
    let calls = 0;
    const f = cache.wrap(async function f(n: number) {
      calls++;
      return n;
    }, { tags: ['t'] });
    await f(1);
    await f(1);
    expect(calls).to.equal(1);
    const byTag = await cli('clean', '--url', server.url, '--prefix', 'cliclean', '--tag', 't');
    expect(byTag.code).to.equal(0);
    await f(1);
    expect(calls).to.equal(2);
    await redis.set('clicleanother:entry:x:1', 'keep');
    const all = await cli('clean', '--url', server.url, '--prefix', 'cliclean', '--yes', '--json');
    expect(all.code).to.equal(0);
    expect((JSON.parse(all.out) as { removedKeys: number }).removedKeys).to.equal(2); // entry + tag
    expect(await redis.keys('cliclean:*')).to.deep.equal([]);
    expect(await redis.get('clicleanother:entry:x:1')).to.equal('keep');
    await cache.close();
  });

  it('inspect --key decodes an entry written with registered classes, naming the classes it shows as plain objects', async function () {
    class Money {
      constructor(readonly cents: number, readonly currency: string) {}
      toString(): string { return `${this.cents / 100} ${this.currency}`; }
    }
    const cache = new Hermes(RedisBackend, { host: '127.0.0.1', port: server.port, prefix: 'cliclasses', ttl: 600, classes: [Money] });
    const price = cache.wrap(async function price(n: number) {
      return { n, total: new Money(n * 100, 'EUR'), parts: [new Money(50, 'EUR')] };
    });
    try {
      const value = await price(3);
      expect(value.total).to.be.instanceOf(Money);
      const key = price.key(3);
      const report = JSON.parse((await cli('inspect', '--url', server.url, '--key', key, '--json')).out) as EntryReport;
      expect(report.decodeError).to.equal(undefined);
      expect(report.classes).to.deep.equal(['Money']);
      expect(report.value).to.deep.equal({ n: 3, total: { cents: 300, currency: 'EUR' }, parts: [{ cents: 50, currency: 'EUR' }] });
      const text = (await cli('inspect', '--url', server.url, '--key', key)).out;
      expect(text).to.match(/value\s+\{ n: 3, total: \{ cents: 300, currency: 'EUR' \}/);
      expect(text).to.match(/classes\s+Money {2}\(instances shown as plain objects/);
      // The cache itself still refuses an entry naming a class it does not know (a miss there).
      const other = new Hermes(RedisBackend, { host: '127.0.0.1', port: server.port, prefix: 'cliclasses', ttl: 600 });
      try {
        expect((await other.backend.dump())[key]).to.be.instanceOf(Error);
      } finally {
        await other.close();
      }
    } finally {
      await cache.close();
    }
  });

  it('inspect --key shows one entry: value, header, fresh or stale, TTL, lock holder; with --tag whether its tags match', async function () {
    const cache = new Hermes(RedisBackend, { host: '127.0.0.1', port: server.port, prefix: 'clikey', ttl: 600, grace: 600 });
    const f = cache.wrap(async function square(n: number) {
      return { n, squared: n * n };
    }, { tags: ['math', 'avg'] });
    try {
      await f(7);
      const key = f.key(7);
      const fresh = await cli('inspect', '--url', server.url, '--key', key, '--json');
      expect(fresh.code).to.equal(0);
      const report = JSON.parse(fresh.out) as EntryReport;
      expect(report).to.deep.include({ key, present: true, fresh: true, value: { n: 7, squared: 49 }, tags: null });
      expect(report.tagHash).to.match(/^[0-9a-f]{16}$/);
      expect(Date.parse(report.freshUntil ?? '')).to.be.above(Date.now() + 500_000);
      expect(report.pttlMs).to.be.above(500_000);
      expect(report.lock).to.deep.equal({ key: key.replace(':entry:', ':lock:'), held: false });
      // The v2 header: when it was stored and how long the function took.
      expect(report.format).to.equal('2');
      expect(Date.parse(report.storedAt ?? '')).to.be.within(Date.now() - 60_000, Date.now() + 1000);
      expect(report.ageMs).to.be.within(-1000, 60_000);
      expect(report.computeMs).to.be.within(0, 1000);

      const text = (await cli('inspect', '--url', server.url, '--key', key)).out;
      expect(text).to.match(/value\s+\{ n: 7, squared: 49 \}/);
      expect(text).to.match(/fresh until\s+\S+\s+\(fresh, \d+\.\d s left/);
      expect(text).to.match(/ttl\s+\d+ ms left \(PTTL\)/);
      expect(text).to.match(/stored at\s+\S+\s+\(\d+\.\d s ago\)/);
      expect(text).to.match(/computed in\s+\d+ ms/);
      expect(text).to.match(/lock\s+not held/);
      expect(text).to.include('stores a hash of its tags\' versions, not their names');

      const matching = JSON.parse((await cli('inspect', '--url', server.url, '--key', key, '--tag', 'math', '--tag', 'avg', '--json')).out) as EntryReport;
      expect(matching.tagsMatch).to.equal(true);
      expect(matching.tags?.map((t) => t.tag)).to.deep.equal(['math', 'avg']);
      expect(matching.tags?.map((t) => t.version)).to.deep.equal([await redis.get('clikey:tag:math'), await redis.get('clikey:tag:avg')]);
      const swapped = JSON.parse((await cli('inspect', '--url', server.url, '--key', key, '--tag', 'avg', '--tag', 'math', '--json')).out) as EntryReport;
      expect(swapped.tagsMatch).to.equal(false);

      // Invalidated by tag: the header's hash no longer matches; a lock held, the entry made stale.
      await cache.clean(['avg']);
      await redis.set('clikey:tag:avg', 'v2');
      await redis.set(report.lock.key, 'token-of-the-holder', 'PX', 60_000);
      const bytes = await redis.getBuffer(key);
      if (bytes === null) throw new Error('the entry is gone');
      bytes.write(String(Date.now() - 5000).padStart(13, '0'), 20, 'latin1');
      await redis.set(key, bytes, 'PX', 300_000);
      const after = JSON.parse((await cli('inspect', '--url', server.url, '--key', key, '--tag', 'math', '--tag', 'avg', '--json')).out) as EntryReport;
      expect(after).to.deep.include({ fresh: false, tagsMatch: false });
      expect(after.lock).to.deep.include({ held: true, holder: 'token-of-the-holder' });
      expect(after.lock.pttlMs).to.be.within(1, 60_000);
      const afterText = (await cli('inspect', '--url', server.url, '--key', key, '--tag', 'math', '--tag', 'avg')).out;
      expect(afterText).to.match(/STALE for \d+\.\d s/);
      expect(afterText).to.match(/lock\s+held by token-of-the-holder, \d+ ms left/);
      expect(afterText).to.match(/tag 'avg'\s+version v2/);
      expect(afterText).to.match(/tags match\s+NO/);

      await f.invalidate(7);
      const gone = await cli('inspect', '--url', server.url, '--key', key);
      expect(gone.code).to.equal(0);
      expect(gone.out).to.match(/absent/);
      expect((await failure('inspect', '--url', server.url, '--key', 'nokey')).exitCode).to.equal(2);
      expect((await failure('inspect', '--url', server.url, '--prefix', 'other', '--key', key)).message).to.match(/not an entry key under prefix 'other'/);
    } finally {
      await cache.close();
    }
  });

  it('clean --tag says when no tag of that name existed, and still succeeds', async function () {
    const cache = new Hermes(RedisBackend, { host: '127.0.0.1', port: server.port, prefix: 'clinotag' });
    const f = cache.wrap(async function g(n: number) {
      return n;
    }, { tags: ['real'] });
    try {
      await f(1);
      const text = await cli('clean', '--url', server.url, '--prefix', 'clinotag', '--tag', 'real', '--tag', 'nosuchtag');
      expect(text.code).to.equal(0);
      expect(text.out).to.match(/no tag 'nosuchtag' existed/);
      expect(text.out).not.to.match(/no tag 'real'/);
      const json = await cli('clean', '--url', server.url, '--prefix', 'clinotag', '--tag', 'nosuchtag', '--json');
      expect(json.code).to.equal(0);
      expect((JSON.parse(json.out) as { absentTags: string[] }).absentTags).to.deep.equal(['nosuchtag']);
    } finally {
      await cache.close();
    }
  });

  it('clean without --tag asks on a terminal, and needs --yes without one', async function () {
    await redis.set('cliconfirm:entry:x:1', 'v');
    const declined = await cliOnTerminal('n', 'clean', '--url', server.url, '--prefix', 'cliconfirm');
    expect(declined.code).to.equal(0);
    expect(declined.asked).to.have.length(1);
    expect(declined.asked[0]).to.match(/remove all 1 keys under 'cliconfirm:'\? \[y\/N\]/);
    expect(declined.out).to.match(/nothing removed/);
    expect(await redis.get('cliconfirm:entry:x:1')).to.equal('v');

    const noTerminal = bin('clean', '--url', server.url, '--prefix', 'cliconfirm');
    expect(noTerminal.status).to.equal(2);
    expect(noTerminal.stderr).to.match(/add --yes/);
    expect(await redis.get('cliconfirm:entry:x:1')).to.equal('v');

    const confirmed = await cliOnTerminal('y', 'clean', '--url', server.url, '--prefix', 'cliconfirm');
    expect(confirmed.code).to.equal(0);
    expect(confirmed.out).to.match(/removed 1 keys/);
    expect(await redis.get('cliconfirm:entry:x:1')).to.equal(null);

    await redis.set('cliconfirm:entry:x:2', 'v');
    const yes = await cliOnTerminal('n', 'clean', '--url', server.url, '--prefix', 'cliconfirm', '--yes');
    expect(yes.asked).to.deep.equal([]);
    expect(await redis.get('cliconfirm:entry:x:2')).to.equal(null);
  });

  it('prints its version with --version and -v', function () {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const result = bin(flag);
      expect(result.status, flag).to.equal(0);
      expect(result.stdout.trim(), flag).to.equal(version);
    }
  });

  it('says an unknown option in one balanced line', function () {
    const result = bin('inspect', '--frobnicate');
    expect(result.status).to.equal(2);
    expect(result.stderr.trim()).to.equal("hermes: unknown option '--frobnicate' (see hermes --help)");
  });

  it('exits non-zero with a one-line message on a bad URL, an unreachable server, bad usage', function () {
    const bad = bin('inspect', '--url', 'http://localhost');
    expect(bad.status).to.equal(2);
    expect(bad.stderr.trim().split('\n')).to.have.length(1);
    expect(bad.stderr).to.match(/redis:\/\//);
    const unreachable = bin('scripts', 'check', '--url', 'redis://127.0.0.1:1');
    expect(unreachable.status).to.equal(1);
    expect(unreachable.stderr.trim()).to.match(/^hermes: cannot reach Redis at 127\.0\.0\.1:1: .*ECONNREFUSED/);
    expect(bin('frobnicate').status).to.equal(2);
    expect(bin('inspect').stderr).to.match(/--url is required/);
    expect(bin('scripts', 'show', 'nope').stderr).to.match(/no script named 'nope'/);
  });

  it('has --help for every command', function () {
    for (const command of [[], ['scripts'], ['inspect'], ['clean']]) {
      const result = bin(...command, '--help');
      expect(result.status, command.join(' ')).to.equal(0);
      expect(result.stdout).to.match(/Usage:/);
    }
  });
});
