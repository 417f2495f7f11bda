/**
 * The two checks of the contract suite that `node:assert/strict` has no single call for: a
 * subset of an object's properties, and an upper bound on a number. The suite asserts with
 * `node:assert` alone, so that a backend's author runs it with nothing installed beside mocha.
 *
 * @module
 */

import assert from 'node:assert/strict';
import { inspect } from 'node:util';

/**
 * Asserts that `actual` has every property of `expected`, each identical (`Object.is`) to the
 * expected value; other properties of `actual` are not looked at. A property set to
 * `undefined` in `expected` must exist on `actual`: a reply without `entry` is not a miss.
 * @param actual - the object under test, e.g. a read's reply
 * @param expected - the properties it must have, and their values
 * @param what - what `actual` is, named in the failure message
 */
export function assertIncludes(actual: object, expected: Readonly<Record<string, unknown>>, what: string): void {
  for (const [key, value] of Object.entries(expected)) {
    assert.ok(key in actual, `${what} has no property '${key}': ${inspect(actual)}`);
    const got = (actual as Record<string, unknown>)[key];
    // A message of our own replaces assert's, which would show the two values alone.
    assert.equal(got, value, `${what} has ${key}: ${inspect(got)}, expected ${inspect(value)}, in ${inspect(actual)}`);
  }
}

/**
 * Asserts `actual < limit`, both numbers named in the failure message.
 * @param actual - the number under test, e.g. elapsed milliseconds
 * @param limit - the bound it must stay below
 * @param what - what `actual` is, e.g. `'ms until woken'`
 */
export function assertBelow(actual: number, limit: number, what: string): void {
  assert.ok(actual < limit, `${what}: ${actual}, expected below ${limit}`);
}
