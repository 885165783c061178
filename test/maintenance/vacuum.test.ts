import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { systemClock } from '../../src/core/clock.js';
import { Sender } from '../../src/delivery/sender.js';
import { Maintenance } from '../../src/maintenance/maintenance.js';
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

const tableStats = async (table: string) =>
  (
    await db.query<{ dead: number; vacuums: number }>(
      `select n_dead_tup::int as dead, (vacuum_count + autovacuum_count)::int as vacuums
       from pg_stat_user_tables where schemaname = current_schema() and relname = $1`,
      [table],
    )
  ).rows[0]!;
const queueStats = () => tableStats('hook_event_queue');

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

/**
 * Leaves `churned` dead rows in the queue, with 10 live ones after them, and as many dead
 * rows in hook_events (the events of the webhook `name` made, deleted after the queue
 * rows), in one connection whose table counts are handed on as it commits.
 */
async function churn(name: string, churned: number): Promise<void> {
  const user = await ensureUser(db, name, true);
  const hook = await insertWebhook(db, user.id);
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
      `with gone as (
         delete from hook_event_queue where hook_event_id in
           (select hook_event_id from hook_event_queue where webhook_id = $1
            order by hook_event_id limit $2)
         returning hook_event_id)
       delete from hook_events where id in (select hook_event_id from gone)`,
      [hook, churned],
    );
    await tx.query('select pg_stat_force_next_flush()');
  });
}

const autovacuumOn = async () =>
  db.kind === 'postgres' &&
  (await db.query<{ on: boolean }>(`select current_setting('autovacuum') = 'on' as on`)).rows[0]!
    .on;

test('a queue full of dead rows is vacuumed where no autovacuum will, and left alone after', async () => {
  const churned = DEAD_ROWS_MIN * 3;
  await churn('vacuum', churned);
  const autovacuum = await autovacuumOn();
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

test('a running maintenance vacuums the queue every heartbeat, the other tables at its interval', async (t) => {
  if (await autovacuumOn()) {
    t.skip("the server's own autovacuum has the job");
    return;
  }
  const sender = new Sender({ responseCapBytes: 1024 });
  const maintenance = new Maintenance({
    db,
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    sender,
    heartbeatMs: 100,
    intervalMs: 3_600_000, // its first turn runs at start, the next in an hour
    retentionDays: 0,
    autoDisableDays: 0,
    callbackTimeoutMs: 1_000,
  });
  maintenance.start();
  try {
    // the interval's first turn, at start, has nothing to vacuum and is done by then
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const before = { queue: await queueStats(), events: await tableStats('hook_events') };
    await churn('vacuum-heartbeat', DEAD_ROWS_MIN * 3);
    let queue = await queueStats();
    for (let i = 0; i < 100 && queue.vacuums === before.queue.vacuums; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      queue = await queueStats();
    }
    assert.ok(queue.vacuums > before.queue.vacuums, 'the queue was not vacuumed within 10 s');
    const events = await tableStats('hook_events');
    assert.ok(events.dead >= DEAD_ROWS_MIN * 3, `${events.dead} dead events`);
    assert.equal(events.vacuums, before.events.vacuums, 'hook_events waits for the interval');
  } finally {
    await maintenance.stop();
    await sender.close();
  }
});
