import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { claimBatch } from '../../src/queue/claim.js';
import type { Db, Queryable } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { WORKER_SERVER_OPTIONS } from '../../src/store/open.js';
import { createPgDb } from '../../src/store/pg.js';
import { createPgliteDb } from '../../src/store/pglite.js';
import { ensureUser } from '../../src/store/tokens.js';
import { createTestSchema, noting, onPostgres, type Sent } from '../helpers/db.js';
import { insertWebhook } from '../helpers/rows.js';

const url = process.env.DATABASE_URL ?? '';
let schema = '';
const QUEUED = 2_000;
let db: Db;

before(async () => {
  if (onPostgres) {
    schema = await createTestSchema(url, 't');
    // one connection, so that its prepared statements can be looked at afterwards
    db = createPgDb({ connectionString: url, schema, max: 1 });
  } else {
    db = await createPgliteDb();
  }
  await migrate(db);
  const user = await ensureUser(db, 'plans', true);
  // many webhooks and all the backlog on one, as in a drain: the shape under which a
  // generic plan of `hook_event_id in (select ...)` hash-joined a scan of the queue
  for (let i = 0; i < 22; i++) await insertWebhook(db, user.id);
  await db.query(
    `with ins as (
       insert into hook_events (webhook_id, uuid, event_type)
       select 1, gen_random_uuid(), 'package.created'
       from generate_series(1, $1) g returning id, webhook_id
     ), payloads as (
       insert into hook_event_payloads (hook_event_id, request_payload)
       select id, json_build_object('seq', id) from ins)
     insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
     select id, webhook_id, now() - interval '1 minute', 5 from ins`,
    [QUEUED],
  );
  // not analyzed, as a queue is on a server without autovacuum
});

after(async () => {
  await db.close();
  if (!onPostgres) return;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`drop schema ${schema} cascade`);
  await c.end();
});

/**
 * Eight claims of ten events on the one connection, `knownOnly` or not: the statement
 * as sent, the events' ids in order, and how many of the eight PostgreSQL planned for
 * their values (custom) and how many ran its generic plan.
 */
async function eightClaims(workerId: string, knownOnly: boolean) {
  const name = knownOnly ? 'oms_claim_known' : 'oms_claim_open';
  const seen = new Map<string, Sent>();
  const claimed: number[] = [];
  for (let i = 0; i < 8; i++) {
    const batch = await claimBatch(noting(db, seen), {
      workerId,
      now: new Date().toISOString(),
      leaseMs: 60_000,
      limit: 10,
      perWebhook: 100,
      room: new Map([[1, 50]]),
      gate: false,
      knownOnly,
    });
    assert.equal(batch.events.length, 10);
    claimed.push(...batch.events.map((e) => e.id));
  }
  const { rows } = await db.query<{ generic_plans: string; custom_plans: string }>(
    `select generic_plans, custom_plans from pg_prepared_statements where name = $1`,
    [name],
  );
  assert.equal(rows.length, 1);
  const plans = { custom: Number(rows[0]!.custom_plans), generic: Number(rows[0]!.generic_plans) };
  return { sent: seen.get(name)!, claimed, plans };
}

