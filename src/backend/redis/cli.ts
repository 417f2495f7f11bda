/**
 * `hermes`: the operators' CLI. Shows the Lua scripts exactly as the server runs them, loads
 * and checks them against a server, inspects and cleans a cache's key space.
 *
 * Exit codes: 0 success; 1 the server failed or could not be reached; 2 bad usage (an unknown
 * command or option, a bad URL); 3 `scripts check` found scripts missing from the server.
 *
 * @module
 */

import { parseArgs } from 'node:util';
import type { Cluster, Redis as RedisClient } from 'ioredis';
import { EntryCodec } from '../../codec.js';
import { Keyspace } from '../../keys.js';
import { formatTracking, readTracking } from './cli-tracking.js';
import { listRedisScripts, type RedisScript } from './scripts.js';

const HELP: Record<string, string> = {
  main: `hermes — operate hermes caches on Redis

Usage:
  hermes scripts                       list the Lua scripts: name, SHA1, KEYS, ARGV
  hermes scripts show NAME             print the exact text the server runs
  hermes scripts load  --url URL       SCRIPT LOAD every script (preload)
  hermes scripts check --url URL       report which scripts are in the server's script cache
  hermes inspect --url URL [--prefix P]
                                       count entries, tags and locks; memory used;
                                       client-side caching (CLIENT TRACKING) state
  hermes clean --url URL [--prefix P] [--tag T ...]
                                       invalidate tags, or remove every key under the prefix

Options:
  --url URL      redis://[user:password@]host[:port][/db] or rediss://… (TLS)
  --cluster      URL is one node of a Redis Cluster: work on every master
  --buckets N    on a cluster, the caches' bucket count (default: 64), for clean --tag
  --prefix P     the cache's prefix (default: cache)
  --json         machine-readable output
  -h, --help     help for a command (hermes COMMAND --help)

Exit codes: 0 ok, 1 server error or unreachable, 2 bad usage, 3 scripts missing (check).`,
  scripts: `Usage:
  hermes scripts [--json]              list the scripts: name, file, SHA1, number of keys,
                                       and the KEYS and ARGV their headers document
  hermes scripts show NAME             print the exact Lua text sent with SCRIPT LOAD
  hermes scripts load --url URL [--cluster] [--json]
                                       SCRIPT LOAD every script (on a cluster: on every
                                       master); prints each SHA1
  hermes scripts check --url URL [--cluster] [--json]
                                       SCRIPT EXISTS for every script (on a cluster: on
                                       every master); exit code 3 if any is missing (the
                                       backend loads missing scripts by itself on first
                                       use: this is for operators who preload or audit)`,
  inspect: `Usage:
  hermes inspect --url URL [--cluster] [--prefix P] [--json]

Scans the keys under P: (SCAN, never KEYS; on a cluster, on every master) and reports how many
are entries, tags and locks, and the memory they use (MEMORY USAGE of every key, pipelined).
On a cluster, each tag counts once per bucket that holds a copy of it.

Then, per server (on a cluster, per master), the client-side caching state: the INFO counters
tracking_clients, tracking_total_keys, tracking_total_items and tracking_total_prefixes (those
the server has), tracking-table-max-keys (CONFIG GET; 'unknown' if refused), and the clients
with tracking on (CLIENT LIST, flag t; the first 50, broken redirects first): id, addr, name,
the client their invalidations are redirected to, and whether it is still connected. A
redirect to a client that is gone is flagged REDIRECT BROKEN: that client's invalidations are
lost. A command the ACL refuses is reported, and inspect carries on.`,
  clean: `Usage:
  hermes clean --url URL [--cluster [--buckets N]] [--prefix P] --tag T [--tag T2 ...] [--json]
      invalidate every entry carrying any of the tags (one key deleted per tag; on a
      cluster, one per tag and bucket: --buckets must be the caches' bucket count)
  hermes clean --url URL [--cluster] [--prefix P] [--json]
      remove every key under P: (SCAN + UNLINK; never FLUSHDB; on a cluster, every master)`,
};

