import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { systemClock } from '../../src/core/clock.js';
import { Sender } from '../../src/delivery/sender.js';
import { Maintenance, type MaintenanceOptions } from '../../src/maintenance/maintenance.js';
import { DEAD_ROWS_MIN, freezeAged, vacuumChurned } from '../../src/maintenance/vacuum.js';
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

/** A maintenance of this test's database whose loops, once started, beat every 0.1 s and run the interval's jobs at start, then after an hour. */
const maintenanceOf = (sender: Sender, more: Partial<MaintenanceOptions> = {}) =>
  new Maintenance({
    db,
    clock: systemClock,
    logger: pino({ level: 'silent' }),
    sender,
    heartbeatMs: 100,
    intervalMs: 3_600_000,
    retentionDays: 0,
    autoDisableDays: 0,
    callbackTimeoutMs: 1_000,
    ...more,
  });

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
  assert.ok(queue?.why === 'dead rows', `vacuumed ${JSON.stringify(vacuumed)}`);
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

/** What the server counted of the events and of the attempts: VACUUMs, and inserts since the last. */
const eventAndAttemptStats = async () =>
  (
    await db.query<{ table: string; vacuums: number; inserted: number }>(
      `select relname as table, vacuum_count::int as vacuums, n_ins_since_vacuum::int as inserted
       from pg_stat_user_tables
       where schemaname = current_schema() and relname in ('delivery_attempts', 'hook_events')
       order by relname`,
    )
  ).rows;

test('rows only inserted are a reason to vacuum the events, not the attempts nor the queue', async (t) => {
  if (await autovacuumOn()) {
    t.skip("the server's own autovacuum has the job");
    return;
  }
  const inserted = DEAD_ROWS_MIN * 3;
  const user = await ensureUser(db, 'vacuum-inserts', true);
  const hook = await insertWebhook(db, user.id);
  // events still queued, each with one failed attempt: nothing deleted, nothing updated
  await db.transaction(async (tx) => {
    await tx.query(
      `with ins as (
         insert into hook_events (webhook_id, uuid, event_type)
         select $1, gen_random_uuid(), 'package.created' from generate_series(1, $2) returning id),
       queued as (
         insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
         select id, $1, now(), 5 from ins)
       insert into delivery_attempts (hook_event_id, webhook_id, attempted_at, duration_ms, error, worker)
       select id, $1, now(), 3, 'refused', 'w' from ins`,
      [hook, inserted],
    );
    await tx.query('select pg_stat_force_next_flush()');
  });
  if (db.kind === 'postgres') await noOlderSnapshots();
  const before = await eventAndAttemptStats();

  const vacuumed = await vacuumChurned(db);
  const why = Object.fromEntries(vacuumed.map((v) => [v.table, v.why]));
  assert.equal(why.hook_events, 'inserted rows', JSON.stringify(vacuumed));
  // the queue's rows are gone soon after they come, and the attempts are always read
  // from the table: their inserts alone are no reason
  assert.equal(why.hook_event_queue, undefined, JSON.stringify(vacuumed));
  assert.equal(why.delivery_attempts, undefined, JSON.stringify(vacuumed));
  // the server's own account: the events vacuumed once more, none of their inserts left
  // to count; the attempts not vacuumed, their inserts all counted still
  assert.deepEqual(await eventAndAttemptStats(), [
    { table: 'delivery_attempts', vacuums: before[0]!.vacuums, inserted: inserted },
    { table: 'hook_events', vacuums: before[1]!.vacuums + 1, inserted: 0 },
  ]);
  const events = vacuumed.find((v) => v.table === 'hook_events');
  assert.ok(events?.why === 'inserted rows' && events.insertedRows >= inserted);
  // and once vacuumed, the same rows are no reason again
  assert.deepEqual(
    (await vacuumChurned(db)).filter((v) => v.why === 'inserted rows'),
    [],
  );
});

/** The age, in transactions, of the oldest unfrozen row of any table of the database, catalogs and TOAST included. */
const oldestRowAge = async () =>
  (
    await db.query<{ age: number }>(
      `select max(age(relfrozenxid)) as age from pg_class
       where relkind in ('r', 'm', 't') and relpersistence <> 't'`,
    )
  ).rows[0]!.age;

test('on PGlite, tables whose rows grew old in transactions are frozen; a server does that itself', async () => {
  if (db.kind === 'postgres') {
    // PostgreSQL starts its anti-wraparound autovacuum whatever `autovacuum` says
    assert.deepEqual(await freezeAged(db, { xid: 1, multixact: 1 }), []);
    return;
  }
  const limit = 2_000;
  // each statement alone is a transaction; asking for its id makes it take one
  for (let i = 0; i < limit; i++) await db.query('select pg_current_xact_id()');
  assert.ok((await oldestRowAge()) >= limit);
  const webhooks = (await db.query<{ n: number }>('select count(*)::int as n from webhooks'))
    .rows[0]!.n;
  assert.ok(webhooks > 0, 'the earlier tests left webhooks to keep');

  // every job of maintenance once, as its loops run them
  const sender = new Sender({ responseCapBytes: 1024 });
  const { vacuumed } = await maintenanceOf(sender, { freezeAges: { xid: limit } }).runOnce();
  await sender.close();
  const frozen = vacuumed.flatMap((v) => (v.why === 'transaction age' ? [v] : []));
  const tables = frozen.map((v) => v.table);
  for (const table of [
    'public.webhooks',
    'public.users',
    'pg_catalog.pg_class',
    'pg_catalog.pg_database',
  ])
    assert.ok(tables.includes(table), `${table} in ${tables.join(' ')}`);
  assert.ok(frozen.every((v) => v.xidAge >= limit));
  assert.ok((await oldestRowAge()) < limit, `oldest row ${await oldestRowAge()} transactions old`);
  const { rows } = await db.query<{ age: number }>(
    'select age(datfrozenxid) as age from pg_database where datname = current_database()',
  );
  assert.ok(rows[0]!.age < limit, `database ${rows[0]!.age} transactions old`);
  // the rows are all still there, and a second pass finds nothing to do
  assert.equal(
    (await db.query<{ n: number }>('select count(*)::int as n from webhooks')).rows[0]!.n,
    webhooks,
  );
  assert.deepEqual(await freezeAged(db, { xid: limit }), []);
});

test('a running maintenance vacuums the queue every heartbeat, the other tables at its interval', async (t) => {
  if (await autovacuumOn()) {
    t.skip("the server's own autovacuum has the job");
    return;
  }
  const sender = new Sender({ responseCapBytes: 1024 });
  const maintenance = maintenanceOf(sender);
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
