import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { claimBatch } from '../../src/queue/claim.js';
import { enqueueHookEvents } from '../../src/queue/enqueue.js';
import type { Db } from '../../src/store/db.js';
import { noting, rowsRead, testDb, type Sent } from '../helpers/db.js';
import { insertOtherWebhooks, insertWebhook, newHookEvent } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
const PLAIN = 300;
const LIMITED_IDLE = 300;
let limited: number;

before(async () => {
  ({ db, drop } = await testDb());
  const { rows } = await db.query<{ id: number }>(
    `insert into users (username, is_admin) values ('limits', true) returning id`,
  );
  // many webhooks without a shared limit and many with one, all idle; one limited webhook
  // with an event due
  await insertOtherWebhooks(db, rows[0]!.id, { count: PLAIN });
  await insertOtherWebhooks(db, rows[0]!.id, {
    count: LIMITED_IDLE,
    from: PLAIN + 1,
    config: { max_concurrency: 2 },
  });
  limited = await insertWebhook(db, rows[0]!.id);
  await db.query(`update webhooks set config = '{"max_concurrency": 2}' where id = $1`, [limited]);
  await db.transaction((tx) =>
    enqueueHookEvents(tx, [newHookEvent(limited, 1)], isoMicro(Date.now() - 60_000)),
  );
  await db.query('analyze webhooks');
});
after(() => drop());

test('the check for webhooks with shared limits reads those with events queued, not every one', async () => {
  const seen = new Map<string, Sent>();
  const claim = { workerId: 'w-limits', now: new Date().toISOString(), leaseMs: 60_000 };
  // the common claim, which says whether a limited webhook is waiting, then the gate's
  // lookup of them, in a transaction, which locks them
  const open = await claimBatch(noting(db, seen), { ...claim, limit: 10, gate: false });
  assert.equal(open.limitedDue, true, 'the limited webhook with an event due');
  const gated = await claimBatch(noting(db, seen), { ...claim, limit: 10 });
  assert.deepEqual(
    gated.events.map((e) => e.webhook.id),
    [limited],
  );
  // as PostgreSQL plans them for a worker's connections, and as PGlite runs named ones
  for (const name of ['oms_claim_open', 'oms_claim_gate']) {
    const sent = seen.get(name);
    assert.ok(sent, `no ${name} statement was sent`);
    for (const settings of [[], ['enable_bitmapscan = off', 'enable_seqscan = off']]) {
      // the one webhook with an event queued, once for the claim and once for the check,
      // none of the ${PLAIN + LIMITED_IDLE} idle ones
      const read = await rowsRead(db, sent, 'webhooks', settings);
      assert.ok(
        read <= 3,
        `${read} webhook rows read by ${name} (${settings.join(', ') || 'defaults'})`,
      );
    }
  }
});
