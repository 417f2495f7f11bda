/**
 * Type fixture, compiled (never run) by test/types.spec.ts with `tsc -p test/types`: every line
 * marked `@ts-expect-error` must fail to compile, every other line must compile.
 */

/* eslint-disable @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- the lines marked @ts-expect-error do not compile, on purpose */

import { asCached, type CachedFunction, type CacheStatus, type CallInfo, Hermes } from '../../src/index.js';

declare const cache: Hermes;

/** Compiles with `true` only when `A` and `B` are the same type (each assignable to the other). */
declare function same<A, B>(check: [A] extends [B] ? ([B] extends [A] ? true : false) : false): void;

// wrap keeps the parameters and gives a Promise of the awaited result.
const add = cache.wrap(async (a: number, b: string) => `${a}${b}`, { name: 'add' });
same<typeof add, CachedFunction<[a: number, b: string], Promise<string>>>(true);
same<ReturnType<typeof add>, Promise<string>>(true);
// @ts-expect-error wrong argument type
void add('1', '2');
// @ts-expect-error missing argument
void add(1);
export const syncSquare = cache.wrap((n: number) => n * n, { name: 'square' });
same<ReturnType<typeof syncSquare>, Promise<number>>(true);
// @ts-expect-error same() tells types apart
same<ReturnType<typeof syncSquare>, Promise<string>>(true);
same<Parameters<typeof add.invalidate>, [a: number, b: string]>(true);
same<ReturnType<typeof add.key>, string>(true);

// Options: ttl and tags are type-checked.
cache.wrap((n: number) => n, { name: 'a', ttl: 60, tags: ['math'] });
// @ts-expect-error ttl is a number of seconds
cache.wrap((n: number) => n, { name: 'b', ttl: '60' });
// @ts-expect-error tags are strings
cache.wrap((n: number) => n, { name: 'c', tags: [1] });
// @ts-expect-error tags are an array
cache.wrap((n: number) => n, { name: 'd', tags: 'math' });

// earlyRefresh: a boolean or { beta } (cache default and per wrap).
cache.wrap((n: number) => n, { name: 'e1', earlyRefresh: true });
cache.wrap((n: number) => n, { name: 'e2', earlyRefresh: { beta: 2 } });
new Hermes(undefined, { earlyRefresh: { beta: 1.5 } });
// @ts-expect-error beta is a number
cache.wrap((n: number) => n, { name: 'e3', earlyRefresh: { beta: '2' } });
// @ts-expect-error earlyRefresh takes { beta }, not a number
cache.wrap((n: number) => n, { name: 'e4', earlyRefresh: 2 });
// @ts-expect-error the option is beta
new Hermes(undefined, { earlyRefresh: { delta: 1 } });

// wrap's key gets the function's parameter types.
cache.wrap((id: number, lang: string) => `${id}${lang}`, { key: (id, lang) => `${id.toFixed(0)}:${lang.toUpperCase()}` });
// @ts-expect-error id is a number
cache.wrap((id: number) => id, { key: (id) => id.toUpperCase() });

// Generic functions: TypeScript keeps a generic signature through a higher-order function only
// when it returns a bare function type, and a wrapped function also carries `invalidate`, `key`…
// So the type parameter becomes `unknown`; pass the instance explicitly.
function first<T>(xs: T[]): T {
  return xs[0] as T;
}
export const firstAny = cache.wrap(first);
same<ReturnType<typeof firstAny>, Promise<unknown>>(true);
export const firstNumber = cache.wrap<[number[]], number>(first);
same<ReturnType<typeof firstNumber>, Promise<number>>(true);
export const firstString = cache.wrap((xs: string[]) => first(xs), { name: 'firstString' });
same<ReturnType<typeof firstString>, Promise<string>>(true);

// Decorators (TC39 standard).
class Repo {
  @cache.cached({ ttl: 60, tags: ['users'] })
  async plain(id: number): Promise<string> {
    return String(id);
  }

  // key's annotated parameters are checked against the method's.
  @cache.cached({ key: (id: number, lang: string) => `${id}:${lang}` })
  async annotated(id: number, lang: string): Promise<string> {
    return `${id}${lang}`;
  }

  // ...or the parameters are given once, and key's are inferred from them.
  @cache.cached<[id: number]>({ key: (id) => id.toFixed(0) })
  async given(id: number): Promise<string> {
    return String(id);
  }

  // @ts-expect-error key takes a string, the method a number
  @cache.cached({ key: (id: string) => id })
  async mismatched(id: number): Promise<string> {
    return String(id);
  }

  // @ts-expect-error id is a number, not a string
  @cache.cached<[id: number]>({ key: (id) => id.toUpperCase() })
  async wrongBody(id: number): Promise<string> {
    return String(id);
  }

  // @ts-expect-error ttl is a number of seconds
  @cache.cached({ ttl: '60' })
  async badTtl(id: number): Promise<string> {
    return String(id);
  }
}

// A decorated method's cache controls, typed from the method.
const repo = new Repo();
const plain = asCached(repo.plain);
same<typeof plain, CachedFunction<[id: number], string>>(true);
void plain.invalidate(1);
same<ReturnType<typeof plain.key>, string>(true);
void asCached(repo.annotated).invalidate(1, 'en');
// @ts-expect-error invalidate takes the method's parameters
void asCached(repo.annotated).invalidate('1', 'en');
// asCached passes a wrapped function through.
same<typeof add, ReturnType<typeof asCached<[a: number, b: string], string>>>(true);
// @ts-expect-error the method itself does not declare invalidate (a decorator cannot change its type)
void repo.plain.invalidate(1);

