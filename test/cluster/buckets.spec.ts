/**
 * The hash-tag bucket layout of the Redis backend on Redis Cluster, without servers: the tags
 * are deterministic and spread evenly over the slots, one read's keys share a slot, and the
 * options that would break the layout are refused.
 */

import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { Hermes, OptionError } from '../../src/index.js';
import { BucketLayout, bucketHashTags, CLUSTER_SLOTS, slotOf } from '../../src/backend/redis/buckets.js';
import { RedisBackend } from '../../src/backend/redis/index.js';
import { storedKeyOf } from '../helpers/redis-cluster.js';

/** The masters' slot ranges as `redis-cli --cluster create` assigns them to `n` masters. */
function masterRanges(n: number): Array<[number, number]> {
  const per = CLUSTER_SLOTS / n;
  return Array.from({ length: n }, (_, i) => [Math.round(i * per), Math.round((i + 1) * per) - 1]);
}

describe('Redis Cluster bucket layout', function () {
  describe('bucketHashTags(n)', function () {
    it('is deterministic: the same tags in another process', function () {
      const here = bucketHashTags(64);
      const script = "import { bucketHashTags } from './src/backend/redis/buckets.ts'; console.log(JSON.stringify(bucketHashTags(64)));";
      const there = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
      expect(there).to.deep.equal([...here]);
      // Pinned: changing the choice would orphan every key stored by an earlier version.
      expect(here.slice(0, 8)).to.deep.equal(['{10}', '{18}', '{6h}', '{6d}', '{29}', '{21}', '{3}', '{4s}']);
      expect(bucketHashTags(1)).to.deep.equal(['{0}']);
    });

    for (const n of [1, 2, 3, 7, 64, 1000, CLUSTER_SLOTS]) {
      it(`bucket i of ${n} hashes into the i-th of ${n} equal slot ranges, all tags distinct`, function () {
        const tags = bucketHashTags(n);
        expect(tags).to.have.length(n);
        expect(new Set(tags).size).to.equal(n);
        tags.forEach((tag, i) => {
          expect(tag).to.match(/^\{[0-9a-z]+\}$/);
          const slot = slotOf(tag);
          expect(slot, `bucket ${i}`).to.be.at.least((i * CLUSTER_SLOTS) / n);
          expect(slot, `bucket ${i}`).to.be.lessThan(((i + 1) * CLUSTER_SLOTS) / n);
        });
      });
    }

    it('spreads 64 buckets 21/21/22 over 3 masters with equal contiguous ranges, 16/16/16/16 over 4', function () {
      const spread = (masters: number): number[] => {
        const ranges = masterRanges(masters);
        const counts = new Array<number>(masters).fill(0);
        for (const tag of bucketHashTags(64)) {
          const slot = slotOf(tag);
          const m = ranges.findIndex(([lo, hi]) => slot >= lo && slot <= hi);
          counts[m] = (counts[m] ?? 0) + 1;
        }
        return counts;
      };
      expect(spread(3).sort()).to.deep.equal([21, 21, 22]);
      expect(spread(4)).to.deep.equal([16, 16, 16, 16]);
    });
  });

  describe('keys of one read', function () {
    const backend = new RedisBackend({ cluster: [{ host: '127.0.0.1', port: 1 }] });
    const cache = new Hermes(backend, { prefix: 'app' });
    after(async function () {
      await cache.close();
    });

    it('entry, lock and the tag copies it is checked against share one slot: the bucket\'s', function () {
      const fn = cache.wrap(async function f(n: number) { return n; }, { tags: ['a', 'b', 'c'] });
      const slots = new Set(bucketHashTags(64).map(slotOf));
      const used = new Set<number>();
      for (let i = 0; i < 2000; i++) {
        const entryKey = fn.key(i);
        const entry = storedKeyOf(backend, entryKey);
        const slot = slotOf(entry);
        expect(slots.has(slot), entry).to.equal(true);
        expect(slotOf(storedKeyOf(backend, cache.keyspace.lockKeyOf(entryKey))), entry).to.equal(slot);
        for (const tag of ['a', 'b', 'c']) expect(slotOf(storedKeyOf(backend, cache.keyspace.tagKey(tag), entryKey))).to.equal(slot);
        used.add(slot);
      }
      expect(used.size, 'buckets used by 2000 entries').to.equal(64);
    });

    it('stores {prefix}:{kind}:{B}:{rest}, and unplace() gives the logical key back', function () {
      const layout = new BucketLayout(64);
      const entryKey = 'app:entry:f:abc123';
      const stored = storedKeyOf(backend, entryKey);
      const bucket = layout.bucketOf('f:abc123');
      expect(stored).to.equal(`app:entry:${layout.hashTags[bucket] ?? ''}:f:abc123`);
      expect(layout.unplace(stored, 'app')).to.equal(entryKey);
      expect(layout.unplace(storedKeyOf(backend, 'app:tag:t', entryKey), 'app')).to.equal('app:tag:t');
      expect(layout.unplace('app:entry:plain', 'app')).to.equal('app:entry:plain');
    });
  });

  describe('options that would break the layout', function () {
    for (const buckets of [0, -1, 1.5, 16_385, Number.NaN, '8' as unknown as number]) {
      it(`buckets: ${String(buckets)} → OptionError`, function () {
        expect(() => new RedisBackend({ cluster: [{ host: '127.0.0.1', port: 1 }], buckets })).to.throw(OptionError, /buckets/);
      });
    }

    it('buckets: 1 and 16384 are accepted', async function () {
      for (const buckets of [1, 16_384]) {
        const backend = new RedisBackend({ cluster: [{ host: '127.0.0.1', port: 1 }], buckets });
        expect(backend.buckets?.count).to.equal(buckets);
        await backend.close();
      }
    });

    it('a prefix with a brace → OptionError on a cluster, accepted on a standalone server', async function () {
      for (const prefix of ['a{b', 'a}b', '{app}']) {
        const backend = new RedisBackend({ cluster: [{ host: '127.0.0.1', port: 1 }] });
        expect(() => new Hermes(backend, { prefix })).to.throw(OptionError, /prefix/);
        await backend.close();
      }
      const standalone = new Hermes(new RedisBackend({ port: 1 }), { prefix: '{app}' });
      expect(standalone.keyspace.prefix).to.equal('{app}');
      await standalone.close();
    });
  });
});