test('the common claim keeps one generic plan, which reads the queue by index', async () => {
  const { sent: open, claimed, plans } = await eightClaims('plans', false);
  // oldest first across the webhooks, each event once
  assert.deepEqual(
    claimed,
    Array.from({ length: 80 }, (_, i) => i + 1),
  );
  // PostgreSQL plans the first five afresh, then keeps the generic plan when it is as good
  assert.deepEqual(plans, { custom: 5, generic: 3 });

  // The generic plan knows neither how many events a claim takes nor how many deleted
  // rows the queue's indexes still hold: on a worker's connections it must find them
  // through the indexes, never a bitmap or a sequential scan that visits every
  // deleted row (on a plain connection, this unanalyzed queue gets bitmap scans).
  const plan = onPostgres ? await workerPlan(open) : await sessionPlan(open);
  assert.doesNotMatch(plan, /(Seq|Bitmap Heap) Scan on hook_event_queue/);
  assert.match(plan, /Index Scan using hook_event_queue_pkey/);
  // nor read the payloads of every event stored to join those of the few it claims
  assert.doesNotMatch(plan, /(Seq|Bitmap Heap) Scan on hook_event_payloads/);
  assert.match(plan, /Index Scan using hook_event_payloads_pkey/);
  // and each webhook's range is entered where this worker's claims got to (ClaimCursors),
  // not walked from its head over the entries of every event delivered since the last
  // VACUUM
  assert.match(
    plan,
    /Index Scan using hook_event_queue_webhook_idx on hook_event_queue q_\d+\n\s*Index Cond: \(\(webhook_id = w_\d+\.id\) AND .*ROW\(run_at, hook_event_id\) > ROW\(COALESCE\([^)]*after_run_at/,
  );
});

test('the claim of the known webhooks keeps one generic plan too, which looks them up', async () => {
  const { sent: known, plans } = await eightClaims('plans-known', true);
  // with its rooms as an array, a plan for the values (one webhook) always looked
  // cheaper than the generic one, and every claim was planned afresh
  assert.deepEqual(plans, { custom: 5, generic: 3 });

  const plan = onPostgres ? await workerPlan(known) : await sessionPlan(known, 'oms_claim_known');
  // each known webhook looked up by key, not a scan of every webhook
  assert.match(
    plan,
    /Index Scan using webhooks_pkey on webhooks w_\d+\n\s*Index Cond: \(id = cand\.webhook_id\)/,
  );
  assert.match(
    plan,
    /Index Scan using hook_event_queue_webhook_idx on hook_event_queue q\n\s*Index Cond: \(\(webhook_id = w_\d+\.id\) AND .*ROW\(run_at, hook_event_id\) > ROW\(COALESCE\(cand\.after_run_at/,
  );
});

test('the claim through the gate runs its generic plan from the first, which reads by index', async () => {
  await db.query(`update webhooks set config = '{"max_concurrency": 1000}' where id = 1`);
  try {
    const seen = new Map<string, Sent>();
    for (let i = 0; i < 3; i++) {
      const batch = await claimBatch(noting(db, seen), {
        workerId: 'plans-gated',
        now: new Date().toISOString(),
        leaseMs: 60_000,
        limit: 10,
        perWebhook: 100,
        room: new Map([[1, 50]]),
      });
      assert.equal(batch.events.length, 10);
    }
    const { rows } = await db.query<{ generic_plans: string; custom_plans: string }>(
      `select generic_plans, custom_plans from pg_prepared_statements where name = 'oms_claim'`,
    );
    if (!onPostgres) {
      // PGlite prepares a named statement outside a transaction only (src/store/pglite.ts),
      // and this one runs inside the gate's: it is planned for its values at each call
      assert.equal(rows.length, 0);
      return;
    }
    // planned afresh, each claim spent more time in the planner than in its run
    assert.deepEqual(
      { custom: Number(rows[0]!.custom_plans), generic: Number(rows[0]!.generic_plans) },
      { custom: 0, generic: 3 },
    );
    const plan = await workerPlan(seen.get('oms_claim')!);
    assert.doesNotMatch(plan, /(Seq|Bitmap Heap) Scan on hook_event_queue/);
    // the leases counted from their own index (migration 017), not over the backlog
    assert.match(plan, /Index Scan using hook_event_queue_gated_idx on hook_event_queue l/);
  } finally {
    await db.query(`update webhooks set config = '{}' where id = 1`);
  }
});

const literal = (v: unknown) =>
  `'${(Array.isArray(v) ? `{${v.join(',')}}` : String(v)).replaceAll("'", "''")}'`;

/** On PostgreSQL: the generic plan the statement gets on a worker's connection. */
async function workerPlan(open: Sent): Promise<string> {
  const c = new pg.Client({
    connectionString: url,
    options: `-c search_path=${schema} ${WORKER_SERVER_OPTIONS}`,
  });
  await c.connect();
  try {
    await c.query('set plan_cache_mode = force_generic_plan');
    await c.query(`prepare claim as ${open.sql}`);
    return await explain(c, 'claim', open.params);
  } finally {
    await c.end();
  }
}

/** On PGlite, one session: the generic plan the claims above kept, as it is. */
async function sessionPlan(
  open: { params: readonly unknown[] },
  name = 'oms_claim_open',
): Promise<string> {
  await db.query('set plan_cache_mode = force_generic_plan');
  try {
    return await explain(db, name, open.params);
  } finally {
    await db.query('reset plan_cache_mode');
  }
}

async function explain(
  on: Pick<Queryable, 'query'>,
  name: string,
  params: readonly unknown[],
): Promise<string> {
  const { rows } = await on.query<{ 'QUERY PLAN': string }>(
    `explain (costs off) execute ${name}(${params.map(literal).join(', ')})`,
  );
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}
