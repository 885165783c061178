import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Db } from '../../src/store/db.js';
import { createFirstAdmin, authenticate, listTokens } from '../../src/store/tokens.js';
import { count, until } from '../engine/support.js';
import { onPostgres, testDb } from '../helpers/db.js';

let db: Db;
let drop: () => Promise<void>;
before(async () => {
  ({ db, drop } = await testDb());
});
after(() => drop());

test("a second start's admin, racing the first one's, gets no token of its own", async () => {
  // The first start's insert, not yet committed when the second start looks
  let inserted!: () => void;
  const insertedNow = new Promise<void>((resolve) => (inserted = resolve));
  let commit!: () => void;
  const committed = new Promise<void>((resolve) => (commit = resolve));
  const first = db.transaction(async (tx) => {
    await tx.query(`insert into users (username, is_admin) values ('admin', true)`);
    inserted();
    await committed;
  });
  await insertedNow;
  // On PostgreSQL the second runs on a connection of its own, finds no user yet, and its
  // insert waits on the first's row: the race itself, seen in pg_stat_activity before
  // the first commits. On PGlite, one connection, it waits for the first transaction's
  // end, as everything there does.
  const second = createFirstAdmin(db);
  if (onPostgres)
    await until('the second insert of the admin to wait on the first', async () => {
      const waiting = await count(
        db,
        `select count(*) from pg_stat_activity
         where wait_event_type = 'Lock' and datname = current_database()
           and query like 'insert into users%select ''admin''%'`,
      );
      return waiting === 1;
    });
  commit();
  await first;
  assert.equal(await second, undefined);
  assert.deepEqual(await listTokens(db), []);
  assert.equal(await count(db, 'select count(*) from users'), 1);
});

test('on a database with no user, the admin and a working admin token, once', async () => {
  await db.query('delete from users');
  const key = await createFirstAdmin(db);
  assert.match(key ?? '', /^[0-9a-f]{40}$/);
  const user = await authenticate(db, key!);
  assert.equal(user?.username, 'admin');
  assert.equal(user?.isAdmin, true);
  assert.equal(user?.scope, 'admin');
  assert.equal(await createFirstAdmin(db), undefined);
  assert.deepEqual(
    (await listTokens(db)).map((t) => [t.user, t.name, t.scope]),
    [['admin', 'first start', 'admin']],
  );
});
