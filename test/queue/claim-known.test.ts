import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { claimBatch, type ClaimedEvent, type ClaimOptions } from '../../src/queue/claim.js';
import { enqueueHookEvents } from '../../src/queue/enqueue.js';
import { notifiedWebhooks } from '../../src/queue/wake.js';
import type { Db } from '../../src/store/db.js';
import { noting, rowsRead, testDb, type Sent } from '../helpers/db.js';
import { insertOtherWebhooks, insertWebhook, newHookEvent, queueDue } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
let userId: number;
let busy: number;
let other: number;
/**
 * Enough that reading them all is not the cheap plan: with 300, PostgreSQL read every
 * one to claim five events, as it may for a table of a few pages.
 */
const IDLE = 3000;

before(async () => {
  ({ db, drop } = await testDb());
  const { rows } = await db.query<{ id: number }>(
    `insert into users (username, is_admin) values ('claims', true) returning id`,
  );
  userId = rows[0]!.id;
  busy = await insertWebhook(db, userId);
  other = await insertWebhook(db, userId);
  // other tenants' webhooks, active, with nothing queued
  await insertOtherWebhooks(db, userId, { count: IDLE });
  // 40 of the busy webhook's, then 10 of the other's, due a minute ago
  await db.transaction((tx) =>
    enqueueHookEvents(
      tx,
      Array.from({ length: 50 }, (_, n) => newHookEvent(n < 40 ? busy : other, n)),
      isoMicro(Date.now() - 60_000),
    ),
  );
  await db.query('analyze webhooks');
});
after(() => drop());

/**
 * Every event still claimable leased for an hour, as the tests before have left the
 * queue when they ran: so that a test run alone by name starts from the same queue.
 */
async function earlierClaimsHeld(): Promise<void> {
  await db.query(
    `update hook_event_queue set locked_by = 'w-earlier',
                                 locked_until = now() + interval '1 hour'
     where locked_until is null or locked_until < now()`,
  );
}

/** How many of `events` each webhook has. */
function countByWebhook(events: ClaimedEvent[]): Map<number, number> {
  const n = new Map<number, number>();
  for (const e of events) n.set(e.webhook.id, (n.get(e.webhook.id) ?? 0) + 1);
  return n;
}

const options = (
  workerId: string,
  knownOnly: boolean,
  limit = 20,
): ClaimOptions & { gate: false } => ({
  workerId,
  now: new Date().toISOString(),
  leaseMs: 60_000,
  limit,
  perWebhook: 20,
  room: new Map([[busy, 20]]),
  knownOnly,
  gate: false,
});

test('a claim of the known webhooks takes only theirs; a sweep takes every due event', async () => {
  const known = await claimBatch(db, options('w-known', true));
  assert.equal(known.events.length, 20);
  assert.ok(
    known.events.every((e) => e.webhook.id === busy),
    'only the busy webhook',
  );
  const sweep = await claimBatch(db, options('w-sweep', false, 40));
  const byHook = countByWebhook(sweep.events);
  // the 20 left of the busy webhook's 40 and all 10 of the other's, oldest first
  assert.equal(byHook.get(busy), 20);
  assert.equal(byHook.get(other), 10);
});

test('a claim of the known webhooks takes those a NOTIFY named too, and reads no others', async () => {
  await earlierClaimsHeld();
  const named = await insertWebhook(db, userId);
  await queueDue(db, named, 5);
  const seen = new Map<string, Sent>();
  const batch = await claimBatch(noting(db, seen), {
    ...options('w-notified', true, 40),
    notified: [named],
  });
  // the five of the webhook named, beside what is left of the busy one's
  assert.equal(countByWebhook(batch.events).get(named), 5);
  const read = await rowsRead(db, seen.get('oms_claim_known')!, 'webhooks');
  assert.ok(read <= 4, `${read} webhook rows read`);
});

