import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { matchesEventType } from '../../src/core/event-type.js';
import type { Db } from '../../src/store/db.js';
import { listSubscribers } from '../../src/store/webhooks.js';
import { noting, rowsRead, testDb, type Sent } from '../helpers/db.js';
import { insertOtherWebhooks } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
/** Every webhook stored: its id, subscription and whether it is active. */
let all: { id: number; event_type: string; is_active: boolean }[];

const OTHERS = 400;

before(async () => {
  ({ db, drop } = await testDb());
  const { rows } = await db.query<{ id: number }>(
    `insert into users (username, is_admin) values ('fanout', true) returning id`,
  );
  const add = (eventType: string, active = true) =>
    db.query(
      `insert into webhooks (user_id, target_url, secret_key, event_type, is_active,
                             retry_countdown_config)
       values ($1, 'http://127.0.0.1:9/', 'whsec_YWJj', $2, $3, '{"choice":"fixed","kwargs":{"seconds":1}}')`,
      [rows[0]!.id, eventType, active],
    );
  // other tenants' subscriptions, names and patterns, stored first and last
  const others = (from: number) =>
    insertOtherWebhooks(db, rows[0]!.id, { count: OTHERS / 2, from, patterns: true });
  await others(1);
  for (const type of [
    'package.created',
    'package.*',
    '*',
    '*.created',
    'package.*.shipped',
    'package.status.*',
    '*.*.shipped',
    '*.updated',
    'order.created',
    'package.created',
  ])
    await add(type);
  await add('package.created', false);
  await add('*', false);
  await add('package.*', false);
  await others(1 + OTHERS / 2);
  await db.query('analyze webhooks');
  ({ rows: all } = await db.query(`select id, event_type, is_active from webhooks order by id`));
});
after(() => drop());

const expected = (eventType: string) =>
  all.filter((w) => w.is_active && matchesEventType(w.event_type, eventType)).map((w) => w.id);

test('an emit goes to the active webhooks whose subscription matches, in id order', async () => {
  for (const eventType of [
    'package.created',
    'package.status.shipped',
    'package.returned.shipped',
    'order.updated',
    'tenant6.updated',
    'tenant7.anything.at.all',
    'nobody.listens',
  ]) {
    const ids = (await listSubscribers(db, eventType)).map((w) => w.id);
    assert.deepEqual(ids, expected(eventType), eventType);
    assert.ok(ids.length > 0 || eventType === 'nobody.listens', eventType);
  }
  // the case the plan test below reads: two exact subscriptions, three patterns
  assert.equal(expected('package.created').length, 5);
});

test('an emit reads the webhooks that may match, not every webhook', async () => {
  const seen = new Map<string, Sent>();
  await listSubscribers(noting(db, seen), 'package.created');
  const sent = seen.get('oms_subscribers');
  assert.ok(sent, 'listSubscribers sent no oms_subscribers statement');
  // as an API connection on PostgreSQL plans it, and as a named statement on PGlite
  for (const settings of [[], ['enable_bitmapscan = off', 'enable_seqscan = off']]) {
    const read = await rowsRead(db, sent, 'webhooks', settings);
    // the 2 exact subscriptions and the 7 active patterns that begin with package or *;
    // the 400 other tenants' subscriptions and the inactive ones are never read
    assert.ok(
      read >= 5 && read <= 9,
      `${read} rows read with ${settings.join(', ') || 'defaults'}`,
    );
  }
});
