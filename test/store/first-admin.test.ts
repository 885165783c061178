import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Db } from '../../src/store/db.js';
import { createFirstAdmin, authenticate, listTokens } from '../../src/store/tokens.js';
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
  // On PostgreSQL the second runs on a connection of its own and finds no user yet; on
  // PGlite it waits for the first transaction's end, as everything there does.
  const second = createFirstAdmin(db);
  await new Promise((resolve) => setTimeout(resolve, onPostgres ? 300 : 0));
  commit();
  await first;
  assert.equal(await second, undefined);
  assert.deepEqual(await listTokens(db), []);
  const { rows } = await db.query<{ n: number }>('select count(*)::int as n from users');
  assert.equal(rows[0]!.n, 1);
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
