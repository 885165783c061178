import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { migrate, splitStatements } from '../../src/store/migrate.js';
import type { Db } from '../../src/store/db.js';
import { testDb } from '../helpers/db.js';

let db: Db;
let drop: () => Promise<void>;
before(async () => {
  ({ db, drop } = await testDb());
});
after(() => drop());

test('migrations are recorded once and a second run applies nothing', async () => {
  const { rows } = await db.query<{ id: number; name: string }>(
    'select id, name from oms_migrations order by id',
  );
  // every file in migrations/, in order (each helper adds its own numbered file)
  const files = (await readdir(new URL('../../migrations/', import.meta.url)))
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort();
  assert.equal(files[0], '001_init.sql');
  assert.deepEqual(
    rows.map((r) => r.name),
    files,
  );
  assert.deepEqual(await migrate(db), { applied: [] });
});

test('the schema has the tables of the design and the seeded catalogs', async () => {
  const { rows } = await db.query<{ table_name: string }>(
    `select table_name from information_schema.tables where table_schema = current_schema() order by 1`,
  );
  const tables = rows.map((r) => r.table_name);
  for (const t of [
    'users',
    'api_tokens',
    'event_types',
    'content_types',
    'webhooks',
    'hook_events',
    'hook_event_queue',
  ]) {
    assert.ok(tables.includes(t), `missing table ${t}`);
  }
  const models = await db.query<{ id: number; model: string }>(
    'select id, model from content_types order by id',
  );
  assert.deepEqual(models.rows.slice(0, 3), [
    { id: 3, model: 'order' },
    { id: 4, model: 'package' },
    { id: 5, model: 'packageitem' },
  ]);
});

test('oms_ts prints UTC with six fractional digits, as the OMS API does', async () => {
  const { rows } = await db.query<{ a: string; b: string }>(
    `select oms_ts('2024-02-19 11:12:18.591206+03'::timestamptz) as a, oms_ts('2024-02-19 08:12:18Z'::timestamptz) as b`,
  );
  assert.equal(rows[0]!.a, '2024-02-19T08:12:18.591206Z');
  assert.equal(rows[0]!.b, '2024-02-19T08:12:18.000000Z');
});

test('splitStatements keeps dollar-quoted bodies whole and drops comment lines', () => {
  const sql = `-- a comment\ncreate function f() returns int language sql as $$\n  select 1;\n$$;\ncreate table t (x int);\n`;
  const parts = splitStatements(sql);
  assert.equal(parts.length, 2);
  assert.match(parts[0]!, /^create function[\s\S]*select 1;[\s\S]*\$\$;$/);
  assert.equal(parts[1], 'create table t (x int);');
});
