/**
 * The Python HermesCache quickstart, ported: a plain function, tagged methods, a custom key,
 * invalidate, clean by tag, clean all — on the in-process backend, no server needed.
 *
 *   npm run demo
 */
import { Hermes } from '../src/index.js';

const cache = new Hermes(undefined, { ttl: 600 });

const foo = cache.wrap(function foo(a: number, b: number) {
  console.log(`  (computing foo(${a}, ${b}))`);
  return a * b;
});

class Example {
  @cache.cached({ tags: ['math', 'power'], ttl: 1200 })
  async bar(a: number, b: number): Promise<number> {
    console.log(`  (computing bar(${a}, ${b}))`);
    return a ** b;
  }

  @cache.cached({ tags: ['math', 'avg'], key: (a, b) => `avg:${String(a)}:${String(b)}` })
  async baz(a: number, b: number): Promise<number> {
    console.log(`  (computing baz(${a}, ${b}))`);
    return (a + b) / 2;
  }
}

const show = async (title: string): Promise<void> => {
  console.log(`\n${title}`);
  console.log(await cache.backend.dump());
};

const example = new Example();

console.log('First calls compute:');
console.log('foo(2, 333) =', await foo(2, 333));
console.log('example.bar(2, 10) =', await example.bar(2, 10));
console.log('example.baz(2, 10) =', await example.baz(2, 10));

console.log('\nSecond calls are served from the cache:');
console.log('foo(2, 333) =', await foo(2, 333));
console.log('example.bar(2, 10) =', await example.bar(2, 10));
console.log('example.baz(2, 10) =', await example.baz(2, 10));

await show('dump(): entries (argument hash or custom key) and tag versions');

console.log('\nfoo.invalidate(2, 333) drops one entry; the next call computes again:');
await foo.invalidate(2, 333);
console.log('foo(2, 333) =', await foo(2, 333));

console.log("\ncache.clean(['avg']) invalidates every entry tagged 'avg' (one tag key deleted):");
await cache.clean(['avg']);
await show("dump() after clean(['avg']): the tag 'avg' is gone");
console.log('example.bar(2, 10) =', await example.bar(2, 10), '(still cached: not tagged avg)');
console.log('example.baz(2, 10) =', await example.baz(2, 10));

console.log("\ncache.clean(['math']) invalidates bar and baz:");
await cache.clean(['math']);
console.log('example.bar(2, 10) =', await example.bar(2, 10));
console.log('example.baz(2, 10) =', await example.baz(2, 10));

await show('dump() before clean()');
await cache.clean();
await show('dump() after clean(): everything under the prefix is gone');
await cache.close();