/** A failure to report in one line, with its exit code. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

interface Io {
  out(text: string): void;
}

/**
 * Runs the CLI with `argv` (without the node and script paths) and returns the exit code.
 * Exported for tests; the bin calls it with `process.argv.slice(2)`.
 */
export async function main(argv: readonly string[], io: Io = { out: (t) => process.stdout.write(`${t}\n`) }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        cluster: { type: 'boolean', default: false },
        buckets: { type: 'string' },
        prefix: { type: 'string', default: 'cache' },
        tag: { type: 'string', multiple: true },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new CliError(`${(error as Error).message} (see hermes --help)`, 2);
  }
  const { values, positionals } = parsed;
  const [command, sub, ...rest] = positionals;
  if (command === undefined || (values.help && !(command in HELP))) {
    io.out(HELP.main ?? '');
    return command === undefined && !values.help ? 2 : 0;
  }
  if (values.help) {
    io.out(HELP[command] ?? HELP.main ?? '');
    return 0;
  }
  const json = values.json;
  const prefix = values.prefix;
  if (prefix.length === 0) throw new CliError('--prefix must not be empty', 2);
  const buckets = values.buckets === undefined ? 64 : Number(values.buckets);
  if (!Number.isSafeInteger(buckets) || buckets < 1 || buckets > 16_384) {
    throw new CliError(`--buckets must be an integer from 1 to 16384, got '${String(values.buckets)}'`, 2);
  }
  if (values.buckets !== undefined && !values.cluster) throw new CliError('--buckets applies to a cluster only (add --cluster)', 2);
  const open = (): Promise<Connection> => connect(values.url, values.cluster);

  switch (command) {
    case 'scripts': {
      if (sub === undefined) return listScripts(io, json);
      if (sub === 'show') {
        if (rest.length !== 1) throw new CliError('usage: hermes scripts show NAME', 2);
        return showScript(io, rest[0] as string);
      }
      if (sub === 'load' || sub === 'check') {
        const connection = await open();
        try {
          return sub === 'load' ? await loadScripts(io, connection, json) : await checkScripts(io, connection, json);
        } finally {
          connection.client.disconnect();
        }
      }
      throw new CliError(`unknown command 'scripts ${sub}' (see hermes scripts --help)`, 2);
    }
    case 'inspect': {
      if (sub !== undefined) throw new CliError(`unexpected argument '${sub}' (see hermes inspect --help)`, 2);
      const connection = await open();
      try {
        return await inspect(io, connection, prefix, json);
      } finally {
        connection.client.disconnect();
      }
    }
    case 'clean': {
      if (sub !== undefined) throw new CliError(`unexpected argument '${sub}' (see hermes clean --help)`, 2);
      const tags = values.tag ?? [];
      if (tags.some((t) => t.length === 0)) throw new CliError('--tag must not be empty', 2);
      const connection = await open();
      try {
        return await clean(io, connection, prefix, tags, buckets, json);
      } finally {
        connection.client.disconnect();
      }
    }
    default:
      throw new CliError(`unknown command '${command}' (see hermes --help)`, 2);
  }
}

function listScripts(io: Io, json: boolean): number {
  const scripts = listRedisScripts();
  if (json) {
    io.out(
      JSON.stringify(
        scripts.map((s) => ({
          name: s.name,
          file: s.file,
          sha: s.sha,
          numberOfKeys: s.numberOfKeys ?? null,
          keys: s.header.keys,
          argv: s.header.argv,
          summary: s.header.summary,
        })),
        null,
        2,
      ),
    );
    return 0;
  }
  for (const s of scripts) {
    io.out(`${s.name}  (${s.file})  sha1 ${s.sha}  keys: ${s.numberOfKeys ?? 'variable'}`);
    io.out(`  ${s.header.summary.replace(/\s+/g, ' ')}`);
    for (const k of s.header.keys) io.out(`  KEYS[${k.index}]  ${k.description}`);
    for (const a of s.header.argv) io.out(`  ARGV[${a.index}]  ${a.description}`);
    io.out('');
  }
  return 0;
}

function findScript(name: string): RedisScript {
  const scripts = listRedisScripts();
  const script = scripts.find((s) => s.name === name || s.file === name || s.sha === name);
  if (!script) {
    throw new CliError(`no script named '${name}'; the scripts are: ${scripts.map((s) => s.name).join(', ')}`, 2);
  }
  return script;
}

