import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { TtlCache } from '../../src/core/ttl-cache.js';

test('an entry is served until its TTL has passed, then gone', () => {
  const clock = new ManualClock(0);
  const cache = new TtlCache<string, number>(clock, { ttlMs: 1000, maxSize: 10 });
  cache.set('a', 1);
  clock.advance(999);
  assert.equal(cache.get('a'), 1);
  clock.advance(1);
  assert.equal(cache.get('a'), undefined);
  assert.equal(cache.size, 0);
});

test('setting a key again restarts its TTL', () => {
  const clock = new ManualClock(0);
  const cache = new TtlCache<string, number>(clock, { ttlMs: 1000, maxSize: 10 });
  cache.set('a', 1);
  clock.advance(600);
  cache.set('a', 2);
  clock.advance(600);
  assert.equal(cache.get('a'), 2);
});

test('a full cache drops the entry loaded longest ago, expired ones first', () => {
  const clock = new ManualClock(0);
  const cache = new TtlCache<string, number>(clock, { ttlMs: 1000, maxSize: 3 });
  cache.set('a', 1);
  clock.advance(10);
  cache.set('b', 2);
  cache.set('c', 3);
  cache.set('a', 11); // reloaded: now the newest
  cache.set('d', 4);
  assert.equal(cache.size, 3);
  assert.equal(cache.get('b'), undefined);
  assert.deepEqual(
    ['a', 'c', 'd'].map((k) => cache.get(k)),
    [11, 3, 4],
  );
  clock.advance(1000); // all expired: a new entry clears them out rather than one
  cache.set('e', 5);
  assert.equal(cache.size, 1);
});

test('delete and clear invalidate', () => {
  const clock = new ManualClock(0);
  const cache = new TtlCache<string, number>(clock, { ttlMs: 1000, maxSize: 10 });
  cache.set('a', 1);
  cache.set('b', 2);
  cache.delete('a');
  assert.equal(cache.get('a'), undefined);
  assert.equal(cache.get('b'), 2);
  cache.clear();
  assert.equal(cache.get('b'), undefined);
});

test('load fetches once per TTL and does not remember a miss', async () => {
  const clock = new ManualClock(0);
  const cache = new TtlCache<string, number>(clock, { ttlMs: 1000, maxSize: 10 });
  let fetches = 0;
  const fetch = async () => {
    fetches++;
    return 7;
  };
  assert.equal(await cache.load('a', fetch), 7);
  assert.equal(await cache.load('a', fetch), 7);
  assert.equal(fetches, 1);
  clock.advance(1000);
  assert.equal(await cache.load('a', fetch), 7);
  assert.equal(fetches, 2);

  let misses = 0;
  const miss = async () => {
    misses++;
    return undefined;
  };
  assert.equal(await cache.load('gone', miss), undefined);
  assert.equal(await cache.load('gone', miss), undefined);
  assert.equal(misses, 2);
});

test('a value fetched across an invalidation is returned but not stored', async () => {
  const clock = new ManualClock(0);
  const cache = new TtlCache<string, string>(clock, { ttlMs: 1000, maxSize: 10 });
  let release!: () => void;
  const slow = cache.load(
    'hook',
    () => new Promise<string>((resolve) => (release = () => resolve('old row'))),
  );
  cache.delete('hook'); // the write commits while the read is in flight
  release();
  assert.equal(await slow, 'old row');
  assert.equal(cache.get('hook'), undefined);
  assert.equal(await cache.load('hook', async () => 'new row'), 'new row');
  assert.equal(cache.get('hook'), 'new row');
});

test('a TTL of 0 caches nothing', async () => {
  const cache = new TtlCache<string, number>(new ManualClock(0), { ttlMs: 0, maxSize: 10 });
  let fetches = 0;
  await cache.load('a', async () => ++fetches);
  await cache.load('a', async () => ++fetches);
  assert.equal(fetches, 2);
});

test('callers missing the same key at once share one fetch', async () => {
  const cache = new TtlCache<string, number>(new ManualClock(0), { ttlMs: 1000, maxSize: 10 });
  let fetches = 0;
  let release!: (value: number) => void;
  const fetch = () => {
    fetches++;
    return new Promise<number>((resolve) => (release = resolve));
  };
  const waiting = [cache.load('a', fetch), cache.load('a', fetch), cache.load('a', fetch)];
  release(3);
  assert.deepEqual(await Promise.all(waiting), [3, 3, 3]);
  assert.equal(fetches, 1);
});

test('a caller arriving after an invalidation does not share the fetch it made stale', async () => {
  const cache = new TtlCache<string, string>(new ManualClock(0), { ttlMs: 1000, maxSize: 10 });
  const releases: ((value: string) => void)[] = [];
  const fetch = () => new Promise<string>((resolve) => releases.push(resolve));
  const before = cache.load('token', fetch);
  cache.delete('token'); // revoked while the first lookup was in flight
  const after = cache.load('token', fetch);
  assert.equal(releases.length, 2);
  releases[0]!('valid');
  releases[1]!('revoked');
  assert.equal(await before, 'valid');
  assert.equal(await after, 'revoked');
  assert.equal(cache.get('token'), 'revoked');
});

test('a failed fetch is not remembered', async () => {
  const cache = new TtlCache<string, number>(new ManualClock(0), { ttlMs: 1000, maxSize: 10 });
  await assert.rejects(
    cache.load('a', async () => {
      throw new Error('database away');
    }),
    /database away/,
  );
  assert.equal(await cache.load('a', async () => 1), 1);
});
