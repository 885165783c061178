import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { enqueueCommitted } from '../../src/queue/enqueue.js';
import { recordAttempts, type AttemptOutcome } from '../../src/queue/record.js';
import { requeueUndelivered } from '../../src/queue/requeue.js';
import type { Db } from '../../src/store/db.js';
import { ensureUser } from '../../src/store/tokens.js';
import { behindOpenTransaction, onPostgres, testDb } from '../helpers/db.js';
import { insertWebhook, newHookEvent } from '../helpers/rows.js';

/**
 * An event's payload, queue row and attempt log have no foreign key to it (migrations
 * 009 and 011): a trigger deletes them with the event, and a bulk resend locks the
 * events it reads.
 * These tests hold that nothing is left behind either way.
 */
let db: Db;
let drop: () => Promise<void>;
let userId: number;
before(async () => {
  ({ db, drop } = await testDb());
  userId = (await ensureUser(db, 'cascade', true)).id;
});
after(() => drop());

const NOW = '2026-01-15T10:00:00.000000Z';

const webhook = () => insertWebhook(db, userId);

/** `n` queued events of `hook`, each with one failed attempt logged. */
async function attemptedEvents(hook: number, n: number): Promise<number[]> {
  const events = Array.from({ length: n }, (_, i) => newHookEvent(hook, i));
  await enqueueCommitted(db, events, NOW);
  const { rows } = await db.query<{ id: number }>(
    'select id from hook_events where webhook_id = $1 order by id',
    [hook],
  );
  const failed = (id: number): AttemptOutcome => ({
    id,
    at: NOW,
    status: 500,
    content: 'down',
    delivered: false,
    next: { kind: 'retry', at: '2026-01-15T10:00:01.000000Z' },
    durationMs: 3,
    error: null,
    worker: 'test',
    deactivate: false,
  });
  await recordAttempts(
    db,
    'test',
    rows.map((r) => failed(r.id)),
  );
  return rows.map((r) => r.id);
}

interface Left {
  events: number;
  payloads: number;
  queued: number;
  attempts: number;
}

/** How many of the events `ids` are left, and how many payloads, queue rows and attempts. */
async function left(ids: number[]): Promise<Left> {
  const { rows } = await db.query<Left>(
    `select (select count(*)::int from hook_events where id = any($1::bigint[])) as events,
            (select count(*)::int from hook_event_payloads where hook_event_id = any($1::bigint[]))
              as payloads,
            (select count(*)::int from hook_event_queue where hook_event_id = any($1::bigint[])) as queued,
            (select count(*)::int from delivery_attempts where hook_event_id = any($1::bigint[])) as attempts`,
    [ids],
  );
  return rows[0]!;
}

test('deleted events take their payloads, queue rows and attempt log with them, and nothing else', async () => {
  const a = await webhook();
  const b = await webhook();
  const ofA = await attemptedEvents(a, 3);
  const ofB = await attemptedEvents(b, 2);
  assert.deepEqual(await left(ofA), { events: 3, payloads: 3, queued: 3, attempts: 3 });

  await db.query('delete from hook_events where id = any($1::bigint[])', [ofA.slice(0, 2)]);
  assert.deepEqual(await left(ofA.slice(0, 2)), { events: 0, payloads: 0, queued: 0, attempts: 0 });
  assert.deepEqual(await left(ofA.slice(2)), { events: 1, payloads: 1, queued: 1, attempts: 1 });

  // a deleted webhook takes its events (migration 012), and they their rows
  await db.query('delete from webhooks where id = $1', [a]);
  assert.deepEqual(await left(ofA), { events: 0, payloads: 0, queued: 0, attempts: 0 });
  assert.deepEqual(await left(ofB), { events: 2, payloads: 2, queued: 2, attempts: 2 });
});

test(
  'a bulk resend racing the deletion of its events leaves no queue row behind',
  { skip: onPostgres ? false : 'needs PostgreSQL: PGlite runs one statement at a time' },
  async () => {
    const hook = await webhook();
    const [id] = await attemptedEvents(hook, 1);
    // its attempts spent: out of the queue, not delivered, as a bulk resend finds it
    await db.query('delete from hook_event_queue where hook_event_id = $1', [id]);

    // the delete waits for the resend's lock on the event (without it, it would finish
    // now and the resend's queue row, committed after, would point at nothing)
    const { waited, error } = await behindOpenTransaction(
      db,
      async (tx) =>
        assert.equal(
          await requeueUndelivered(tx, { userId, isAdmin: true }, { webhook: hook }, NOW, 3),
          1,
        ),
      () => db.query('delete from hook_events where id = $1', [id]),
      'delete from hook_events',
    );
    assert.equal(error, undefined);
    assert.ok(waited, 'the delete should wait for the resend to commit');
    assert.deepEqual(await left([id!]), { events: 0, payloads: 0, queued: 0, attempts: 0 });
  },
);