test('no claim reads the idle webhooks, a sweep neither', async () => {
  // a third webhook with events queued and leased, beside the busy one and the other
  const leased = await insertWebhook(db, userId);
  await queueDue(db, leased, 5);
  await earlierClaimsHeld();
  const seen = new Map<string, Sent>();
  await claimBatch(noting(db, seen), options('w-plan-known', true));
  await claimBatch(noting(db, seen), options('w-plan-sweep', false));
  const known = seen.get('oms_claim_known');
  const sweep = seen.get('oms_claim_open');
  assert.ok(known && sweep, 'both statements were sent');
  // and five of the busy webhook's due, for the statements to claim as they are read
  await queueDue(db, busy, 5);
  const { rows } = await db.query<{ n: number }>(
    'select count(distinct webhook_id)::int as n from hook_event_queue',
  );
  const queued = rows[0]!.n;
  // as PostgreSQL plans them for a worker's connections, and as PGlite runs named ones
  for (const settings of [[], ['enable_bitmapscan = off', 'enable_seqscan = off']]) {
    const what = settings.join(', ') || 'defaults';
    // the busy webhook once, then its settings beside each of the five events claimed:
    // no scan of the idle webhooks, for the claim or for the check on webhooks with
    // shared limits
    const read = await rowsRead(db, known, 'webhooks', settings);
    assert.ok(read <= 2 + 5, `${read} webhook rows read by a claim of the known (${what})`);
    // a sweep: twice each webhook with queued events (the busy one, the other, the
    // leased one, and the one the NOTIFY named if that test ran), and the settings of
    // the five it claims, none of the ${IDLE} idle ones
    const swept = await rowsRead(db, sweep, 'webhooks', settings);
    assert.ok(swept <= 2 * queued + 5, `${swept} webhook rows read by a sweep (${what})`);
  }
});

test('a sweep steps over the webhooks it knows and finds the others, each from its first queued event', async () => {
  await earlierClaimsHeld();
  // four webhooks in id order: the first has more events than a step of the scan reads
  // (QUEUED_STEP); the sweep knows the second; the third has had its two oldest events
  // delivered (their queue rows deleted); the fourth is paused
  const [low, mid, high, paused] = [
    await insertWebhook(db, userId),
    await insertWebhook(db, userId),
    await insertWebhook(db, userId),
    await insertWebhook(db, userId),
  ];
  const queued = [low, low, low, low, low, low, mid, high, high, paused].flatMap((hook) =>
    Array.from({ length: 3 }, (_, n) => newHookEvent(hook, n)),
  );
  await db.transaction((tx) => enqueueHookEvents(tx, queued, isoMicro(Date.now() - 60_000)));
  const { rows: gone } = await db.query<{ id: string }>(
    `delete from hook_event_queue where hook_event_id in (
       select hook_event_id from hook_event_queue where webhook_id = $1
       order by run_at, hook_event_id limit 2)
     returning hook_event_id as id`,
    [high],
  );
  await db.query('update webhooks set is_active = false where id = $1', [paused]);
  const sweep = await claimBatch(db, {
    ...options('w-steps', false, 40),
    room: new Map([[mid, 20]]),
  });
  const byHook = countByWebhook(sweep.events);
  assert.equal(byHook.get(low), 18);
  assert.equal(byHook.get(mid), 3);
  assert.equal(byHook.get(high), 4, 'the four left of six');
  assert.equal(byHook.get(paused), undefined);
  const highIds = sweep.events.filter((e) => e.webhook.id === high).map((e) => e.id);
  assert.ok(gone.every((g) => !highIds.includes(Number(g.id))));
});

test('a NOTIFY of due events names its webhooks, or none', () => {
  assert.deepEqual(notifiedWebhooks('12,7,300'), [12, 7, 300]);
  for (const payload of ['', undefined, '12,', 'x', '1;2']) {
    assert.equal(notifiedWebhooks(payload), undefined, String(payload));
  }
});
