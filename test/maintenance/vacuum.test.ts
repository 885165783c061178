import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEAD_ROWS_MIN, vacuumChurned } from '../../src/maintenance/vacuum.js';
import type { Db } from '../../src/store/db.js';
import { ensureUser } from '../../src/store/tokens.js';
import { testDb } from '../helpers/db.js';
import { insertWebhook } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
before(async () => {
  ({ db, drop } = await testDb());
});
after(() => drop());

const queueStats = async () =>
  (
    await db.query<{ dead: number; vacuums: number }>(
      `select n_dead_tup::int as dead, (vacuum_count + autovacuum_count)::int as vacuums
       from pg_stat_user_tables where schemaname = current_schema() and relname = 'hook_event_queue'`,
    )
  ).rows[0]!;

/**
 * Waits until no other session of this database holds a snapshot taken before now, or
 * runs a transaction that began before now. A VACUUM removes only rows no snapshot can
 * still see and no running transaction might yet see, and the other test files run their
 * transactions on the same server meanwhile. Between two statements a read-committed
 * transaction holds no snapshot but keeps its xid, and that alone leaves the churn's dead
 * rows in place, whatever vacuumChurned did.
 */
async function noOlderSnapshots(): Promise<void> {
  const { rows } = await db.query<{ xid: string }>('select pg_current_xact_id()::xid::text as xid');
  for (let i = 0; i < 300; i++) {
    const { rows: older } = await db.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
       where datname = current_database() and pid <> pg_backend_pid()
         and greatest(age(backend_xmin), age(backend_xid)) >= age($1::xid)`,
      [rows[0]!.xid],
    );
    if (older[0]!.n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('another session kept a snapshot or transaction older than the churn for 15 s');
}

test('a queue full of dead rows is vacuumed where no autovacuum will, and left alone after', async () => {
  const user = await ensureUser(db, 'vacuum', true);
  const hook = await insertWebhook(db, user.id);
  const churned = DEAD_ROWS_MIN * 3;
  // one connection for the churn, whose table counts are handed on as it commits
  await db.transaction(async (tx) => {
    await tx.query(
      `with ins as (
         insert into hook_events (webhook_id, uuid, event_type)
         select $1, gen_random_uuid(), 'package.created' from generate_series(1, $2) returning id)
       insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
       select id, $1, now(), 5 from ins`,
      [hook, churned + 10],
    );
    await tx.query(
      `delete from hook_event_queue where hook_event_id in
         (select hook_event_id from hook_event_queue order by hook_event_id limit $1)`,
      [churned],
    );
    await tx.query('select pg_stat_force_next_flush()');
  });
  const autovacuum =
    db.kind === 'postgres' &&
    (await db.query<{ on: boolean }>(`select current_setting('autovacuum') = 'on' as on`)).rows[0]!
      .on;
  if (db.kind === 'postgres') await noOlderSnapshots();
  const before = await queueStats();

  const vacuumed = await vacuumChurned(db);
  const afterwards = await queueStats();
  if (autovacuum) {
    // the server's own autovacuum has the job
    assert.deepEqual(vacuumed, []);
    return;
  }
  const queue = vacuumed.find((v) => v.table === 'hook_event_queue');
  assert.ok(queue, `vacuumed ${JSON.stringify(vacuumed)}`);
  assert.ok(queue.deadRows >= churned, `${queue.deadRows} dead rows`);
  assert.equal(afterwards.vacuums, before.vacuums + 1);
  assert.equal(afterwards.dead, 0);
  assert.equal(
    (await db.query<{ n: number }>('select count(*)::int as n from hook_event_queue')).rows[0]!.n,
    10,
  );
  // nothing left to do: a second run vacuums nothing
  assert.deepEqual(
    (await vacuumChurned(db)).map((v) => v.table),
    [],
  );
});
