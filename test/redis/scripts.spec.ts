import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import { COMPUTE_MS_OFFSET, FORMAT_VERSION, FRESH_UNTIL_OFFSET, HEADER_LENGTH, HEADER_V2_LENGTH, TAG_HASH_OFFSET, tagHash, UNTAGGED_HASH } from '../../src/codec.js';
import { listRedisScripts, loadScript, redisScripts, SCRIPTS_DIRECTORY, type RedisScript } from '../../src/backend/redis/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';

/**
 * The command table of the `redis-commands` package (names, flags, key positions, as of
 * Redis 6): the offline reference the script bodies are checked against. It has no type
 * declarations; this is the part the tests use.
 */
interface CommandTable {
  /** Every command name, lowercase. */
  readonly list: readonly string[];
  exists(name: string): boolean;
  /** `write`, `readonly`, `noscript`, `pubsub`, `random`, …; throws on an unknown command. */
  hasFlag(name: string, flag: string): boolean;
  /** The indexes (in `args`, the arguments after the name) of the arguments that are keys. */
  getKeyIndexes(name: string, args: readonly string[]): number[];
}
const redisSixTable = createRequire(import.meta.url)('redis-commands') as CommandTable;
/**
 * The commands of Redis 7 the scripts call and the table (Redis 6) lacks, as Redis 7.0's
 * COMMAND INFO describes them (the live-server test checks the key positions).
 */
const REDIS_SEVEN: Record<string, { arity: number; flags: readonly string[]; keyIndexes: readonly number[] }> = {
  // The shard channel is its first key (a "not-key" key spec): it must hash to the script's slot.
  spublish: { arity: 3, flags: ['pubsub', 'loading', 'stale', 'fast'], keyIndexes: [0] },
};
const commandTable: CommandTable = {
  list: [...redisSixTable.list, ...Object.keys(REDIS_SEVEN)],
  exists: (name) => name in REDIS_SEVEN || redisSixTable.exists(name),
  hasFlag: (name, flag) => REDIS_SEVEN[name]?.flags.includes(flag) ?? redisSixTable.hasFlag(name, flag),
  getKeyIndexes: (name, args) => (REDIS_SEVEN[name] ? [...REDIS_SEVEN[name].keyIndexes] : redisSixTable.getKeyIndexes(name, args)),
};
const commandSpecs = {
  ...(createRequire(import.meta.url)('redis-commands/commands.json') as Record<string, { arity: number }>),
  ...REDIS_SEVEN,
};

