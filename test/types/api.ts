/**
 * Type fixture, compiled (never run) by test/types.spec.ts with `tsc -p test/types`: every line
 * marked `@ts-expect-error` must fail to compile, every other line must compile.
 */

/* eslint-disable @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- the lines marked @ts-expect-error do not compile, on purpose */

import { asCached, type CachedFunction, Hermes } from '../../src/index.js';

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
