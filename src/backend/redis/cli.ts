/**
 * `hermes`: the operators' CLI. Shows the Lua scripts exactly as the server runs them, loads
 * and checks them against a server, inspects and cleans a cache's key space.
 *
 * Exit codes: 0 success; 1 the server failed or could not be reached; 2 bad usage (an unknown
 * command or option, a bad URL, `clean` of a whole prefix without `--yes` and no terminal to
 * ask on); 3 `scripts check` found scripts missing from the server.
 *
 * @module
 */

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { inspect as inspectValue, parseArgs } from 'node:util';
import type { Cluster, Redis as RedisClient } from 'ioredis';
import { computeMsOf, EntryCodec, FRESH_UNTIL_OFFSET, HEADER_LENGTH, TAG_HASH_OFFSET, freshUntilOf, isPlainJson, storedAtOf, tagHash } from '../../codec.js';
import { type EntryRef, idStart, Keyspace } from '../../keys.js';
import { BucketLayout } from './buckets.js';
import { formatTracking, readTracking } from './cli-tracking.js';
import { listRedisScripts, type RedisScript } from './scripts.js';
import { redisUrlProblem } from './url.js';

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
  hermes inspect --url URL --key K [--tag T ...]
                                       one entry: value, fresh or stale, TTL, lock holder,
                                       and whether it matches the tags' current versions
  hermes clean --url URL [--prefix P] --tag T [--tag T2 ...]
                                       invalidate every entry carrying any of the tags
  hermes clean --url URL [--prefix P] [--yes]
                                       remove every key under the prefix (asks first)

Options:
  --url URL      redis://[user:password@]host[:port][/db] or rediss://… (TLS)
  --cluster      URL is one node of a Redis Cluster: work on every master
  --buckets N    on a cluster, the caches' bucket count (default: 64), for clean --tag
  --prefix P     the cache's prefix (default: cache; inspect --key: taken from the key)
  --key K        inspect: an entry key, as fn.key(args) prints it (cache:entry:NAME:HASH)
  --tag T        clean: a tag to invalidate; inspect --key: a tag to check (repeatable)
  --yes          clean without --tag: remove without asking (required without a terminal)
  --json         machine-readable output
  -h, --help     help for a command (hermes COMMAND --help)
  -v, --version  print hermes' version

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
  hermes inspect --url URL [--cluster [--buckets N]] --key K [--tag T ...] [--json]

Scans the keys under P: (SCAN, never KEYS; on a cluster, on every master) and reports how many
are entries, tags and locks, and the memory they use (MEMORY USAGE of every key, pipelined).
On a cluster, each tag counts once per bucket that holds a copy of it.

Then, per server (on a cluster, per master), the client-side caching state: the INFO counters
tracking_clients, tracking_total_keys, tracking_total_items and tracking_total_prefixes (those
the server has), tracking-table-max-keys (CONFIG GET; 'unknown' if refused), and the clients
with tracking on (CLIENT LIST, flag t; the first 50, broken redirects first): id, addr, name,
the client their invalidations are redirected to, and whether it is still connected. A
redirect to a client that is gone is flagged REDIRECT BROKEN: that client's invalidations are
lost. A command the ACL refuses is reported, and inspect carries on.

