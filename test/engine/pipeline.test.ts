import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { isoMicro } from '../../src/core/clock.js';
import { enqueueHookEvents } from '../../src/queue/enqueue.js';
import { createContext, type Context } from '../helpers/context.js';
import { newHookEvent } from '../helpers/rows.js';
import { count, realWorker, until } from './support.js';

// REQUEST_TIMEOUT_MS is 2000 in the test context: a target answering after 5 s hangs
// until the timeout.
let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const delivered = (hookId: number) =>
  count(ctx.db, 'select count(*) from hook_events where webhook_id = $1 and delivered', [hookId]);
const locked = () =>
  count(ctx.db, 'select count(*) from hook_event_queue where locked_by is not null');

test('a hanging target does not hold back a healthy one; stop releases what is still in flight', async () => {
  ctx.receiver.respond((r) =>
    r.path === '/hang' ? { status: 200, delayMs: 5_000 } : { status: 200, body: 'ok' },
  );
  const hanging = (await ctx.createWebhook({ target_url: ctx.receiver.url('/hang') })).id as number;
  const healthy = (await ctx.createWebhook({ target_url: ctx.receiver.url('/ok') })).id as number;
  const worker = realWorker(ctx, { concurrency: 4 });
  // the hanging target's events are older: a worker going by age alone would start them first
  for (let i = 0; i < 6; i++) assert.equal(await ctx.publish(hanging, { n: i }), 202);
  for (let i = 0; i < 10; i++) assert.equal(await ctx.publish(healthy, { n: i }), 202);
  await worker.start();
  try {
    await until(
      'the healthy webhook has all ten delivered',
      async () => (await delivered(healthy)) === 10,
    );
    const { rows } = await ctx.db.query<{ attempted: number; queued: number }>(
      `select count(*) filter (where e.retry_count is not null)::int as attempted,
              count(q.hook_event_id)::int as queued
       from hook_events e left join hook_event_queue q on q.hook_event_id = e.id
       where e.webhook_id = $1`,
      [hanging],
    );
    assert.deepEqual(rows[0], { attempted: 0, queued: 6 }, 'the hanging ones are still pending');
    assert.ok(
      ctx.receiver.requests.some((r) => r.path === '/hang'),
      'and they were sent',
    );
  } finally {
    await worker.stop({ graceMs: 0 });
  }
  assert.equal(await locked(), 0, 'no event is left locked');
  assert.equal(
    await count(
      ctx.db,
      'select count(*) from hook_events where webhook_id = $1 and retry_count is not null',
      [hanging],
    ),
    0,
    'an attempt cut short by the shutdown is not recorded; the event goes out again',
  );
  await ctx.db.query('delete from hook_event_queue');
});

test('stop lets in-flight attempts finish within the grace period and records them', async () => {
  ctx.receiver.respond(() => ({ status: 200, body: 'slowly', delayMs: 300 }));
  const hook = (await ctx.createWebhook({ target_url: ctx.receiver.url('/slowish') })).id as number;
  const worker = realWorker(ctx, { concurrency: 8 });
  const before = ctx.receiver.requests.length;
  for (let i = 0; i < 3; i++) assert.equal(await ctx.publish(hook, { n: i }), 202);
  await worker.start();
  await ctx.receiver.waitFor(before + 3);
  await worker.stop({ graceMs: 10_000 });
  assert.equal(await delivered(hook), 3);
  assert.equal(await locked(), 0);
  assert.equal(await count(ctx.db, 'select count(*) from hook_event_queue'), 0);
});

test('when the database fails, the worker backs off and resumes by itself', async () => {
  ctx.receiver.respond(() => ({ status: 200, body: 'ok', delayMs: 200 }));
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const worker = realWorker(ctx, { concurrency: 4, logger, pollIntervalMs: 100 });
  const hook = (await ctx.createWebhook({ target_url: ctx.receiver.url('/outage') })).id as number;
  const before = ctx.receiver.requests.length;
  assert.equal(await ctx.publish(hook, { n: 1 }), 202);
  await worker.start();
  try {
    // the attempt is on the wire when the queue table goes away: recording it fails, and
    // so does every claim
    await ctx.receiver.waitFor(before + 1);
    await ctx.db.query('alter table hook_event_queue rename to hook_event_queue_away');
    await until('a failed claim and a failed recording are logged', () =>
      ['claim failed', 'recording attempts failed'].every((m) => lines.some((l) => l.includes(m))),
    );
    await ctx.db.query('alter table hook_event_queue_away rename to hook_event_queue');
    assert.equal(await ctx.publish(hook, { n: 2 }), 202);
    await until('both events delivered', async () => (await delivered(hook)) === 2);
  } finally {
    await worker.stop();
  }
  assert.equal(await locked(), 0);
});

test('draining one webhook, the worker makes no claim it can know comes back empty', async () => {
  // With one webhook at its cap, a claim has nothing to take for it: the worker waits
  // until that webhook has made room, instead of claiming whenever attempts finish, or
  // after each recorded batch of plain deliveries.
  ctx.receiver.respond(() => ({ status: 200, body: 'ok', delayMs: 2 }));
  const hook = (await ctx.createWebhook({ target_url: ctx.receiver.url('/drain') })).id as number;
  const events = 300;
  await ctx.db.transaction((tx) =>
    enqueueHookEvents(
      tx,
      Array.from({ length: events }, (_, n) => newHookEvent(hook, n)),
      isoMicro(Date.now() - 1_000),
    ),
  );
  const claims = { made: 0, empty: 0 };
  // The worker's database, counting its claims and those that took nothing. It hears no
  // notifications (other test files on the same PostgreSQL database publish on the same
  // channels) and polls once an hour: every claim in this test is one the worker chose.
  const db = new Proxy(ctx.db, {
    get(target, property) {
      if (property === 'listen') return async () => async () => {};
      if (property === 'query') {
        return async (sql: string, params?: readonly unknown[], name?: string) => {
          const result = await target.query<{ id: number | null }>(sql, params, name);
          if (name === 'oms_claim_open') {
            claims.made++;
            if (!result.rows.some((r) => r.id !== null)) claims.empty++;
          }
          return result;
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
  const worker = realWorker(ctx, { db, concurrency: 8, batchSize: 16, pollIntervalMs: 3_600_000 });
  await worker.start();
  try {
    await until('all delivered', async () => (await delivered(hook)) === events);
  } finally {
    await worker.stop({ graceMs: 0 });
  }
  const received = ctx.receiver.requests.filter((r) => r.path === '/drain').length;
  assert.ok(received >= events, `the receiver got ${received} of ${events}`);
  assert.ok(claims.made >= events / 20, `claims of at most a cap's room each: ${claims.made}`);
  // the last claims, which find the queue empty, are all that may come back empty
  assert.ok(claims.empty <= 3, `${claims.empty} of ${claims.made} claims took nothing`);
});
