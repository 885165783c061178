import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { enqueueCommitted } from '../../src/queue/enqueue.js';
import type { Db } from '../../src/store/db.js';
import { noting, rowsRead, testDb, type Sent } from '../helpers/db.js';
import { insertOtherWebhooks, insertWebhook, newHookEvent } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
const hooks: number[] = [];

before(async () => {
  ({ db, drop } = await testDb());
  const { rows } = await db.query<{ id: number }>(
    `insert into users (username, is_admin) values ('publisher', true) returning id`,
  );
  for (let i = 0; i < 3; i++) hooks.push(await insertWebhook(db, rows[0]!.id));
  // other tenants' webhooks, which these publishes do not name
  await insertOtherWebhooks(db, rows[0]!.id, { count: 1000 });
  await db.query('analyze webhooks');
});
after(() => drop());

test('a publish that hands events to a worker reads only the webhooks it names', async () => {
  const seen = new Map<string, Sent>();
  const events = Array.from({ length: 30 }, (_, n) => newHookEvent(hooks[n % 3]!, n));
  const handed = await enqueueCommitted(noting(db, seen), events, isoMicro(Date.now()), {
    offer: { workerId: 'w-plan', room: 30, full: [] },
    leaseMs: 30_000,
  });
  assert.equal(handed.length, 30, 'all 30 handed: the statement below does the same work');
  assert.deepEqual(new Set(handed.map((e) => e.webhook.id)), new Set(hooks));
  const sent = seen.get('oms_enqueue');
  assert.ok(sent, 'enqueueCommitted sent no oms_enqueue statement');
  // the same statement again, in a transaction rolled back, once the first is undone
  await db.query('delete from hook_events where uuid = any($1::uuid[])', [
    events.map((e) => e.uuid),
  ]);
  const read = await rowsRead(db, sent, 'webhooks');
  // one lookup per event to decide what is handed, one per webhook for the settings
  // sent with them; as a join, every one of the 1,003 webhooks was read, twice
  assert.ok(read <= 30 + 3, `${read} webhook rows read`);
});
