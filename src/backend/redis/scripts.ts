/**
 * The Redis scripts of the backend, read once from the package's `lua/` folder: one file per
 * operation, named `camelName-<numberOfKeys>.lua` when the number of keys is fixed and
 * `camelName.lua` when the caller passes a variable number (the header says how many). Each
 * file opens with a block comment documenting every KEYS[i], every ARGV[i] and the reply; this
 * module parses that header so that tools (a `hermes scripts` CLI, the tests) can show and
 * check exactly the text the server runs.
 *
 * @module
 */

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** One documented line of a script header: `KEYS[1]  entry key  {prefix}:entry:…`. */
export interface ScriptParameter {
  /**
   * The index as written in the header: `'1'`, `'2'`, or an open range such as `'3..'` for
   * "the third and every following one".
   */
  readonly index: string;
  /** The rest of the line and its continuation lines, whitespace collapsed. */
  readonly description: string;
}

/** What a script's header comment documents. */
export interface ScriptHeader {
  /** The whole header comment, without the `--[[` and `]]` markers. */
  readonly text: string;
  /** The first paragraph: what the script does. */
  readonly summary: string;
  /** The documented KEYS, in the header's order. */
  readonly keys: readonly ScriptParameter[];
  /** The documented ARGV, in the header's order (empty when the header says `ARGV: none`). */
  readonly argv: readonly ScriptParameter[];
  /** The `Output:` section: the reply shapes and error codes. */
  readonly output: string;
}

/** A script of the Redis backend, as loaded from `lua/`. */
export interface RedisScript {
  /** The operation, from the file name: `read`, `readMany`, `write`, `writeMany`, `release`, `invalidate`, `cleanTags`, `set`, `lock`. */
  readonly name: string;
  /** The file name in `lua/`, e.g. `write-2.lua`. */
  readonly file: string;
  /**
   * The number of keys the script takes, from the file name; `undefined` when the caller
   * passes a variable number (documented in the header).
   */
  readonly numberOfKeys: number | undefined;
  /** The Lua source, exactly as sent with SCRIPT LOAD. */
  readonly source: string;
  /** The SHA1 of the source in lowercase hex: what EVALSHA is called with. */
  readonly sha: string;
  /** The parsed header comment. */
  readonly header: ScriptHeader;
}

/** The scripts the backend calls, by operation. */
export interface RedisScripts {
  /** `read.lua`: tag versions, tag hash, entry and lock in one call. */
  readonly read: RedisScript;
  /** `readMany.lua`: many reads in one call (the batch read of `many()`). */
  readonly readMany: RedisScript;
  /** `write-2.lua`: store the entry and release the lock. */
  readonly write: RedisScript;
  /** `writeMany.lua`: many writes in one call (the writes of concurrent misses that end in one tick). */
  readonly writeMany: RedisScript;
  /** `release-1.lua`: compare-and-delete the lock and wake its waiters. */
  readonly release: RedisScript;
  /** `invalidate-2.lua`: delete an entry and its lock. */
  readonly invalidate: RedisScript;
  /** `cleanTags.lua`: delete tag versions. */
  readonly cleanTags: RedisScript;
  /** `set.lua`: a direct write under the current tag versions, deleting the lock (`wrapped.set`). */
  readonly set: RedisScript;
  /** `lock.lua`: tag hash and lock, ignoring the entry (`wrapped.refresh`). */
  readonly lock: RedisScript;
}

/**
 * Where the scripts live: the package's `lua/` folder. This module sits three levels below
 * the package root both as source (`src/backend/redis/`) and as build output
 * (`dist/backend/redis/`), so one relative URL serves both.
 */
export const SCRIPTS_DIRECTORY: string = fileURLToPath(new URL('../../../lua/', import.meta.url));

const FILE_NAME = /^([a-z][A-Za-z0-9]*)(?:-(\d+))?\.lua$/;

let loaded: readonly RedisScript[] | undefined;

/**
 * Every script in `lua/`, sorted by file name, read and hashed on the first call and cached
 * after. Throws if a file's name or header does not follow the convention.
 */