// many(): argument lists of the function's parameters, results of its awaited type, in order.
same<Parameters<typeof add.many>, [argsList: readonly [a: number, b: string][]]>(true);
same<ReturnType<typeof add.many>, Promise<string[]>>(true);
void add.many([[1, 'a'], [2, 'b']]);
// @ts-expect-error each element is one argument list
void add.many([1, 'a']);
// @ts-expect-error an argument of the wrong type
void add.many([[1, 2]]);
same<ReturnType<typeof plain.many>, Promise<string[]>>(true);
// The bound view of a decorated method keeps its types.
same<typeof asCached<[id: number], string>, (method: (id: number) => Promise<string>, thisArg?: unknown) => CachedFunction<[id: number], string>>(true);
void asCached(repo.plain, repo).many([[1], [2]]);
// @ts-expect-error many takes the method's parameters
void asCached(repo.plain, repo).many([['1']]);
// Direct control and per-call information, typed from the wrapped function.
same<ReturnType<typeof add.peek>, Promise<string | undefined>>(true);
same<Parameters<typeof add.peek>, [a: number, b: string]>(true);
void add.set([1, 'x'], 'value');
// @ts-expect-error set takes the arguments as a tuple, then the value
void add.set(1, 'x', 'value');
// @ts-expect-error set's value has the function's (awaited) result type
void add.set([1, 'x'], 42);
// @ts-expect-error set's arguments are the function's parameters
void add.set(['1', 'x'], 'value');
same<ReturnType<typeof add.refresh>, Promise<string>>(true);
// @ts-expect-error refresh takes the function's parameters
void add.refresh('1', 'x');
same<ReturnType<typeof add.withInfo>, Promise<CallInfo<string>>>(true);
export async function infoOf(): Promise<[string, CacheStatus, number | undefined, number | undefined]> {
  const info = await add.withInfo(1, 'x');
  // @ts-expect-error status is one of the five statuses
  const status: typeof info.status = info.value === '' ? 'expired' : info.status;
  return [info.value, status, info.age, info.ttlLeft];
}
same<ReturnType<typeof syncSquare.withInfo>, Promise<CallInfo<number>>>(true);
// A decorated method's, through asCached.
same<ReturnType<typeof plain.peek>, Promise<string | undefined>>(true);
void plain.set([1], 'one');
// @ts-expect-error the method's parameters
void plain.set(['1'], 'one');
same<ReturnType<typeof plain.withInfo>, Promise<CallInfo<string>>>(true);
// Durations: seconds, or a number with a unit.
cache.wrap((n: number) => n, { name: 'e', ttl: '90s', grace: '1h', staleWhileRevalidate: '500ms' });
export const durationCache = new Hermes(undefined, { ttl: '5m', grace: 30, staleWhileRevalidate: '1d' });
// @ts-expect-error a duration needs a unit: ms, s, m, h or d
cache.wrap((n: number) => n, { name: 'f', ttl: '90sec' });
// @ts-expect-error weeks are not a unit
export const weeks = new Hermes(undefined, { grace: '1w' });

// The result decides: ttl and cacheIf functions see the awaited result and the parameters.
interface User {
  readonly id: number;
  readonly name: string;
}
declare function findUsers(team: string, limit: number): Promise<User[]>;
export const users = cache.wrap(findUsers, {
  ttl: (found, team, limit) => {
    same<typeof found, User[]>(true);
    same<typeof team, string>(true);
    same<typeof limit, number>(true);
    return found.length === 0 || team === '' || limit < 1 ? '30s' : 3600;
  },
  cacheIf: (found) => found.every((user) => user.name.length > 0),
  tags: (team) => [`team:${team}`],
});
same<typeof users, CachedFunction<[team: string, limit: number], Promise<User[]>>>(true);
// @ts-expect-error the result is a User[], not a string
cache.wrap(findUsers, { ttl: (found) => (found.toUpperCase() === '' ? 1 : 2) });
// @ts-expect-error a ttl function returns a duration
cache.wrap(findUsers, { ttl: () => '1 hour' });
// @ts-expect-error cacheIf returns a boolean
cache.wrap(findUsers, { cacheIf: () => 'yes' });
// @ts-expect-error a tags function returns strings
cache.wrap(findUsers, { tags: (team, limit) => [team, limit] });
// @ts-expect-error the tags function takes the parameters: team is a string
cache.wrap(findUsers, { tags: (team) => [team.toFixed(0)] });
// A sync function's result is seen as it is.
cache.wrap((n: number) => ({ n }), { name: 'g', ttl: (result) => result.n, cacheIf: (result, n) => result.n === n });

// Decorators: the result is unknown unless annotated or given, and the method must resolve to it.
export class Teams {
  @cache.cached({ ttl: (result) => (result === null ? 10 : 60), tags: (id) => [`team:${String(id)}`] })
  async byId(id: number): Promise<string | null> {
    return id > 0 ? String(id) : null;
  }

  @cache.cached<[id: number], User[]>({ ttl: (found, id) => (found.length === 0 || id < 0 ? '1m' : '1h') })
  async members(id: number): Promise<User[]> {
    return findUsers(String(id), 10);
  }

  @cache.cached({ cacheIf: (found: User[]) => found.length > 0 })
  async annotatedResult(id: number): Promise<User[]> {
    return findUsers(String(id), 10);
  }

  // @ts-expect-error the options take User[], the method resolves to a string
  @cache.cached<[id: number], User[]>({ ttl: (found) => found.length })
  async wrongResult(id: number): Promise<string> {
    return String(id);
  }

  // @ts-expect-error the result is unknown unless given
  @cache.cached({ ttl: (result) => result.length })
  async unknownResult(id: number): Promise<string> {
    return String(id);
  }
}
