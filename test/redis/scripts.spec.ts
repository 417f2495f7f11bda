import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { listRedisScripts, loadScript, redisScripts, SCRIPTS_DIRECTORY, type RedisScript } from '../../src/backend/redis/index.js';
import { type RedisServer, startRedisServer } from '../helpers/redis-server.js';

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
    expect(files).to.include.members(['read.lua', 'write-2.lua', 'release-1.lua', 'invalidate-2.lua', 'cleanTags.lua']);
    for (const script of scripts) {
      expect(await redis.script('LOAD', script.source), script.file).to.equal(script.sha);
    }
    const byName = redisScripts();
    expect(byName.write.numberOfKeys).to.equal(2);
    expect(byName.release.numberOfKeys).to.equal(1);
    expect(byName.invalidate.numberOfKeys).to.equal(2);
    expect(byName.read.numberOfKeys).to.equal(undefined);
    expect(byName.cleanTags.numberOfKeys).to.equal(undefined);
  });

  it('rejects a file name or header that breaks the convention', function () {
    expect(() => loadScript('Read-x.lua', '--[[ x ]]')).to.throw(/camelName/);
    expect(() => loadScript('read-1.lua', 'return 1')).to.throw(/header/);
  });

  it('every redis.call names a real command of the server, as a literal', async function () {
    for (const script of listRedisScripts()) {
      const calls = scriptCalls(body(script));
      expect(calls, script.file).to.not.be.empty;
      for (const call of calls) {
        const [name] = splitArguments(call);
        expect(name, `${script.file}: redis.call(${call})`).to.match(/^'[A-Za-z|]+'$/);
        const command = (name as string).slice(1, -1);
        const [info] = (await redis.command('INFO', command));
        expect(info, `${script.file}: ${command} is not a Redis command`).to.be.an('array');
      }
    }
  });

  it('every key a script touches comes from KEYS, never from ARGV or string building', async function () {
    for (const script of listRedisScripts()) {
      for (const call of scriptCalls(body(script))) {
        const [name, ...args] = splitArguments(call);
        const command = (name as string).slice(1, -1);
        const [info] = (await redis.command('INFO', command)) as [unknown[]];
        const firstKey = Number(info[3]); // position of the first key argument (0: none)
        const lastKey = Number(info[4]);
        if (firstKey === 0) continue;
        const keyArgs = lastKey < 0 ? args.slice(firstKey - 1) : args.slice(firstKey - 1, lastKey);
        for (const arg of keyArgs) {
          expect(arg, `${script.file}: redis.call(${call})`).to.match(/^KEYS\[[^\]]+\]$|^unpack\(KEYS\)$/);
        }
      }
    }
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
      // ARGV: documented exactly what the body reads.
      const documentedArgv = header.argv.map((a) => Number(a.index));
      expect(documentedArgv, where).to.deep.equal(Array.from({ length: documentedArgv.length }, (_, i) => i + 1));
      expect([...indices(body(script), 'ARGV')].sort(), where).to.deep.equal(documentedArgv);
      if (documentedArgv.length === 0) expect(header.text, where).to.match(/ARGV: none/);
      for (const parameter of [...header.keys, ...header.argv]) expect(parameter.description, where).to.not.equal('');
    }
  });
});