With --key K (an entry key as fn.key(args) prints it, e.g. cache:entry:square:c4be94f1f3e36935,
or as a cluster stores it, with its bucket; the prefix is the part before :entry:), one entry:
its decoded value (default codec: a cache with a custom serializer or compressor shows an error
in its place; instances of the app's registered classes show as plain objects, their classes
named), the tag hash and fresh-until time of its header, fresh or stale by the server's
TIME, its TTL left (PTTL), and its lock: the holder's token and PTTL, if held. The entry stores a hash of its tags' versions,
not their names: give the entry's tags with --tag, in the order of the wrapper's tags option,
to see their current versions and whether the entry still matches them. On a cluster the keys
are found in the entry's bucket: --buckets must be the caches' bucket count (default: 64).`,
  clean: `Usage:
  hermes clean --url URL [--cluster [--buckets N]] [--prefix P] --tag T [--tag T2 ...] [--json]
      invalidate every entry carrying any of the tags (one key deleted per tag; on a
      cluster, one per tag and bucket: --buckets must be the caches' bucket count)
      A tag that no entry was ever read with (its key absent) is reported as such.
  hermes clean --url URL [--cluster] [--prefix P] [--yes] [--json]
      remove every key under P: (SCAN + UNLINK; never FLUSHDB; on a cluster, every master).
      On a terminal it asks first; otherwise it needs --yes (exit code 2 without it).`,
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

/** Where the CLI writes, and how it asks the person at the terminal, if any. */
interface Io {
  /** Writes one line of output. */
  out(text: string): void;
  /** Whether a person is at the terminal (stdin and stderr are TTYs); `false` if absent. */
  readonly interactive?: boolean;
  /** Asks `question` on the terminal and resolves with the answer. */
  ask?(question: string): Promise<string>;
}

/** The process' own terminal. */
const processIo: Io = {
  out: (t) => process.stdout.write(`${t}\n`),
  interactive: process.stdin.isTTY && process.stderr.isTTY,
  async ask(question) {
    // The question goes to stderr: stdout stays the command's output (--json included).
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
    }
  },
};

/** This package's version, from its package.json (two levels above `backend/redis/`, in `src/` or `dist/`). */
function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return String(manifest.version);
}

/**
 * Runs the CLI with `argv` (without the node and script paths) and returns the exit code.
 * Exported for tests; the bin calls it with `process.argv.slice(2)`.
 */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        cluster: { type: 'boolean', default: false },
        buckets: { type: 'string' },
        prefix: { type: 'string' },
        key: { type: 'string' },
        tag: { type: 'string', multiple: true },
        yes: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    });
  } catch (error) {
    // Node's own text for an unknown option ends in an unbalanced quote: say it in our words.
    const unknown = /^Unknown option '(.*?)'/.exec((error as Error).message);
    if (unknown) throw new CliError(`unknown option '${unknown[1] ?? ''}' (see hermes --help)`, 2);
    throw new CliError(`${(error as Error).message} (see hermes --help)`, 2);
  }
  const { values, positionals } = parsed;
  const [command, sub, ...rest] = positionals;
  if (values.version) {
    io.out(packageVersion());
    return 0;
  }
  if (command === undefined || (values.help && !(command in HELP))) {
    io.out(HELP.main ?? '');
    return command === undefined && !values.help ? 2 : 0;
  }
  if (values.help) {
    io.out(HELP[command] ?? HELP.main ?? '');
    return 0;
  }
  const json = values.json;
  const prefix = values.prefix ?? 'cache';
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
      const tags = values.tag ?? [];
      if (values.key === undefined && tags.length > 0) throw new CliError('inspect takes --tag with --key only (see hermes inspect --help)', 2);
      const ref = values.key === undefined ? undefined : entryRefOf(values.key, values.prefix);
      if (tags.some((t) => t.length === 0)) throw new CliError('--tag must not be empty', 2);
      const connection = await open();
      try {
        if (ref !== undefined) return await inspectEntry(io, connection, ref, tags, buckets, json);
        return await inspect(io, connection, prefix, json);
      } finally {
        connection.client.disconnect();
      }
    }
    case 'clean': {
      if (sub !== undefined) throw new CliError(`unexpected argument '${sub}' (see hermes clean --help)`, 2);
      const tags = values.tag ?? [];
      if (tags.some((t) => t.length === 0)) throw new CliError('--tag must not be empty', 2);
      if (tags.length === 0 && !values.yes && io.interactive !== true) {
        throw new CliError(`clean without --tag removes every key under '${prefix}:'; add --yes to do so without a terminal to confirm on`, 2);
      }
      const connection = await open();
      try {
        return await clean(io, connection, prefix, tags, buckets, json, values.yes);
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

/**
 * The tags of `tags` none of whose stored copies exists: one key per tag on a single server, one
 * per tag and bucket on a cluster. Read just before they are deleted: informative, not atomic.
 */
async function absentTags(connection: Connection, prefix: string, tags: readonly string[], buckets: number): Promise<string[]> {
  const keyspace = new Keyspace(prefix);
  const layout = connection.masters.length > 1 || connection.client.isCluster ? new BucketLayout(buckets) : undefined;
  const absent: string[] = [];
  for (const tag of tags) {
    const tagKey = keyspace.tagKey(tag);
    const copies = layout === undefined ? [tagKey] : Array.from({ length: layout.count }, (_, b) => layout.place(tagKey, idStart(prefix, 'tag'), b));
    const found = await Promise.all(copies.map((key) => connection.client.exists(key)));
    if (found.every((n) => n === 0)) absent.push(tag);
  }
  return absent;
}

async function clean(
  io: Io,
  connection: Connection,
  prefix: string,
  tags: readonly string[],
  buckets: number,
  json: boolean,
  yes: boolean,
): Promise<number> {
  const { RedisBackend } = await import('./backend.js');
  const backend = new RedisBackend({ client: connection.client, buckets });
  backend.attach({ prefix, codec: new EntryCodec() });
  try {
    if (tags.length > 0) {
      const keyspace = new Keyspace(prefix);
      const absent = await absentTags(connection, prefix, tags, buckets);
      await backend.cleanTags(prefix, tags.map((tag) => keyspace.tagKey(tag)));
      if (json) io.out(JSON.stringify({ prefix, invalidatedTags: tags, absentTags: absent }, null, 2));
      else {
        const present = tags.filter((t) => !absent.includes(t));
        if (present.length > 0) io.out(`invalidated every entry tagged ${present.map((t) => `'${t}'`).join(', ')} under ${prefix}:`);
        for (const tag of absent) io.out(`no tag '${tag}' existed under ${prefix}: (its key was absent): no entry was tagged so, nothing to invalidate`);
      }
    } else {
      let before = 0;
      for (const client of connection.masters) for await (const keys of scanPrefix(client, prefix)) before += keys.length;
      if (!yes) {
        const answer = (await io.ask?.(`remove all ${before} keys under '${prefix}:'? [y/N] `)) ?? '';
        if (!/^y(es)?$/i.test(answer.trim())) {
          io.out('nothing removed');
          return 0;
        }
      }
      await backend.clear(prefix);
      if (json) io.out(JSON.stringify({ prefix, removedKeys: before }, null, 2));
      else io.out(`removed ${before} keys under ${prefix}:`);
    }
  } finally {
    await backend.close();
  }
  return 0;
}

/**
 * The entry of `key`: under `prefix` if given, else under the part of `key` before `:entry:`;
 * `key` may also be a cluster's stored key, with its bucket's hash tag.
 * @throws CliError (exit code 2) for a key that is not an entry key
 */
function entryRefOf(key: string, prefix: string | undefined): EntryRef {
  const at = key.indexOf(':entry:');
  const chosen = prefix ?? (at > 0 ? key.slice(0, at) : undefined);
  if (chosen === undefined || chosen.length === 0 || !key.startsWith(`${chosen}:entry:`) || key.length === `${chosen}:entry:`.length) {
    const under = prefix === undefined ? '' : ` under prefix '${prefix}'`;
    throw new CliError(`--key '${key}' is not an entry key${under}: expected PREFIX:entry:NAME:HASH, as fn.key(args) prints it`, 2);
  }
  // A stored key copied from a cluster (`P:entry:{B}:NAME:HASH`): the key the cache names.
  return new Keyspace(chosen).refOf(new BucketLayout(1).unplace(key, chosen));
}

/** What `inspect --key` reports about one entry. */
interface EntryReport {
  key: string;
  storedKey: string;
  present: boolean;
  value?: unknown;
  valueText?: string;
  decodeError?: string;
  /** The classes of the instances in the value (written with `classes`), shown as plain objects. */
  classes?: string[];
  tagHash?: string;
  freshUntil?: string;
  fresh?: boolean;
  /** Milliseconds until fresh-until (negative: stale for that long), by the server's TIME. */
  freshForMs?: number;
  /** PTTL of the entry: -1 no expiry. */
  pttlMs?: number;
  /** The header's format version: `'1'` (no stored-at, no compute time) or `'2'`. */
  format?: string;
  /** When the value was stored (v2 header, the writer's clock), ISO 8601. */
  storedAt?: string;
  /** Milliseconds since it was stored, by the server's TIME. */
  ageMs?: number;
  /** How long the function took to compute the value, ms (v2 header; early refresh weighs by it). */
  computeMs?: number;
  serverTime: string;
  lock: { key: string; held: boolean; holder?: string; pttlMs?: number };
  tags: Array<{ tag: string; key: string; version: string | null }> | null;
  tagsHash?: string | null;
  tagsMatch?: boolean | null;
}

/** The server's TIME in milliseconds since the epoch. */
async function serverTime(client: RedisClient): Promise<number> {
  const [seconds, micros] = await client.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

async function inspectEntry(io: Io, connection: Connection, ref: EntryRef, tags: readonly string[], buckets: number, json: boolean): Promise<number> {
  const { RedisBackend } = await import('./backend.js');
  const backend = new RedisBackend({ client: connection.client, buckets });
  const codec = new EntryCodec();
  backend.attach({ prefix: ref.prefix, codec });
  const keyspace = new Keyspace(ref.prefix);
  let report: EntryReport;
  try {
    const [entryKey = ref.entryKey, lockKey = ref.lockKey, ...tagKeys] = backend.storedKeys(ref, tags.map((t) => keyspace.tagKey(t)));
    const { client } = connection;
    // TIME from the server holding the entry: the clock its reads compare fresh-until with.
    const domain = backend.failureDomain(ref);
    const node = connection.masters.find((n) => `${n.options.host ?? ''}:${n.options.port ?? ''}` === domain) ?? connection.masters[0];
    if (node === undefined) throw new CliError('no server to ask for TIME', 1);
    const [bytes, pttl, holder, lockPttl, now] = await Promise.all([
      client.getBuffer(entryKey),
      client.pttl(entryKey),
      client.get(lockKey),
      client.pttl(lockKey),
      serverTime(node),
    ]);
    const versions = await Promise.all(tagKeys.map((k) => client.get(k)));
    report = {
      key: ref.entryKey,
      storedKey: entryKey,
      present: bytes !== null,
      serverTime: new Date(now).toISOString(),
      lock: holder === null ? { key: lockKey, held: false } : { key: lockKey, held: true, holder, pttlMs: lockPttl },
      tags: tags.length === 0 ? null : tags.map((tag, i) => ({ tag, key: tagKeys[i] ?? '', version: versions[i] ?? null })),
    };
    if (bytes !== null) {
      report.pttlMs = pttl;
      const freshUntil = freshUntilOf(bytes);
      if (bytes.length < HEADER_LENGTH || bytes[0] !== 0x68 || freshUntil === undefined) {
        report.decodeError = 'not a hermes entry: no header';
      } else {
        report.tagHash = bytes.toString('latin1', TAG_HASH_OFFSET, FRESH_UNTIL_OFFSET);
        report.freshUntil = new Date(freshUntil).toISOString();
        report.freshForMs = freshUntil - now;
        report.fresh = freshUntil > now;
        report.format = String.fromCharCode(bytes[1] ?? 0);
        const storedAt = storedAtOf(bytes);
        if (storedAt !== undefined) {
          report.storedAt = new Date(storedAt).toISOString();
          report.ageMs = now - storedAt;
        }
        const computeMs = computeMsOf(bytes);
        if (computeMs !== undefined) report.computeMs = computeMs;
        try {
          const { value, classNames } = codec.decodeNamingClasses(bytes);
          if (classNames.length > 0) report.classes = [...classNames];
          if (isPlainJson(value)) report.value = value;
          report.valueText = inspectValue(value, { depth: 6, breakLength: 100 });
        } catch (error) {
          report.decodeError = error instanceof Error ? error.message : String(error);
        }
      }
      if (tags.length > 0 && report.tagHash !== undefined) {
        const known = versions.every((v) => v !== null);
        report.tagsHash = known ? tagHash(versions) : null;
        report.tagsMatch = known ? report.tagsHash === report.tagHash : false;
      }
    }
  } finally {
    await backend.close();
  }
  if (json) io.out(JSON.stringify(report, null, 2));
  else for (const line of formatEntry(report)) io.out(line);
  return 0;
}

/** `inspect --key`'s text. */
function formatEntry(r: EntryReport): string[] {
  const lines = [`entry ${r.key}${r.storedKey === r.key ? '' : `  (stored as ${r.storedKey})`}`];
  const seconds = (ms: number): string => `${(Math.abs(ms) / 1000).toFixed(1)} s`;
  if (!r.present) lines.push('  absent (never stored, expired, invalidated or removed)');
  else {
    if (r.decodeError !== undefined) lines.push(`  value        cannot be decoded: ${r.decodeError}`);
    else lines.push(`  value        ${(r.valueText ?? '').replace(/\n/g, '\n               ')}`);
    if (r.classes !== undefined) lines.push(`  classes      ${r.classes.join(', ')}  (instances shown as plain objects: the app revives them)`);
    if (r.freshUntil !== undefined && r.freshForMs !== undefined) {
      const state = r.fresh === true ? `fresh, ${seconds(r.freshForMs)} left` : `STALE for ${seconds(r.freshForMs)}`;
      lines.push(`  fresh until  ${r.freshUntil}  (${state}; server TIME ${r.serverTime})`);
    }
    if (r.storedAt !== undefined && r.ageMs !== undefined) lines.push(`  stored at    ${r.storedAt}  (${seconds(r.ageMs)} ago)`);
    if (r.computeMs !== undefined) lines.push(`  computed in  ${r.computeMs} ms`);
    if (r.format === '1') lines.push('  format       1 (written before stored-at and compute time were recorded)');
    lines.push(`  ttl          ${r.pttlMs === -1 ? 'no expiry' : `${r.pttlMs ?? '?'} ms left (PTTL)`}`);
    if (r.tagHash !== undefined) lines.push(`  tag hash     ${r.tagHash}`);
  }
  lines.push(
    r.lock.held
      ? `  lock         held by ${r.lock.holder ?? ''}, ${r.lock.pttlMs === -1 ? 'no expiry' : `${r.lock.pttlMs ?? '?'} ms left (PTTL)`}  (${r.lock.key})`
      : `  lock         not held  (${r.lock.key})`,
  );
  if (r.tags === null) {
    lines.push('  tags         the entry stores a hash of its tags\' versions, not their names: pass --tag T (in the');
    lines.push("               order of the wrapper's tags) to check it against their current versions");
  } else {
    for (const t of r.tags) {
      lines.push(`  tag '${t.tag}'  ${t.version === null ? 'absent (the next read creates a new version: the entry cannot match)' : `version ${t.version}`}`);
    }
    if (r.tagsMatch === true) lines.push(`  tags match   yes: the tags' current hash is the entry's (${r.tagsHash ?? ''})`);
    else if (r.tagsMatch === false) {
      const why = r.tagsHash === null ? 'a tag is absent' : `the tags' current hash is ${r.tagsHash ?? ''}`;
      lines.push(`  tags match   NO: ${why} (the entry's: ${r.tagHash ?? ''}): invalidated since, or tagged otherwise (other tags, or another order)`);
    }
  }
  return lines;
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
  const problem = redisUrlProblem(url);
  if (problem !== undefined) throw new CliError(`--url '${url}' ${problem}`, 2);
  const parsed = new URL(url);
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
