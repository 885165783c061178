import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PGlite } from '@electric-sql/pglite';
import type { Db } from '../../src/store/db.js';
import { createPgliteDb, releaseBundle } from '../../src/store/pglite.js';
import { createPgliteThreadDb } from '../../src/store/pglite-thread.js';

/**
 * Once the embedded database is open, the files PGlite unpacked from `pglite.data` that
 * PostgreSQL no longer reads are removed and the buffer they were views of is detached,
 * which frees it (src/store/pglite.ts); time zones and PL/pgSQL stay, byte for byte.
 */
const BKI = '/pglite/share/postgresql/postgres.bki';
const KEPT = [
  '/pglite/share/postgresql/timezone/UTC',
  '/pglite/share/postgresql/timezone/Asia/Tokyo',
  '/pglite/share/postgresql/timezonesets/Default',
  '/pglite/lib/postgresql/plpgsql.so',
];

interface MemFs {
  lookupPath(path: string): { node: { contents?: Uint8Array } };
  readFile(path: string): Uint8Array;
  analyzePath(path: string): { exists: boolean };
}

test('the bundle is freed, and what PostgreSQL reads after start is kept', async () => {
  const lite = await PGlite.create();
  try {
    const fs = lite.Module.FS as unknown as MemFs;
    const bundle = fs.lookupPath(BKI).node.contents!.buffer;
    const size = bundle.byteLength;
    assert.ok(size > 5_000_000, `the bundle holds ${size} bytes`);
    const before = KEPT.map((path) => fs.readFile(path).slice());

    assert.equal(releaseBundle(lite.Module.FS as never), size);

    assert.equal(bundle.byteLength, 0, 'the buffer is detached');
    assert.equal(fs.analyzePath(BKI).exists, false);
    assert.equal(fs.analyzePath('/pglite/lib/postgresql/dict_snowball.so').exists, false);
    KEPT.forEach((path, i) => assert.deepEqual(fs.readFile(path), before[i], path));
    for (const path of KEPT) assert.notEqual(fs.lookupPath(path).node.contents!.buffer, bundle);

    await lite.exec(
      `create function answer() returns int language plpgsql as $$ begin return 42; end $$`,
    );
    await lite.exec(`set timezone = 'Asia/Tokyo'`);
    const { rows } = await lite.query<{ answer: number; at: string }>(
      `select answer(), '2026-01-01 00:00Z'::timestamptz::text as at`,
    );
    assert.deepEqual(rows, [{ answer: 42, at: '2026-01-01 09:00:00+09' }]);
    assert.equal(releaseBundle(lite.Module.FS as never), 0, 'a second call finds nothing to do');
  } finally {
    await lite.close();
  }
});

test('the service opens the database with its bundle released, in memory and on disk', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'oms-hooks-pglite-bundle-'));
  const opened: Db[] = [];
  try {
    opened.push(await createPgliteDb(), await createPgliteThreadDb(join(dir, 'data')));
    for (const db of opened) {
      // pg_stat_file reads PGlite's own file system, the one the bundle was unpacked in
      const { rows } = await db.query<{ bki: number | null; utc: number | null }>(
        `select (pg_stat_file($1, true)).size as bki, (pg_stat_file($2, true)).size as utc`,
        [BKI, KEPT[0]],
      );
      assert.deepEqual(rows, [{ bki: null, utc: 114 }]);
    }
  } finally {
    for (const db of opened) await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