/** `redis.call(...)` / `redis.pcall(...)` in a script: the text between the parentheses. */
function scriptCalls(source: string): string[] {
  const calls: string[] = [];
  const opener = /redis\.p?call\(/g;
  for (let match = opener.exec(source); match; match = opener.exec(source)) {
    let depth = 1;
    let i = opener.lastIndex;
    for (; i < source.length && depth > 0; i++) {
      if (source[i] === '(') depth++;
      else if (source[i] === ')') depth--;
    }
    calls.push(source.slice(opener.lastIndex, i - 1));
  }
  return calls;
}

/** Splits call arguments on top-level commas. */
function splitArguments(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(' || ch === '{' || ch === '[') depth++;
    if (ch === ')' || ch === '}' || ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      out.push(current.trim());
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.trim() !== '') out.push(current.trim());
  return out;
}

/** One `redis.call` of a script body: the command (lowercase) and its argument expressions. */
interface ScriptCall {
  readonly command: string;
  readonly args: readonly string[];
  /** The call as written, for messages. */
  readonly text: string;
}

/** The `redis.call`s of a script body whose command is a string literal (the lint test checks they all are). */
function commandCalls(script: RedisScript): ScriptCall[] {
  return scriptCalls(body(script)).map((text) => {
    const [name = '', ...args] = splitArguments(text);
    return { command: name.replace(/^'|'$/g, '').toLowerCase(), args, text: `${script.file}: redis.call(${text})` };
  });
}

/**
 * What a call changes on the server, from the command table's flags: `SET KEYS[1]` for a
 * write-flagged command (each key argument named as written), `PUBLISH ARGV[1]` for a
 * publication (named by its channel argument); nothing for a call that changes nothing.
 */
function effectsOf(call: ScriptCall): string[] {
  const name = call.command.toUpperCase();
  if (commandTable.hasFlag(call.command, 'write')) {
    return commandTable.getKeyIndexes(call.command, call.args).map((i) => `${name} ${call.args[i] ?? '?'}`);
  }
  if (commandTable.hasFlag(call.command, 'pubsub') && (call.command === 'publish' || call.command === 'spublish')) return [`${name} ${call.args[0] ?? '?'}`];
  return [];
}

/** The script body after its header comment. */
function body(script: RedisScript): string {
  return script.source.slice(script.source.indexOf(']]') + 2);
}

function indices(text: string, array: 'KEYS' | 'ARGV'): Set<number> {
  const found = new Set<number>();
  for (const match of text.matchAll(new RegExp(`${array}\\[(\\d+)\\]`, 'g'))) found.add(Number(match[1]));
  return found;
}

describe('Redis scripts (lua/)', function () {
  let server: RedisServer;
  let redis: Redis;

  before(async function () {
    server = await startRedisServer();
    redis = new Redis({ host: server.host, port: server.port, lazyConnect: true });
    await redis.connect();
  });

  after(async function () {
    await redis.quit();
    await server.stop();
  });

  it('loads every file of lua/, with its SHA1 as the server computes it', async function () {
    const files = readdirSync(SCRIPTS_DIRECTORY).filter((f) => f.endsWith('.lua')).sort();
    const scripts = listRedisScripts();
    expect(scripts.map((s) => s.file)).to.deep.equal(files);
    expect(files).to.include.members(['read.lua', 'write-2.lua', 'release-1.lua', 'invalidate-2.lua', 'cleanTags.lua', 'set.lua', 'lock.lua']);
    for (const script of scripts) {
      expect(await redis.script('LOAD', script.source), script.file).to.equal(script.sha);
    }
    const byName = redisScripts();
    expect(byName.write.numberOfKeys).to.equal(2);
    expect(byName.release.numberOfKeys).to.equal(1);
    expect(byName.invalidate.numberOfKeys).to.equal(2);
    expect(byName.read.numberOfKeys).to.equal(undefined);
    expect(byName.cleanTags.numberOfKeys).to.equal(undefined);
    expect(byName.set.numberOfKeys).to.equal(undefined);
    expect(byName.lock.numberOfKeys).to.equal(undefined);
  });

  it('rejects a file name or header that breaks the convention', function () {
    expect(() => loadScript('Read-x.lua', '--[[ x ]]')).to.throw(/camelName/);
    expect(() => loadScript('read-1.lua', 'return 1')).to.throw(/header/);
  });

  // Two references for the commands the scripts call. The command table (redis-commands) works
  // offline and knows flags: it catches a misspelt command, a wrong argument count (arity), a
  // command a script may not call (`noscript`), and tells writes from reads. The live server's
  // COMMAND INFO catches what the table cannot: a command the server the tests run against does
  // not have (the table may be older or newer than the server), and a table whose key positions
  // disagree with the server's for the commands used.

  it('every redis.call names a command of the command table, as a literal, callable from a script, with its arity', function () {
    for (const script of listRedisScripts()) {
      const calls = scriptCalls(body(script));
      expect(calls, script.file).to.not.be.empty;
      for (const call of calls) {
        const [name] = splitArguments(call);
        expect(name, `${script.file}: redis.call(${call})`).to.match(/^'[A-Za-z|]+'$/);
      }
      for (const call of commandCalls(script)) {
        expect(commandTable.exists(call.command), `${call.text}: '${call.command}' is not a Redis command`).to.equal(true);
        expect(commandTable.hasFlag(call.command, 'noscript'), `${call.text}: not callable from a script`).to.equal(false);
        // Arity counts the command name: n means exactly n, -n at least n. An unpack() stands for one or more.
        const { arity } = commandSpecs[call.command] as { arity: number };
        const given = call.args.length + 1;
        const variable = call.args.some((arg) => arg.startsWith('unpack('));
        if (arity >= 0 && !variable) expect(given, `${call.text}: arity ${arity}`).to.equal(arity);
        else expect(given, `${call.text}: arity ${arity}`).to.be.at.least(Math.abs(arity));
      }
    }
  });

  it('the live server knows every command the scripts call, with the key positions of the command table', async function () {
    for (const script of listRedisScripts()) {
      for (const call of commandCalls(script)) {
        const [info] = (await redis.command('INFO', call.command)) as [unknown[] | null];
        expect(info, `${call.text}: ${call.command} is not a command of this server`).to.be.an('array');
        const firstKey = Number(info?.[3]); // position of the first key argument (0: none)
        const lastKey = Number(info?.[4]);
        const serverKeys =
          firstKey === 0 ? [] : (lastKey < 0 ? call.args.slice(firstKey - 1) : call.args.slice(firstKey - 1, lastKey)).map((_, i) => i + firstKey - 1);
        expect(commandTable.getKeyIndexes(call.command, call.args), call.text).to.deep.equal(serverKeys);
      }
    }
  });

  it('every key a script touches comes from KEYS, never from ARGV or string building', function () {
    for (const script of listRedisScripts()) {
      for (const call of commandCalls(script)) {
        for (const i of commandTable.getKeyIndexes(call.command, call.args)) {
          expect(call.args[i], call.text).to.match(/^KEYS\[[^\]]+\]$|^unpack\(KEYS\)$/);
        }
      }
    }
  });

  /**
   * What each script changes, and where its header says so. The headers document KEYS, ARGV and
   * the reply but have no machine-readable "writes" line, so the claim is this table: each
   * effect (`COMMAND key` for a write, `PUBLISH channel` for a wake-up, from the body with the
   * command table's flags) with the header's own words for it, quoted. The test checks the
   * table against both: the body's effects are exactly the table's, and every quote is in the
   * header and names what is written (the documented name of the key, or the channel).
   */
  const documentedEffects: Record<string, Record<string, string>> = {
    'cleanTags.lua': { 'UNLINK unpack(KEYS)': "by deleting the tags' version keys" },
    'invalidate-2.lua': {
      'UNLINK KEYS[1]': 'deletes one entry',
      'DEL KEYS[2]': 'deletes one entry and its lock',
      'PUBLISH KEYS[2]': 'KEYS[2] was published on KEYS[2]',
      'SPUBLISH KEYS[2]': 'KEYS[2] was published on KEYS[2]',
    },
    'lock.lua': {
      'SET KEYS[i]': 'tag versions (creating the missing ones)',
      'SET KEYS[2]': 'lock token taken with SET NX PX',
    },
    'read.lua': {
      'SET KEYS[i]': 'tag versions (creating the missing ones)',
      'SET KEYS[2]': 'lock token taken on a miss with SET NX PX',
    },
    'readMany.lua': {
      'SET KEYS[tagIndex]': 'creating the missing ones (SET of their tag keys)',
      'SET KEYS[lockIndex]': 'locks taken (SET NX PX of the lock keys)',
    },
    'release-1.lua': {
      'DEL KEYS[1]': 'deletes a lock if it is held with the given token',
      'PUBLISH KEYS[1]': 'KEYS[1] published on KEYS[1]',
      'SPUBLISH KEYS[1]': 'KEYS[1] published on KEYS[1]',
    },
    'set.lua': {
      'SET KEYS[i]': 'tag versions (creating the missing ones)',
      'SET KEYS[1]': 'the entry stored',
      'DEL KEYS[2]': "the entry's lock deleted",
      'PUBLISH KEYS[2]': 'KEYS[2] published on KEYS[2]',
      'SPUBLISH KEYS[2]': 'KEYS[2] published on KEYS[2]',
    },
    'write-2.lua': {
      'SET KEYS[1]': 'stores an entry',
      'DEL KEYS[2]': "releases the entry's lock",
      'PUBLISH KEYS[2]': 'KEYS[2] published on KEYS[2]',
      'SPUBLISH KEYS[2]': 'KEYS[2] published on KEYS[2]',
    },
    'writeMany.lua': {
      'SET KEYS[2 * i - 1]': 'stores the entry (SET of the entry keys)',
      'DEL KEYS[2 * i]': 'releasing the lock in the same step (DEL of the lock keys)',
      'PUBLISH KEYS[2 * i]': 'KEYS[2 * i] published on KEYS[2 * i]',
      'SPUBLISH KEYS[2 * i]': 'KEYS[2 * i] published on KEYS[2 * i]',
    },
  };

  /**
   * `KEYS[lock]`, the parameter of wake() (and of writeMany.lua's wakeAll()), as the key its
   * callers pass: the literal index of the script's one wake() call, or the lock keys writeMany
   * releases (`2 * i`).
   */
  function lockKeyOfWake(script: RedisScript, effect: string): string {
    if (!effect.endsWith(' KEYS[lock]')) return effect;
    const index = /^\s*wake\(ARGV\[\d+\], (\d+)\)$/m.exec(script.source)?.[1] ?? (script.source.includes('released[#released + 1] = 2 * i') ? '2 * i' : '?');
    return effect.replace('KEYS[lock]', `KEYS[${index}]`);
  }

  it("each script's writes and publications are the ones its header states", function () {
    expect(Object.keys(documentedEffects).sort()).to.deep.equal(listRedisScripts().map((s) => s.file));
    const verbs: Record<string, RegExp> = { SET: /stor|creat|tak/i, DEL: /delet|releas/i, UNLINK: /delet/i, PUBLISH: /publish/i, SPUBLISH: /publish/i };
    for (const script of listRedisScripts()) {
      const documented = documentedEffects[script.file] ?? {};
      const effects = new Set(commandCalls(script).flatMap(effectsOf).map((effect) => lockKeyOfWake(script, effect)));
      expect([...effects].sort(), script.file).to.deep.equal(Object.keys(documented).sort());
      const header = script.header.text.replace(/\s+/g, ' ');
      for (const [effect, quote] of Object.entries(documented)) {
        const where = `${script.file}: ${effect}`;
        expect(header, where).to.include(quote);
        const [command = '', target = ''] = effect.split(' ');
        expect(quote, where).to.match(verbs[command] ?? /(?!)/);
        if (command === 'PUBLISH' || command === 'SPUBLISH') {
          expect(quote, where).to.include(target);
          continue;
        }
        // The documented name of the key written ("entry key", "lock key", "tag keys"): its first word is in the quote.
        const index = /^KEYS\[(\d+)\]$/.exec(target)?.[1];
        const parameter = script.header.keys.find((k) => k.index === index) ?? script.header.keys.find((k) => k.index.endsWith('..'));
        const noun = parameter?.description.split(' ')[0] ?? '?';
        expect(quote, `${where} writes the ${noun}`).to.match(new RegExp(`\\b${noun}`));
      }
    }
  });

  it('a script is declared read-only (#!lua flags=no-writes) exactly when it calls no write command', function () {
    for (const script of listRedisScripts()) {
      const firstLine = script.source.split('\n', 1)[0] ?? '';
      const readOnly = /^#!lua\b.*\bflags=\S*\bno-writes\b/.test(firstLine);
      const writes = commandCalls(script).filter((call) => commandTable.hasFlag(call.command, 'write'));
      expect(readOnly, `${script.file}: declared no-writes but calls ${writes.map((c) => c.command).join(', ')}`).to.equal(writes.length === 0);
    }
    // Today every script writes (read.lua creates tag versions and takes locks): none is declared read-only.
    expect(listRedisScripts().filter((s) => s.source.startsWith('#!lua'))).to.deep.equal([]);
  });

  it("each header documents KEYS and ARGV consistently with the file name's key count and the body", function () {
    for (const script of listRedisScripts()) {
      const { header } = script;
      const where = script.file;
      expect(header.summary, where).to.match(new RegExp(`^${script.name}: `));
      expect(header.output, where).to.not.equal('');
      const fixedKeys = header.keys.filter((k) => !k.index.endsWith('..')).map((k) => Number(k.index));
      const ranges = header.keys.filter((k) => k.index.endsWith('..')).map((k) => Number(k.index.slice(0, -2)));
      const usedKeys = indices(body(script), 'KEYS');
      if (script.numberOfKeys !== undefined) {
        // camelName-N.lua: exactly KEYS[1..N] documented, none beyond used.
        expect(fixedKeys, where).to.deep.equal(Array.from({ length: script.numberOfKeys }, (_, i) => i + 1));
        expect(ranges, where).to.deep.equal([]);
        for (const i of usedKeys) expect(i, `${where} uses KEYS[${i}]`).to.be.at.most(script.numberOfKeys);
        expect(body(script), where).to.not.match(/#KEYS|unpack\(KEYS\)/);
      } else {
        // camelName.lua: a variable number, documented as an open range after the fixed ones.
        expect(header.text, where).to.match(/Key count: variable/);
        expect(ranges, where).to.have.length(1);
        const start = ranges[0] as number;
        expect(fixedKeys, where).to.deep.equal(Array.from({ length: start - 1 }, (_, i) => i + 1));
        for (const i of usedKeys) expect(i, `${where} uses KEYS[${i}]`).to.be.below(start);
      }
      // ARGV: documented exactly what the body reads; a variable tail (readMany.lua's entries) as
      // one open range after the fixed ones, read by computed indices only.
      const documentedArgv = header.argv.filter((a) => !a.index.endsWith('..')).map((a) => Number(a.index));
      const argvRanges = header.argv.filter((a) => a.index.endsWith('..')).map((a) => Number(a.index.slice(0, -2)));
      expect(documentedArgv, where).to.deep.equal(Array.from({ length: documentedArgv.length }, (_, i) => i + 1));
      expect(argvRanges, where).to.deep.equal(argvRanges.length === 0 ? [] : [documentedArgv.length + 1]);
      expect([...indices(body(script), 'ARGV')].sort(), where).to.deep.equal(documentedArgv);
      if (documentedArgv.length === 0) expect(header.text, where).to.match(/ARGV: none/);
      for (const parameter of [...header.keys, ...header.argv]) expect(parameter.description, where).to.not.equal('');
    }
  });
});

/**
 * One fact, one place: `read.lua` (and `readMany.lua`, its batch form) reads the entry header with literal offsets (Lua strings are
 * 1-based and `string.sub` is inclusive) and hashes tag versions itself. Each literal is pinned
 * here to the codec constant it copies, so that a change of the header layout or of the tag
 * hash fails this test instead of turning every Redis read into a miss.
 */
for (const read of [redisScripts().read, redisScripts().readMany]) describe(`${read.file} agrees with the codec on the entry header and the tag hash`, function () {
  const code = body(read);
  const header = read.header.text.replace(/\s+/g, ' ');
  const TAG_HASH_LENGTH = FRESH_UNTIL_OFFSET - TAG_HASH_OFFSET;

  /** The capture groups of the one place `pattern` matches in the body (twice or never fails). */
  function only(pattern: RegExp): string[] {
    const matches = [...code.matchAll(new RegExp(pattern.source, 'g'))];
    expect(matches, `${read.file}: ${pattern.source}`).to.have.length(1);
    return (matches[0] as RegExpMatchArray).slice(1);
  }

  it('header length, tag-hash range and fresh-until range: the codec offsets, 1-based and inclusive', function () {
    expect(TAG_HASH_LENGTH).to.equal(UNTAGGED_HASH.length);
    expect(only(/string\.len\(entry\) >= (\d+)/).map(Number)).to.deep.equal([HEADER_LENGTH]);
    expect(only(/string\.sub\(entry, (\d+), (\d+)\) == hash/).map(Number)).to.deep.equal([
      TAG_HASH_OFFSET + 1,
      TAG_HASH_OFFSET + TAG_HASH_LENGTH,
    ]);
    const numbers = [...code.matchAll(/tonumber\(string\.sub\(entry, (\d+), (\d+)\)\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    // Fresh-until (every version), then the v2 compute time.
    expect(numbers).to.deep.equal([
      [FRESH_UNTIL_OFFSET + 1, HEADER_LENGTH],
      [COMPUTE_MS_OFFSET + 1, HEADER_V2_LENGTH],
    ]);
    expect(only(/string\.sub\(entry, 2, 2\) ~= '(\d)'/)).to.deep.equal([FORMAT_VERSION]);
    expect(only(/string\.len\(entry\) < (\d+)/).map(Number)).to.deep.equal([HEADER_V2_LENGTH]);
    expect(header).to.include(`bytes 47..53 its compute time`);
    expect(COMPUTE_MS_OFFSET + 1).to.equal(47);
    // The header comment says the same.
    expect(header).to.include(`bytes ${TAG_HASH_OFFSET + 1}..${TAG_HASH_OFFSET + TAG_HASH_LENGTH}`);
    expect(header).to.include(`bytes ${FRESH_UNTIL_OFFSET + 1}..${HEADER_LENGTH}`);
    expect(header).to.include(`shorter than ${HEADER_LENGTH} bytes`);
  });

  it('the tag hash: UNTAGGED_HASH for no tags, else tagHash() (separator and length)', function () {
    expect(only(/hash = '([0-9a-f]+)'/)).to.deep.equal([UNTAGGED_HASH]);
    expect(header).to.include(`'${UNTAGGED_HASH}' for no tags`);
    const [separator = '', from, to] = only(/string\.sub\(redis\.sha1hex\(table\.concat\(versions, '([^']*)'\)\), (\d+), (\d+)\)/);
    expect([Number(from), Number(to)]).to.deep.equal([1, TAG_HASH_LENGTH]);
    const versions = ['v1.1', 'v2.1'];
    expect(createHash('sha1').update(versions.join(separator)).digest('hex').slice(0, TAG_HASH_LENGTH)).to.equal(tagHash(versions));
  });
});

/**
 * `set.lua` and `lock.lua` compute the tag hash as `read.lua` does (the same lines), and
 * `set.lua` replaces the header's tag hash at the codec's offsets.
 */
describe('set.lua and lock.lua agree with read.lua and the codec', function () {
  const read = body(redisScripts().read);
  /** The lines of read.lua from the tag versions to the tag hash. */
  const hashing = read.slice(read.indexOf('local versions = {}'), read.indexOf('local entry'));

  it('the tag versions and the tag hash: the very lines of read.lua', function () {
    expect(hashing).to.include("hash = 'da39a3ee5e6b4b0d'");
    for (const script of [redisScripts().set, redisScripts().lock]) expect(body(script), script.file).to.include(hashing.trim());
  });

  it("set.lua keeps the header's first bytes and what follows the tag hash: the codec offsets, 1-based and inclusive", function () {
    const code = body(redisScripts().set);
    const match = /string\.sub\(entry, 1, (\d+)\) \.\. hash \.\. string\.sub\(entry, (\d+)\)/.exec(code);
    expect(match, 'set.lua stamps the hash').to.not.equal(null);
    expect([Number(match?.[1]), Number(match?.[2])]).to.deep.equal([TAG_HASH_OFFSET, FRESH_UNTIL_OFFSET + 1]);
    expect(redisScripts().set.header.text.replace(/\s+/g, ' ')).to.include(`bytes ${TAG_HASH_OFFSET + 1}..${FRESH_UNTIL_OFFSET}`);
  });
});

/**
 * The lock release's wake-up: a script cannot call another, so each script that deletes a lock
 * carries its own `wake()`. They must be one function, letter for letter: a copy that drifts
 * (say, PUBLISH where the others SPUBLISH) would leave a cluster's waiters unwoken until lockWait.
 */
describe('the release scripts share one wake()', function () {
  /** The text of `local function wake(…) … end` in a script's body. */
  function wakeOf(script: RedisScript): string | undefined {
    return /^local function wake\([\s\S]*?^end$/m.exec(script.source)?.[0];
  }

  it('every script that deletes one lock has it, identical to write.lua\'s, and calls it with the index of its lock key', function () {
    const scripts = listRedisScripts();
    const reference = wakeOf(redisScripts().write);
    expect(reference, 'write.lua defines wake()').to.be.a('string');
    const withWake = scripts.filter((script) => wakeOf(script) !== undefined).map((script) => script.file).sort();
    expect(withWake).to.deep.equal(['invalidate-2.lua', 'release-1.lua', 'set.lua', 'write-2.lua']);
    for (const script of scripts) {
      const wake = wakeOf(script);
      if (wake === undefined) continue;
      expect(wake, script.file).to.equal(reference);
      const calls = [...script.source.matchAll(/^\s*wake\(ARGV\[\d+\], (\d+)\)$/gm)].map((match) => match[1]);
      expect(calls, `${script.file} calls wake()`).to.have.length(1);
      const key = script.header.keys.find((parameter) => parameter.index === calls[0]);
      expect(key?.description, `${script.file}: wake()'s KEYS[${calls[0]}] is the lock key`).to.match(/^lock key/);
    }
  });

  it("writeMany.lua's wakeAll() wakes as wake() does, one PUBSUB count for all the locks it released", function () {
    const source = redisScripts().writeMany.source;
    expect(wakeOf(redisScripts().writeMany)).to.equal(undefined);
    const wakeAll = /^local function wakeAll\([\s\S]*?^end$/m.exec(source)?.[0] ?? '';
    // The same commands as wake(), on KEYS of the released locks (KEYS[2i]: lock keys).
    for (const command of ["'PUBSUB'", "'SHARDNUMSUB'", "'NUMSUB'", "'PUBLISH', KEYS[lock], KEYS[lock]", "'SPUBLISH', KEYS[lock], KEYS[lock]"]) {
      expect(wakeAll, command).to.include(command);
    }
    expect(source).to.include('released[#released + 1] = 2 * i');
    expect(redisScripts().writeMany.header.keys[0]?.description).to.match(/KEYS\[2i\] its lock key/);
  });
});