function showScript(io: Io, name: string): number {
  io.out(findScript(name).source.replace(/\n$/, ''));
  return 0;
}

async function loadScripts(io: Io, connection: Connection, json: boolean): Promise<number> {
  const loaded: Array<{ name: string; sha: string }> = [];
  for (const script of listRedisScripts()) {
    for (const node of connection.masters) {
      const sha = String(await node.script('LOAD', script.source));
      if (sha !== script.sha) throw new CliError(`server answered SHA1 ${sha} for ${script.name}, expected ${script.sha}`, 1);
    }
    loaded.push({ name: script.name, sha: script.sha });
  }
  if (json) io.out(JSON.stringify({ loaded }, null, 2));
  else for (const { name, sha } of loaded) io.out(`loaded  ${name}  ${sha}`);
  return 0;
}

async function checkScripts(io: Io, connection: Connection, json: boolean): Promise<number> {
  const scripts = listRedisScripts();
  const present = scripts.map(() => true);
  for (const node of connection.masters) {
    const exists = (await node.script('EXISTS', ...scripts.map((s) => s.sha))) as number[];
    scripts.forEach((_, i) => {
      if (exists[i] !== 1) present[i] = false;
    });
  }
  const report = scripts.map((s, i) => ({ name: s.name, sha: s.sha, present: present[i] === true }));
  if (json) io.out(JSON.stringify({ scripts: report, allPresent: report.every((r) => r.present) }, null, 2));
  else for (const r of report) io.out(`${r.present ? 'present' : 'missing'}  ${r.name}  ${r.sha}`);
  return report.every((r) => r.present) ? 0 : 3;
}

/** Every key under `prefix:` on one server, by SCAN in batches. */
async function* scanPrefix(client: RedisClient, prefix: string): AsyncGenerator<string[]> {
  const match = `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}:*`;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) yield keys;
  } while (cursor !== '0');
}

