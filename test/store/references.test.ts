import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { enqueueCommitted, enqueueHookEvents } from '../../src/queue/enqueue.js';
import type { Db } from '../../src/store/db.js';
import { ensureUser } from '../../src/store/tokens.js';
import { behindOpenTransaction, onPostgres, testDb } from '../helpers/db.js';
import { insertWebhook, newHookEvent } from '../helpers/rows.js';

/**
 * An event's webhook and content type are checked once per statement by a trigger, not
 * by foreign keys (migration 012). These tests hold that it refuses and locks as the keys
 * did; that a deleted webhook takes its events, and only its own, cascade.test.ts holds.
 */
let db: Db;
let drop: () => Promise<void>;
let userId: number;
before(async () => {
  ({ db, drop } = await testDb());
  userId = (await ensureUser(db, 'references', true)).id;
});
after(() => drop());

const NOW = '2026-01-15T10:00:00.000000Z';

/** A content type of our own, unused by any other test's events. */
async function contentType(model: string): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    'insert into content_types (model) values ($1) returning id',
    [model],
  );
  return rows[0]!.id;
}

async function count(sql: string, params: unknown[]): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from ${sql}`, params);
  return rows[0]!.n;
}

const eventsOf = (hook: number) => count('hook_events where webhook_id = $1', [hook]);

/** How many events, payloads and queue rows there are in all. */
const rowsNow = async () => [
  await count('hook_events', []),
  await count('hook_event_payloads', []),
  await count('hook_event_queue', []),
];

/** `error` is PostgreSQL's foreign_key_violation under `constraint`. */
function refusedAs(error: unknown, constraint: string): void {
  const { code, constraint: name } = (error ?? {}) as { code?: string; constraint?: string };
  assert.equal(code, '23503');
  assert.equal(name, constraint);
}

/** Rejects with that violation, its detail naming `key`. */
async function refused(work: Promise<unknown>, constraint: string, key: RegExp): Promise<void> {
  await assert.rejects(work, (error: { detail?: string }) => {
    refusedAs(error, constraint);
    assert.match(error.detail ?? '', key);
    return true;
  });
}

test('events of a webhook that does not exist are refused, all of the statement with them', async () => {
  const hook = await insertWebhook(db, userId);
  const good = newHookEvent(hook, 1);
  const bad = newHookEvent(987_654, 2);
  const before = await rowsNow();
  await refused(
    enqueueCommitted(db, [good, bad], NOW),
    'hook_events_webhook_id_fkey',
    /\(webhook_id\)=\(987654\)/,
  );
  assert.deepEqual(await rowsNow(), before);
  await enqueueCommitted(db, [good], NOW);
  assert.equal(await eventsOf(hook), 1);
});

test('events of a content type that does not exist are refused; events without one are not', async () => {
  const hook = await insertWebhook(db, userId);
  await refused(
    enqueueCommitted(db, [{ ...newHookEvent(hook, 1), contentTypeId: 876_543 }], NOW),
    'hook_events_content_type_id_fkey',
    /\(content_type_id\)=\(876543\)/,
  );
  assert.equal(await eventsOf(hook), 0);
  await enqueueCommitted(db, [{ ...newHookEvent(hook, 2), contentTypeId: null }], NOW);
  assert.equal(await eventsOf(hook), 1);
});

test('a content type that events name cannot be deleted; an unused one can', async () => {
  const hook = await insertWebhook(db, userId);
  const used = await contentType('references.used');
  const unused = await contentType('references.unused');
  await enqueueCommitted(db, [{ ...newHookEvent(hook, 1), contentTypeId: used }], NOW);
  await refused(
    db.query('delete from content_types where id = any($1::int[])', [[unused, used]]),
    'hook_events_content_type_id_fkey',
    new RegExp(`\\(id\\)=\\(${used}\\) is still referenced`),
  );
  assert.equal(await count('content_types where id = any($1::int[])', [[used, unused]]), 2);
  await db.query('delete from content_types where id = $1', [unused]);
  assert.equal(await count('content_types where id = $1', [unused]), 0);
});

test('an event keeps its webhook and content type, and a webhook its id', async () => {
  const a = await insertWebhook(db, userId);
  const b = await insertWebhook(db, userId);
  await enqueueCommitted(db, [newHookEvent(a, 1)], NOW);
  await assert.rejects(
    db.query('update hook_events set webhook_id = $2 where webhook_id = $1', [a, b]),
    /hook_events\.webhook_id or content_type_id cannot change/,
  );
  await assert.rejects(
    db.query('update hook_events set content_type_id = null where webhook_id = $1', [a]),
    /cannot change/,
  );
  await assert.rejects(
    db.query('update webhooks set id = $2 where id = $1', [a, b + 1000]),
    /webhooks\.id cannot change/,
  );
  // the columns set to what they hold already, and every other column, are left alone
  await db.query(
    'update hook_events set webhook_id = webhook_id, retry_count = 1 where webhook_id = $1',
    [a],
  );
  assert.equal(await count('hook_events where webhook_id = $1 and retry_count = 1', [a]), 1);
});

const postgresOnly = {
  skip: onPostgres ? false : 'needs PostgreSQL: PGlite runs one statement at a time',
};

test(
  'a webhook deleted while its events are written waits for them, then takes them',
  postgresOnly,
  async () => {
    const hook = await insertWebhook(db, userId);
    const { waited, error } = await behindOpenTransaction(
      db,
      (tx) => enqueueHookEvents(tx, [newHookEvent(hook, 1), newHookEvent(hook, 2)], NOW),
      () => db.query('delete from webhooks where id = $1', [hook]),
      'delete from webhooks',
    );
    assert.ok(waited, 'the delete should wait for the events to commit');
    assert.equal(error, undefined);
    assert.equal(await eventsOf(hook), 0);
    assert.equal(await count('webhooks where id = $1', [hook]), 0);
  },
);

test(
  'events written while their webhook is deleted wait, then are refused',
  postgresOnly,
  async () => {
    const hook = await insertWebhook(db, userId);
    const { waited, error } = await behindOpenTransaction(
      db,
      (tx) => tx.query('delete from webhooks where id = $1', [hook]),
      () => enqueueCommitted(db, [newHookEvent(hook, 1)], NOW),
      'with input as',
    );
    assert.ok(waited, 'the publish should wait for the delete to commit');
    refusedAs(error, 'hook_events_webhook_id_fkey');
    assert.equal(await eventsOf(hook), 0);
  },
);

test(
  'a content type deleted while events naming it are written waits, then is refused',
  postgresOnly,
  async () => {
    const hook = await insertWebhook(db, userId);
    const model = await contentType('references.racing');
    const { waited, error } = await behindOpenTransaction(
      db,
      (tx) => enqueueHookEvents(tx, [{ ...newHookEvent(hook, 1), contentTypeId: model }], NOW),
      () => db.query('delete from content_types where id = $1', [model]),
      'delete from content_types',
    );
    assert.ok(waited, 'the delete should wait for the events to commit');
    refusedAs(error, 'hook_events_content_type_id_fkey');
    assert.equal(await count('content_types where id = $1', [model]), 1);
    assert.equal(await eventsOf(hook), 1);
  },
);