export function listRedisScripts(): readonly RedisScript[] {
  if (loaded) return loaded;
  const files = readdirSync(SCRIPTS_DIRECTORY)
    .filter((file) => file.endsWith('.lua'))
    .sort();
  loaded = Object.freeze(files.map((file) => loadScript(file, readFileSync(SCRIPTS_DIRECTORY + file, 'utf8'))));
  return loaded;
}

let byName: RedisScripts | undefined;

/** The scripts the backend calls, by operation; loaded on first use (see {@link listRedisScripts}). */
export function redisScripts(): RedisScripts {
  if (byName) return byName;
  const all = new Map(listRedisScripts().map((script) => [script.name, script]));
  const get = (name: keyof RedisScripts): RedisScript => {
    const script = all.get(name);
    if (!script) throw new Error(`Redis script '${name}' is missing from ${SCRIPTS_DIRECTORY}`);
    return script;
  };
  byName = Object.freeze({
    read: get('read'),
    readMany: get('readMany'),
    write: get('write'),
    writeMany: get('writeMany'),
    release: get('release'),
    invalidate: get('invalidate'),
    cleanTags: get('cleanTags'),
    set: get('set'),
    lock: get('lock'),
  });
  return byName;
}

/**
 * Builds a {@link RedisScript} from a file name and its source.
 * @param file - the file name, `camelName-<numberOfKeys>.lua` or `camelName.lua`
 * @param source - the Lua source, opening with its `--[[ … ]]` header
 */
export function loadScript(file: string, source: string): RedisScript {
  const match = FILE_NAME.exec(file);
  if (!match) throw new Error(`Redis script file name '${file}' is not camelName-<numberOfKeys>.lua or camelName.lua`);
  const name = match[1] as string;
  const numberOfKeys = match[2] === undefined ? undefined : Number(match[2]);
  return Object.freeze({
    name,
    file,
    numberOfKeys,
    source,
    sha: createHash('sha1').update(source).digest('hex'),
    header: parseHeader(file, source),
  });
}

const PARAMETER = /^\s*(KEYS|ARGV)\[(\d+(?:\.\.)?)\]\s+(.*)$/;

/** Parses the `--[[ … ]]` block comment a script opens with. */
function parseHeader(file: string, source: string): ScriptHeader {
  if (!source.startsWith('--[[')) throw new Error(`Redis script ${file} must open with a --[[ … ]] header comment`);
  const end = source.indexOf(']]');
  if (end < 0) throw new Error(`Redis script ${file}: the header comment is not closed`);
  const text = source.slice(4, end).replace(/^\n/, '').replace(/\s+$/, '');
  const lines = text.split('\n');
  const keys: { index: string; description: string }[] = [];
  const argv: { index: string; description: string }[] = [];
  let current: { index: string; description: string } | undefined;
  let section: 'summary' | 'input' | 'output' | 'other' = 'summary';
  const summary: string[] = [];
  const output: string[] = [];
  for (const line of lines) {
    const trimmed = line.trim();
    if (/^Input:/.test(trimmed)) {
      section = 'input';
      continue;
    }
    if (/^Output:/.test(trimmed)) {
      section = 'output';
      current = undefined;
      continue;
    }
    if (section === 'summary') {
      if (trimmed === '') section = 'other';
      else summary.push(trimmed);
      continue;
    }
    if (section === 'output') {
      output.push(line.replace(/^ {4}/, ''));
      continue;
    }
    if (section !== 'input') continue;
    const parameter = PARAMETER.exec(line);
    if (parameter) {
      current = { index: parameter[2] as string, description: (parameter[3] as string).replace(/\s+/g, ' ') };
      (parameter[1] === 'KEYS' ? keys : argv).push(current);
    } else if (trimmed === '' || /^(KEYS|ARGV):/.test(trimmed)) {
      current = undefined;
    } else if (current) {
      current.description = `${current.description} ${trimmed.replace(/\s+/g, ' ')}`;
    }
  }
  return Object.freeze({
    text,
    summary: summary.join(' '),
    keys: Object.freeze(keys),
    argv: Object.freeze(argv),
    output: output.join('\n').trim(),
  });
}
