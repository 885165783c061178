import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { createPgliteDb } from '../../src/store/pglite.js';
import { createPgliteThreadDb } from '../../src/store/pglite-thread.js';
import { openDb } from '../../src/store/open.js';
import { until } from '../engine/support.js';
import { logLines } from '../helpers/log-lines.js';
import {
  CHECKPOINT_DENIED,
  CHECKPOINT_EVERY_TICK,
  denyCheckpoints,
} from '../helpers/pglite-dir.js';

/**
 * The service's embedded database runs on a thread of its own; these check that it
 * answers as the in-process adapter does, and that it leaves the main thread free.
 */
let threaded: Db;
let inProcess: Db;
before(async () => {
  threaded = await createPgliteThreadDb();
  inProcess = await createPgliteDb();
  for (const db of [threaded, inProcess]) {
    await migrate(db);
    await db.query('create table thread_t (id int primary key, label text)');
  }
});
after(async () => {
  await threaded.close();
  await inProcess.close();
});

const SQL = `select 9007199254740991::int8 as big, '2024-02-19 08:12:18.591206+00'::timestamptz as at,
                    $1::jsonb as doc, $2::text[] as texts, null::int as nothing, '\\x0102'::bytea as bytes`;
const PARAMS = [JSON.stringify({ a: [1, 'two'], q: "it's" }), ['x', null, 'NULL']];

test('rows come back as the in-process adapter returns them, named or not', async () => {
  const expected = (await inProcess.query(SQL, PARAMS)).rows;
  assert.deepEqual((await threaded.query(SQL, PARAMS)).rows, expected);
  for (let run = 0; run < 7; run++)
    assert.deepEqual((await threaded.query(SQL, PARAMS, 'thread_named')).rows, expected);
  assert.equal(typeof expected[0]!.big, 'number');
  assert.equal(expected[0]!.at, '2024-02-19 08:12:18.591206+00');
});

test('a transaction commits, or rolls back with the error its body threw', async () => {
  const inserted = await threaded.transaction(async (tx) => {
    await tx.query(`insert into thread_t values (1, 'one')`);
    return (await tx.query<{ n: number }>('select count(*)::int as n from thread_t')).rows[0]!.n;
  });
  assert.equal(inserted, 1);
  const boom = new Error('boom');
  await assert.rejects(
    threaded.transaction(async (tx) => {
      await tx.query(`insert into thread_t values (2, 'two')`);
      throw boom;
    }),
    (e) => e === boom,
  );
  const { rows } = await threaded.query<{ id: number }>('select id from thread_t order by id');
  assert.deepEqual(
    rows.map((r) => r.id),
    [1],
  );
});

test('a database error keeps its code and fields, in or out of a transaction', async () => {
  // the row the test before wrote, should it not have run
  await threaded.query(`insert into thread_t values (1, 'one') on conflict do nothing`);
  for (const run of [
    () => threaded.query(`insert into thread_t values (1, 'again')`),
    () => threaded.transaction((tx) => tx.query(`insert into thread_t values (1, 'again')`)),
  ]) {
    await assert.rejects(run(), (e: Error & { code?: string; constraint?: string }) => {
      assert.ok(e instanceof Error);
      assert.equal(e.code, '23505');
      assert.equal(e.constraint, 'thread_t_pkey');
      return true;
    });
  }
  // the session is still usable afterwards
  assert.equal((await threaded.query<{ n: number }>('select 1 as n')).rows[0]!.n, 1);
});

test('an error at COMMIT reaches the caller, and nothing of the transaction stays', async () => {
  await threaded.query(
    `create table thread_deferred (id int, constraint thread_deferred_id unique (id)
       deferrable initially deferred)`,
  );
  await assert.rejects(
    threaded.transaction(async (tx) => {
      await tx.query('insert into thread_deferred values (1), (1)');
    }),
    (e: Error & { code?: string }) => e.code === '23505',
  );
  const { rows } = await threaded.query<{ n: number }>(
    'select count(*)::int as n from thread_deferred',
  );
  assert.equal(rows[0]!.n, 0);
});

test('NOTIFY reaches each listener once, and none after it stops listening', async () => {
  const a: string[] = [];
  const b: string[] = [];
  const stopA = await threaded.listen('thread_chan', (p) => a.push(p));
  const stopB = await threaded.listen('thread_chan', (p) => b.push(p));
  await threaded.query(`select pg_notify('thread_chan', 'first')`);
  await stopA();
  await threaded.query(`select pg_notify('thread_chan', 'second')`);
  await threaded.query('select 1'); // a round trip after the last notification
  await stopB();
  assert.deepEqual(a, ['first']);
  assert.deepEqual(b, ['first', 'second']);
});

test('the main thread keeps running while a statement runs', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 20);
  try {
    await threaded.query('select pg_sleep(1)');
  } finally {
    clearInterval(timer);
  }
  // about 50 if the event loop was free; none if the statement had held it
  assert.ok(ticks >= 5, `${ticks} ticks during a one-second statement`);
});

test('a new data directory is created by a thread of its own; what is written there stays', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'oms-hooks-first-start-')), 'data');
  try {
    const first = await createPgliteThreadDb(dir);
    assert.ok(existsSync(join(dir, 'PG_VERSION')), 'the cluster is on disk');
    await first.query('create table kept (v text)');
    await first.query(`insert into kept values ('written on the first start')`);
    await first.close();

    const again = await createPgliteThreadDb(dir);
    try {
      const { rows } = await again.query<{ v: string }>('select v from kept');
      assert.deepEqual(rows, [{ v: 'written on the first start' }]);
    } finally {
      await again.close();
    }
  } finally {
    rmSync(dirname(dir), { recursive: true, force: true });
  }
});

test("the service's log says when the database thread cannot checkpoint, and when it can again", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'oms-hooks-checkpoints-')), 'data');
  const { lines, sink } = logLines();
  const db = await openDb(
    { databaseUrl: undefined, dataDir: dir, checkpoints: CHECKPOINT_EVERY_TICK },
    pino(sink),
  );
  const logged = async (msg: RegExp) => {
    const line = () => lines.find((l) => msg.test(String(l.msg)));
    await until(`a log line ${msg}`, () => line() !== undefined, 5_000);
    return line()!;
  };
  try {
    await denyCheckpoints(db);
    const failed = await logged(/could not checkpoint/);
    assert.equal(failed.level, 40);
    assert.equal(failed.failures, 1);
    assert.equal((failed.err as { message: string }).message, CHECKPOINT_DENIED);
    await db.exec('reset role');
    const again = await logged(/checkpoints again/);
    assert.equal(again.level, 30);
    assert.ok(Number(again.failures) >= 1);
  } finally {
    await db.close();
    rmSync(dirname(dir), { recursive: true, force: true });
  }
});