async function inspect(io: Io, connection: Connection, prefix: string, json: boolean): Promise<number> {
  const keyspace = new Keyspace(prefix);
  const counts = { entries: 0, tags: 0, locks: 0, other: 0 };
  const bytes = { entries: 0, tags: 0, locks: 0, other: 0 };
  for (const client of connection.masters) for await (const keys of scanPrefix(client, prefix)) {
    const pipeline = client.pipeline();
    for (const key of keys) pipeline.memory('USAGE', key);
    const results = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const kind = keyspace.kindOf(key);
      const bucket = kind === 'entry' ? 'entries' : kind === 'tag' ? 'tags' : kind === 'lock' ? 'locks' : 'other';
      counts[bucket]++;
      const usage = results[i]?.[1];
      bytes[bucket] += typeof usage === 'number' ? usage : 0;
    });
  }
  const total = bytes.entries + bytes.tags + bytes.locks + bytes.other;
  const tracking = [];
  for (const client of connection.masters) tracking.push(await readTracking(client));
  if (json) {
    io.out(JSON.stringify({ prefix, keys: counts, memoryBytes: { ...bytes, total }, tracking }, null, 2));
    return 0;
  }
  const kb = (n: number): string => (n < 10_240 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`);
  io.out(`prefix ${prefix}`);
  io.out(`  entries  ${String(counts.entries).padStart(9)}  ${kb(bytes.entries)}`);
  io.out(`  tags     ${String(counts.tags).padStart(9)}  ${kb(bytes.tags)}`);
  io.out(`  locks    ${String(counts.locks).padStart(9)}  ${kb(bytes.locks)}`);
  if (counts.other > 0) io.out(`  other    ${String(counts.other).padStart(9)}  ${kb(bytes.other)}`);
  io.out(`  memory   ${kb(total)} (MEMORY USAGE, summed)`);
  for (const node of tracking) for (const line of formatTracking(node)) io.out(line);
  return 0;
}

async function clean(io: Io, connection: Connection, prefix: string, tags: readonly string[], buckets: number, json: boolean): Promise<number> {
  const { RedisBackend } = await import('./backend.js');
  const backend = new RedisBackend({ client: connection.client, buckets });
  backend.attach({ prefix, codec: new EntryCodec() });
  try {
    if (tags.length > 0) {
      const keyspace = new Keyspace(prefix);
      await backend.cleanTags(prefix, tags.map((tag) => keyspace.tagKey(tag)));
      if (json) io.out(JSON.stringify({ prefix, invalidatedTags: tags }, null, 2));
      else io.out(`invalidated every entry tagged ${tags.map((t) => `'${t}'`).join(', ')} under ${prefix}:`);
    } else {
      let before = 0;
      for (const client of connection.masters) for await (const keys of scanPrefix(client, prefix)) before += keys.length;
      await backend.clear(prefix);
      if (json) io.out(JSON.stringify({ prefix, removedKeys: before }, null, 2));
      else io.out(`removed ${before} keys under ${prefix}:`);
    }
  } finally {
    await backend.close();
  }
  return 0;
}

/** The two client classes of ioredis, imported when a command needs a server. */
interface IoRedis {
  readonly Redis: typeof import('ioredis').Redis;
  readonly Cluster: typeof import('ioredis').Cluster;
}

/** What the commands work on: the client, and the servers holding the data (every master). */
interface Connection {
  /** A standalone client, or a cluster client. */
  readonly client: RedisClient | Cluster;
  /** The servers to scan and load scripts on: the client itself, or every master. */
  readonly masters: readonly RedisClient[];
}

async function connect(url: string | undefined, cluster: boolean): Promise<Connection> {
  if (url === undefined) throw new CliError('--url is required, e.g. --url redis://localhost:6379/0', 2);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`--url '${url}' is not a URL; expected redis://[user:password@]host[:port][/db]`, 2);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new CliError(`--url '${url}' must start with redis:// or rediss://`, 2);
  }
  let ioredis: IoRedis;
  try {
    const { Redis, Cluster } = await import('ioredis');
    ioredis = { Redis, Cluster };
  } catch {
    throw new CliError("the Redis commands need the 'ioredis' package: npm install ioredis", 1);
  }
  if (cluster) return connectCluster(ioredis, parsed);
  const client = new ioredis.Redis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  client.on('error', (error: Error) => (lastError = error)); // reported by connect() below
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const reason = (lastError ?? (error as Error)).message;
    throw new CliError(`cannot reach Redis at ${parsed.host || url}: ${reason}`, 1);
  }
  return { client, masters: [client] };
}

/** A cluster client started from the node in `url`, once it knows the slots and masters. */
async function connectCluster(ioredis: IoRedis, url: URL): Promise<Connection> {
  if (url.pathname !== '' && url.pathname !== '/' && url.pathname !== '/0') {
    throw new CliError(`--url '${url.href}' names database ${url.pathname.slice(1)}, but a Redis Cluster has database 0 only`, 2);
  }
  const client = new ioredis.Cluster([{ host: url.hostname || 'localhost', port: url.port === '' ? 6379 : Number(url.port) }], {
    lazyConnect: true,
    clusterRetryStrategy: () => null,
    redisOptions: {
      connectTimeout: 3000,
      maxRetriesPerRequest: 0,
      username: url.username === '' ? undefined : decodeURIComponent(url.username),
      password: url.password === '' ? undefined : decodeURIComponent(url.password),
      tls: url.protocol === 'rediss:' ? {} : undefined,
    },
  });
  let lastError: Error | undefined;
  client.on('error', (error: Error) => (lastError = error));
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const reason = (lastError ?? (error as Error)).message;
    throw new CliError(`cannot reach the Redis Cluster at ${url.host}: ${reason}`, 1);
  }
  const masters = client.nodes('master');
  if (masters.length === 0) {
    client.disconnect();
    throw new CliError(`the Redis Cluster at ${url.host} reports no master`, 1);
  }
  return { client, masters };
}

/** Runs {@link main} and exits; prints a one-line message on failure. */
export async function run(argv: readonly string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (error) {
    const code = error instanceof CliError ? error.exitCode : 1;
    process.stderr.write(`hermes: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = code;
  }
}
