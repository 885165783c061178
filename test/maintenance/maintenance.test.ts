import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { Maintenance } from '../../src/maintenance/maintenance.js';
import { rescueLeases } from '../../src/maintenance/rescue.js';
import type { Db } from '../../src/store/db.js';
import { createContext, type Context } from '../helpers/context.js';

/**
 * The maintenance jobs in-process, on both databases, with the context's manual clock:
 * retention and auto-disable are judged by that clock, lease rescue by the database's.
 * (test/process/maintenance.test.ts shows the same against real processes.)
 */
let ctx: Context;
let maintenance: Maintenance;
const DAY = 86_400_000;
before(async () => {
  ctx = await createContext();
  maintenance = new Maintenance({
    db: ctx.db,
    clock: ctx.clock,
    logger: pino({ level: 'silent' }),
    sender: ctx.sender,
    heartbeatMs: 1_000,
    intervalMs: 60_000,
    retentionDays: 84,
    autoDisableDays: 5,
    callbackTimeoutMs: 2_000,
    retentionBatchSize: 3,
    retentionPauseMs: 0,
  });
});
after(() => ctx.close());

const count = async (sql: string, params: unknown[] = []) =>
  (await ctx.db.query<{ n: number }>(sql, params)).rows[0]!.n;

test('retention purges events older than RETENTION_DAYS, batch after batch, and keeps the rest', async () => {
  const hook = (await ctx.createWebhook({ is_active: true }, 'admin')).id as number;
  for (let i = 0; i < 7; i++) assert.equal(await ctx.publish(hook), 202);
  ctx.clock.advance(80 * DAY);
  assert.equal(await ctx.publish(hook), 202);
  ctx.clock.advance(5 * DAY); // the first seven are 85 days old, the last one 5

  const { purged } = await maintenance.runOnce();
  assert.equal(purged, 7);
  assert.equal(
    await count('select count(*)::int as n from hook_events where webhook_id = $1', [hook]),
    1,
  );
  assert.equal(
    await count('select count(*)::int as n from hook_event_queue where webhook_id = $1', [hook]),
    1,
  );
  await ctx.db.query('delete from hook_events where webhook_id = $1', [hook]);
});

test('a webhook failing for AUTO_DISABLE_DAYS is deactivated, its callback told; a recovering one is not', async () => {
  ctx.receiver.respond((r) => ({ status: r.path === '/down' || r.path === '/flaky' ? 500 : 200 }));
  const down = (
    await ctx.createWebhook({
      target_url: ctx.receiver.url('/down'),
      callback: ctx.receiver.url('/callback'),
      retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 60 } },
    })
  ).id as number;
  const flaky = (
    await ctx.createWebhook({
      target_url: ctx.receiver.url('/flaky'),
      retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 60 } },
    })
  ).id as number;
  assert.equal(await ctx.publish(down), 202);
  assert.equal(await ctx.publish(flaky), 202);
  assert.equal(await ctx.worker.runOnce(), 2); // both fail: the streaks begin

  ctx.clock.advance(3 * DAY);
  assert.deepEqual((await maintenance.runOnce()).disabled, [], 'three days is not enough');
  // The flaky target recovers for one event, then fails again.
  ctx.receiver.respond((r) => ({ status: r.path === '/down' ? 500 : 200 }));
  assert.equal(await ctx.publish(flaky), 202);
  ctx.clock.advance(1000);
  await ctx.worker.runOnce();
  ctx.receiver.respond((r) => ({ status: r.path === '/down' || r.path === '/flaky' ? 500 : 200 }));
  assert.equal(await ctx.publish(flaky), 202);
  assert.equal(await ctx.publish(down), 202);
  ctx.clock.advance(1000);
  await ctx.worker.runOnce();

  ctx.clock.advance(3 * DAY); // six days since the first failures
  assert.deepEqual((await maintenance.runOnce()).disabled, [down]);
  const { rows } = await ctx.db.query<{ id: number; is_active: boolean }>(
    'select id, is_active from webhooks where id = any($1::int[]) order by id',
    [[down, flaky]],
  );
  assert.deepEqual(rows, [
    { id: down, is_active: false },
    { id: flaky, is_active: true },
  ]);
  // The worker's per-attempt callbacks go to the same URL; this one names its own event.
  const told = ctx.receiver.requests.filter(
    (r) => r.path === '/callback' && r.headers['x-whisperer-event'] === 'webhook.disabled',
  );
  assert.equal(told.length, 1);
  const body = JSON.parse(told[0]!.body) as { webhook: number; is_active: boolean; reason: string };
  assert.equal(body.webhook, down);
  assert.equal(body.is_active, false);
  assert.match(body.reason, /has failed, for more than 5 days/);
  assert.ok(told[0]!.headers['webhook-signature'], 'the callback is signed');
  // Already inactive: the next pass leaves it alone and tells nobody again.
  assert.deepEqual((await maintenance.runOnce()).disabled, []);
});

test('a worker unseen for three heartbeats loses its leases; a live one keeps them', async () => {
  const hook = (await ctx.createWebhook({ target_url: ctx.receiver.url('/leased') })).id as number;
  assert.equal(await ctx.publish(hook), 202);
  assert.equal(await ctx.publish(hook), 202);
  const { rows: ids } = await ctx.db.query<{ id: number }>(
    'select hook_event_id as id from hook_event_queue where webhook_id = $1 order by 1',
    [hook],
  );
  await ctx.db.query(
    `insert into workers (id, last_seen) values ('dead', now() - interval '10 seconds'),
                                                ('alive', now())`,
  );
  await ctx.db.query(
    `update hook_event_queue set locked_by = case when hook_event_id = $1 then 'dead' else 'alive' end,
                                 locked_until = now() + interval '1 hour'
     where webhook_id = $2`,
    [ids[0]!.id, hook],
  );
  const { rescued } = await maintenance.runOnce();
  assert.deepEqual(rescued, { workers: ['dead'], released: 1 });
  const { rows } = await ctx.db.query<{ id: number; locked_by: string | null }>(
    'select hook_event_id as id, locked_by from hook_event_queue where webhook_id = $1 order by 1',
    [hook],
  );
  assert.deepEqual(rows, [
    { id: ids[0]!.id, locked_by: null },
    { id: ids[1]!.id, locked_by: 'alive' },
  ]);
  assert.equal(await count(`select count(*)::int as n from workers where id = 'dead'`), 0);
});

test('with every worker alive, a rescue does not read the queue', async () => {
  // every heartbeat runs one; the queue's first pages can be all deleted rows
  await ctx.db.query(`insert into workers (id, last_seen) values ('alive-too', now())`);
  const statements: string[] = [];
  const db: Db = {
    ...ctx.db,
    transaction: (fn) =>
      ctx.db.transaction((tx) =>
        fn({
          query: (sql, params, name) => {
            statements.push(sql);
            return tx.query(sql, params, name);
          },
        }),
      ),
  };
  assert.deepEqual(await rescueLeases(db, 3_000), { workers: [], released: 0 });
  assert.ok(statements.some((sql) => /delete from workers/.test(sql)));
  assert.deepEqual(
    statements.filter((sql) => /hook_event_queue/.test(sql)),
    [],
  );
  await ctx.db.query(`delete from workers where id = 'alive-too'`);
});
