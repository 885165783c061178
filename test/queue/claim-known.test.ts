import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { claimBatch, type ClaimOptions } from '../../src/queue/claim.js';
import { notifiedWebhooks } from '../../src/queue/wake.js';
import type { Db } from '../../src/store/db.js';
import { noting, rowsRead, testDb, type Sent } from '../helpers/db.js';
import { insertWebhook } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
let busy: number;
let other: number;
const IDLE = 300;

before(async () => {
  ({ db, drop } = await testDb());
  const { rows } = await db.query<{ id: number }>(
    `insert into users (username, is_admin) values ('claims', true) returning id`,
  );
  busy = await insertWebhook(db, rows[0]!.id);
  other = await insertWebhook(db, rows[0]!.id);
  // other tenants' webhooks, active, with nothing queued
  await db.query(
    `insert into webhooks (user_id, target_url, secret_key, event_type, retry_countdown_config)
     select $1, 'http://127.0.0.1:9/', 'whsec_YWJj', 'tenant' || g || '.updated',
            '{"choice":"fixed","kwargs":{"seconds":1}}'
     from generate_series(1, $2::int) g`,
    [rows[0]!.id, IDLE],
  );
  await db.query(
    `with ins as (
       insert into hook_events (webhook_id, uuid, event_type)
       select case when g <= 40 then $1::int else $2::int end, gen_random_uuid(), 'package.created'
       from generate_series(1, 50) g returning id, webhook_id
     ), payloads as (
       insert into hook_event_payloads (hook_event_id, request_payload)
       select id, json_build_object('seq', id) from ins)
     insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
     select id, webhook_id, now() - interval '1 minute', 5 from ins`,
    [busy, other],
  );
  await db.query('analyze webhooks');
});
after(() => drop());

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
  const byHook = new Map<number, number>();
  for (const e of sweep.events) byHook.set(e.webhook.id, (byHook.get(e.webhook.id) ?? 0) + 1);
  // the 20 left of the busy webhook's 40 and all 10 of the other's, oldest first
  assert.equal(byHook.get(busy), 20);
  assert.equal(byHook.get(other), 10);
});

test('a claim of the known webhooks takes those a NOTIFY named too, and reads no others', async () => {
  const { rows } = await db.query<{ user_id: number }>(
    'select user_id from webhooks where id = $1',
    [busy],
  );
  const named = await insertWebhook(db, rows[0]!.user_id);
  await db.query(
    `with ins as (
       insert into hook_events (webhook_id, uuid, event_type)
       select $1::int, gen_random_uuid(), 'package.created' from generate_series(1, 5) g
       returning id, webhook_id
     ), payloads as (
       insert into hook_event_payloads (hook_event_id, request_payload)
       select id, json_build_object('seq', id) from ins)
     insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
     select id, webhook_id, now() - interval '1 minute', 5 from ins`,
    [named],
  );
  const seen = new Map<string, Sent>();
  const batch = await claimBatch(noting(db, seen), {
    ...options('w-notified', true, 40),
    notified: [named],
  });
  // the five of the webhook named, beside what is left of the busy one's
  const byHook = new Map<number, number>();
  for (const e of batch.events) byHook.set(e.webhook.id, (byHook.get(e.webhook.id) ?? 0) + 1);
  assert.equal(byHook.get(named), 5);
  const read = await rowsRead(db, seen.get('oms_claim_known')!, 'webhooks');
  assert.ok(read <= 4, `${read} webhook rows read`);
});

test('a claim of the known webhooks reads none of the idle ones', async () => {
  const seen = new Map<string, Sent>();
  await claimBatch(noting(db, seen), options('w-plan-known', true));
  await claimBatch(noting(db, seen), options('w-plan-sweep', false));
  const known = seen.get('oms_claim_known');
  const sweep = seen.get('oms_claim_open');
  assert.ok(known && sweep, 'both statements were sent');
  // as PostgreSQL plans them for a worker's connections, and as PGlite runs named ones
  for (const settings of [[], ['enable_bitmapscan = off', 'enable_seqscan = off']]) {
    const what = settings.join(', ') || 'defaults';
    // the busy webhook once, then its settings beside the events claimed: no scan of the
    // idle webhooks, for the claim or for the check on webhooks with shared limits
    const read = await rowsRead(db, known, 'webhooks', settings);
    assert.ok(read <= 3, `${read} webhook rows read by a claim of the known (${what})`);
    // the control: a sweep looks at every active webhook
    const swept = await rowsRead(db, sweep, 'webhooks', settings);
    assert.ok(swept > IDLE, `${swept} webhook rows read by a sweep (${what})`);
  }
});

test('a NOTIFY of due events names its webhooks, or none', () => {
  assert.deepEqual(notifiedWebhooks('12,7,300'), [12, 7, 300]);
  for (const payload of ['', undefined, '12,', 'x', '1;2']) {
    assert.equal(notifiedWebhooks(payload), undefined, String(payload));
  }
});
