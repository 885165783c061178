import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import type { Db } from '../../src/store/db.js';
import { createPgliteDb } from '../../src/store/pglite.js';
import { createPgliteThreadDb } from '../../src/store/pglite-thread.js';

/**
 * The embedded database starts with a smaller buffer cache (it lives in the process's
 * memory) and every other setting as PGlite starts it, but for durable commits on disk:
 * in memory, and on disk on the database thread the service opens (open.ts).
 */
let dir: string;
let opened: { name: string; db: Db }[];
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'oms-hooks-pglite-memory-'));
  opened = [
    { name: 'in memory', db: await createPgliteDb() },
    { name: 'on the database thread', db: await createPgliteThreadDb(join(dir, 'thread')) },
  ];
});
after(async () => {
  for (const { db } of opened ?? []) await db.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const show = async (db: Db, setting: string): Promise<string> => {
  const { rows } = await db.query<Record<string, string>>(`show ${setting}`);
  return Object.values(rows[0]!)[0]!;
};

test('shared_buffers is 16MB and TimeZone still UTC, however the database is opened', async () => {
  for (const { name, db } of opened) {
    assert.equal(await show(db, 'shared_buffers'), '16MB', name);
    assert.equal(await show(db, 'timezone'), 'UTC', name);
  }
});

/**
 * Left at their default, PostgreSQL sizes these from shared_buffers (wal_buffers is 1/32
 * of it, the SLRU caches 1/512), so they are smaller too: still PostgreSQL's own choice.
 */
const SIZED_FROM_SHARED_BUFFERS = [
  'commit_timestamp_buffers',
  'io_max_concurrency',
  'shared_memory_size',
  'shared_memory_size_in_huge_pages',
  'subtransaction_buffers',
  'transaction_buffers',
  'wal_buffers',
];

/**
 * On a data directory, commits are flushed to disk, and new WAL segments are not
 * zero-filled first (pglite-durable.test.ts).
 */
const DURABLE = [
  { name: 'fsync', setting: 'on', source: 'command line' },
  { name: 'wal_init_zero', setting: 'off', source: 'command line' },
  { name: 'wal_sync_method', setting: 'fsync', source: 'command line' },
];

test('every other setting is as PGlite starts it, but for durable commits on disk', async () => {
  const SETTINGS = `select name, setting, source from pg_settings where name <> 'shared_buffers' order by name`;
  const plain = await PGlite.create();
  let expected: Setting[];
  try {
    expected = (await plain.query<Setting>(SETTINGS)).rows;
  } finally {
    await plain.close();
  }
  for (const { name, db } of opened) {
    const actual = (await db.query<Setting>(SETTINGS)).rows;
    const sized = (s: Setting) => SIZED_FROM_SHARED_BUFFERS.includes(s.name);
    const onDisk = name !== 'in memory';
    const durable = (s: Setting) => onDisk && DURABLE.some((d) => d.name === s.name);
    assert.deepEqual(
      actual.filter((s) => !sized(s) && !durable(s)),
      expected.filter((s) => !sized(s) && !durable(s)),
      name,
    );
    if (onDisk) assert.deepEqual(actual.filter(durable), DURABLE, name);
    assert.deepEqual(
      actual.filter(sized).map((s) => [s.name, s.source]),
      SIZED_FROM_SHARED_BUFFERS.map((n) => [n, 'default']),
      name,
    );
  }
});

interface Setting {
  name: string;
  setting: string;
  source: string;
}

test('once closed, named and plain statements alike reject with a plain reason', async () => {
  const db = await createPgliteDb();
  for (let run = 0; run < 2; run++) await db.query('select $1::int as n', [run], 'closed_named');
  await db.close();
  for (const name of [undefined, 'closed_named'])
    await assert.rejects(db.query('select $1::int as n', [1], name), /PGlite is closed/);
});
