import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { enqueueHookEvents } from '../../src/queue/enqueue.js';
import { recordAttempts, type AttemptOutcome } from '../../src/queue/record.js';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { ensureUser } from '../../src/store/tokens.js';
import { testDb } from '../helpers/db.js';
import { insertWebhook, newHookEvent } from '../helpers/rows.js';

// An event's modified_date is never before its created_date (migration 028), which
// bounds a page sorted by modified_date, oldest first (src/store/hook-events.ts,
// createdSpan; its reads are tested in hook-events-plan.test.ts).

let db: Db;
let drop: () => Promise<void>;
let webhook: number;
before(async () => {
  ({ db, drop } = await testDb());
  webhook = await insertWebhook(db, (await ensureUser(db, 'modified', true)).id);
});
after(() => drop());

const CREATED = Date.parse('2026-03-01T12:00:00Z');

/** `n` events of the webhook published at CREATED, their ids in order. */
async function published(n: number): Promise<number[]> {
  const { rows: last } = await db.query<{ id: number | null }>(
    'select max(id)::int as id from hook_events',
  );
  await db.transaction((tx) =>
    enqueueHookEvents(
      tx,
      Array.from({ length: n }, (_, k) => newHookEvent(webhook, k)),
      isoMicro(CREATED),
    ),
  );
  const { rows } = await db.query<{ id: number }>(
    'select id::int as id from hook_events where id > $1 order by id',
    [last[0]!.id ?? 0],
  );
  return rows.map((r) => r.id);
}

interface Dates {
  created: string;
  modified: string;
  requested: string[];
  attempted: string[];
}

async function datesOf(id: number): Promise<Dates> {
  const { rows } = await db.query<Dates>(
    `select oms_ts(e.created_date) as created, oms_ts(e.modified_date) as modified,
            array(select oms_ts(t) from unnest(e.request_datetimes) t) as requested,
            array(select oms_ts(a.attempted_at) from delivery_attempts a
                  where a.hook_event_id = e.id order by a.id) as attempted
     from hook_events e where e.id = $1`,
    [id],
  );
  return rows[0]!;
}

const attempt = (id: number, at: number): AttemptOutcome => ({
  id,
  at: isoMicro(at),
  status: 200,
  content: 'ok',
  delivered: true,
  next: { kind: 'done' },
  durationMs: 4,
  error: null,
  worker: 'w-clock',
  deactivate: false,
});

test("an attempt timed by a worker whose clock is behind the API's leaves modified_date at created_date", async () => {
  const [behind, ahead] = await published(2);
  await recordAttempts(db, 'w-clock', [
    attempt(behind!, CREATED - 5_000),
    attempt(ahead!, CREATED + 2_000),
  ]);
  // the attempt's own times are the worker's, as it sent the request
  assert.deepEqual(await datesOf(behind!), {
    created: '2026-03-01T12:00:00.000000Z',
    modified: '2026-03-01T12:00:00.000000Z',
    requested: ['2026-03-01T11:59:55.000000Z'],
    attempted: ['2026-03-01T11:59:55.000000Z'],
  });
  assert.deepEqual(await datesOf(ahead!), {
    created: '2026-03-01T12:00:00.000000Z',
    modified: '2026-03-01T12:00:02.000000Z',
    requested: ['2026-03-01T12:00:02.000000Z'],
    attempted: ['2026-03-01T12:00:02.000000Z'],
  });
});

test('no event is written modified before it was created, by hand either', async () => {
  const [id] = await published(1);
  const broken = /hook_events_modified_after_created/;
  await assert.rejects(
    db.query(
      `update hook_events set modified_date = created_date - interval '1 second' where id = $1`,
      [id],
    ),
    broken,
  );
  await assert.rejects(
    db.query(
      `update hook_events set created_date = modified_date + interval '1 second' where id = $1`,
      [id],
    ),
    broken,
  );
  await assert.rejects(
    db.query(
      `insert into hook_events (webhook_id, uuid, event_type, created_date, modified_date)
       values ($1, gen_random_uuid(), 'package.created', '2026-03-01T12:00:00Z',
               '2026-03-01T11:00:00Z')`,
      [webhook],
    ),
    broken,
  );
  assert.equal((await datesOf(id!)).modified, '2026-03-01T12:00:00.000000Z');
});

test('migration 028 gives the events modified before they were created their created_date', async () => {
  const [early, later, same] = await published(3);
  // back to the schema before it, where a worker's clock behind could write such dates
  await db.query('alter table hook_events drop constraint hook_events_modified_after_created');
  await db.query('delete from oms_migrations where id = 28');
  await db.query(
    `update hook_events set modified_date = created_date - interval '3 minutes' where id = $1`,
    [early],
  );
  await db.query(
    `update hook_events set modified_date = created_date + interval '3 minutes' where id = $1`,
    [later],
  );
  assert.equal((await datesOf(early!)).modified, '2026-03-01T11:57:00.000000Z');
  assert.deepEqual(await migrate(db), { applied: ['028_modified_after_created.sql'] });
  assert.equal((await datesOf(early!)).modified, '2026-03-01T12:00:00.000000Z');
  assert.equal((await datesOf(later!)).modified, '2026-03-01T12:03:00.000000Z');
  assert.equal((await datesOf(same!)).modified, '2026-03-01T12:00:00.000000Z');
  const { rows } = await db.query<{ n: number }>(
    'select count(*)::int as n from hook_events where modified_date < created_date',
  );
  assert.equal(rows[0]!.n, 0);
  // and the constraint is back
  await assert.rejects(
    db.query(
      `update hook_events set modified_date = created_date - interval '1 second' where id = $1`,
      [same],
    ),
    /hook_events_modified_after_created/,
  );
});
