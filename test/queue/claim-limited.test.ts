import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { claimBatch } from '../../src/queue/claim.js';
import type { Db } from '../../src/store/db.js';
import { noting, testDb, type Sent } from '../helpers/db.js';
import { insertOtherWebhooks, insertWebhook } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
const PLAIN = 300;

before(async () => {
  ({ db, drop } = await testDb());
  const { rows } = await db.query<{ id: number }>(
    `insert into users (username, is_admin) values ('limits', true) returning id`,
  );
  // many webhooks without a shared limit, one with
  await insertOtherWebhooks(db, rows[0]!.id, { count: PLAIN });
  const limited = await insertWebhook(db, rows[0]!.id);
  await db.query(`update webhooks set config = '{"max_concurrency": 2}' where id = $1`, [limited]);
  await db.query('analyze webhooks');
});
after(() => drop());

/** The statement's plan as text, under the given `set local` settings. */
async function planText({ sql, params }: Sent, settings: string[]): Promise<string> {
  return db.transaction(async (tx) => {
    for (const s of settings) await tx.query(`set local ${s}`);
    const { rows } = await tx.query<{ 'QUERY PLAN': string }>(`explain (costs off) ${sql}`, [
      ...params,
    ]);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  });
}

test('the check for webhooks with shared limits reads those webhooks alone', async () => {
  const seen = new Map<string, Sent>();
  const claim = { workerId: 'w-limits', now: new Date().toISOString(), leaseMs: 60_000 };
  // the common claim, which says whether a limited webhook is waiting (the gate's lookup
  // of them, in a transaction, has the same condition)
  await claimBatch(noting(db, seen), { ...claim, limit: 10, gate: false });
  const sent = seen.get('oms_claim_open');
  assert.ok(sent, 'no oms_claim_open statement was sent');
  // as PostgreSQL plans it for a worker's connections, and as PGlite runs named ones
  for (const settings of [[], ['enable_bitmapscan = off', 'enable_seqscan = off']]) {
    const plan = await planText(sent, settings);
    assert.match(plan, /webhooks_limited_idx/, settings.join(', ') || 'defaults');
  }
});
