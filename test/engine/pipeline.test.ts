import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { isoMicro } from '../../src/core/clock.js';
import { enqueueHookEvents } from '../../src/queue/enqueue.js';
import type { Db } from '../../src/store/db.js';
import { createContext, type Context } from '../helpers/context.js';
import { newHookEvent } from '../helpers/rows.js';
import { Gauge, count, realWorker, until } from './support.js';

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

/** `n` events of `hook` written straight to the queue, due a second ago. */
const queueEvents = (hook: number, n: number) =>
  ctx.db.transaction((tx) =>
    enqueueHookEvents(
      tx,
      Array.from({ length: n }, (_, i) => newHookEvent(hook, i)),
      isoMicro(Date.now() - 1_000),
    ),
  );

type ClaimedRow = { id: number | null; webhook_id?: number | null };

/**
 * The test's database as a worker sees it: `ran` gets each statement's name and rows
 * once it has run. A `deaf` one hears no notifications, so that every claim is one the
 * worker chose by itself.
 */
function watchedDb(ran: (name: string | undefined, rows: ClaimedRow[]) => void, deaf = false): Db {
  return new Proxy(ctx.db, {
    get(target, property) {
      if (deaf && property === 'listen') return async () => async () => {};
      if (property === 'query') {
        return async (sql: string, params?: readonly unknown[], name?: string) => {
          const result = await target.query<ClaimedRow>(sql, params, name);
          ran(name, result.rows);
          return result;
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

/** A worker on `db` that claims when woken alone: no poll, no sweep by the clock. */
const wokenOnlyWorker = (db: Db) =>
  realWorker(ctx, {
    db,
    concurrency: 8,
    batchSize: 16,
    pollIntervalMs: 3_600_000,
    sweepMs: 3_600_000,
  });

/** A webhook with 400 events queued and another with none, for a busy worker. */
async function busyAndOther(): Promise<{ busy: number; other: number; events: number }> {
  ctx.receiver.respond(() => ({ status: 200, body: 'ok', delayMs: 20 }));
  const busy = (await ctx.createWebhook({ target_url: ctx.receiver.url('/busy') })).id as number;
  const other = (await ctx.createWebhook({ target_url: ctx.receiver.url('/other') })).id as number;
  const events = 400;
  await queueEvents(busy, events);
  return { busy, other, events };
}

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

/**
 * Webhooks at these targets, with `events` events each published in turns, so that the
 * first webhooks' events are the oldest.
 */
async function webhooksWithEvents(targets: string[], events: number): Promise<number[]> {
  const ids: number[] = [];
  for (const target_url of targets)
    ids.push((await ctx.createWebhook({ target_url })).id as number);
  for (let i = 0; i < events; i++) {
    for (const id of ids) assert.equal(await ctx.publish(id, { n: i }), 202);
  }
  return ids;
}

test("targets that hang hold a few slots at first and one each after their timeouts, never the healthy webhook's", async () => {
  ctx.receiver.respond(() => ({ status: 200, body: 'ok' }));
  // answers after 5 s, past the 2 s timeout: its targets hang
  const hang = await Gauge.start(5_000);
  const attempted = (hookId: number) =>
    count(
      ctx.db,
      'select count(*) from delivery_attempts a join hook_events e on e.id = a.hook_event_id where e.webhook_id = $1',
      [hookId],
    );
  // the hanging targets' events are older: a worker going by age alone would start them first
  const [hangA, hangB] = (await webhooksWithEvents([hang.url('/a'), hang.url('/b')], 12)) as [
    number,
    number,
  ];
  const [healthy] = (await webhooksWithEvents([ctx.receiver.url('/ok')], 30)) as [number];
  // 16 slots: a share of 8 per webhook, a first window of 4. Two targets at their whole
  // share would hold every slot until their requests time out.
  const worker = realWorker(ctx, { concurrency: 16 });
  await worker.start();
  try {
    await until(
      'the healthy webhook has all 30 delivered',
      async () => (await delivered(healthy)) === 30,
    );
    assert.equal(
      (await attempted(hangA)) + (await attempted(hangB)),
      0,
      'delivered while the hanging requests were still waiting for their timeout',
    );
    await until(
      'each hanging target holds its first window of slots',
      () => hang.max.get('/a') === 4 && hang.max.get('/b') === 4,
    );
    // The first window times out: each target is down to one slot, so one more request
    // goes out when the four end and one when that one ends (with four slots, eight).
    // The gauge's open counts are not read from here on: it answers the requests that
    // timed out only after 5 s.
    await until(
      'the first window and the next attempt of each hanging target recorded, and one more sent',
      async () =>
        (await attempted(hangA)) >= 5 &&
        (await attempted(hangB)) >= 5 &&
        hang.count('/a') >= 6 &&
        hang.count('/b') >= 6,
    );
    assert.deepEqual(
      [hang.count('/a'), hang.count('/b')],
      [6, 6],
      'after timing out, each target is sent one request at a time',
    );
  } finally {
    await worker.stop({ graceMs: 0 });
    await hang.close();
  }
  await ctx.db.query('delete from hook_event_queue');
});

test('targets that answer slowly hold at most half the slots together', async () => {
  // answers after 1.1 s (SLOW_ANSWER_MS is 1 s); both webhooks at one path, so that the
  // gauge counts their requests together
  const slow = await Gauge.start(1_100);
  await webhooksWithEvents([slow.url('/slow'), slow.url('/slow')], 20);
  const answered = () => slow.count('/slow') - (slow.now.get('/slow') ?? 0);
  // 16 slots: a share of 8 each, which both reach once answered (one more per answer),
  // so without the cap on slow webhooks the two would hold all 16
  const worker = realWorker(ctx, { concurrency: 16 });
  await worker.start();
  try {
    // the first window of each (four) goes out before either is known to be slow
    await until('the first windows answered', () => answered() >= 8);
    slow.max.set('/slow', slow.now.get('/slow') ?? 0);
    await until('the next round answered', () => answered() >= 16);
    assert.equal(slow.max.get('/slow'), 8, 'slow webhooks together held half the slots');
  } finally {
    await worker.stop({ graceMs: 0 });
    await slow.close();
  }
  await ctx.db.query('delete from hook_event_queue');
});

test('a webhook whose requests time out is claimed for in proportion to its one slot', async () => {
  ctx.receiver.respond(() => ({ status: 200, delayMs: 5_000 }));
  const hook = (
    await ctx.createWebhook({
      target_url: ctx.receiver.url('/hang-held'),
      retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 3600 } },
    })
  ).id as number;
  const leased = () =>
    count(
      ctx.db,
      'select count(*) from hook_event_queue where webhook_id = $1 and locked_by is not null',
      [hook],
    );
  // a share of 8 slots and 32 buffered: 40 events of one webhook at most, and at a window
  // of one slot, 1 + 32 / 8 = 5
  const worker = realWorker(ctx, { concurrency: 16, batchSize: 32 });
  for (let i = 0; i < 4; i++) assert.equal(await ctx.publish(hook, { n: i }), 202);
  await worker.start();
  try {
    await until(
      'the first four attempts timed out and recorded',
      async () =>
        (await count(
          ctx.db,
          'select count(*) from hook_events where webhook_id = $1 and retry_count = 1',
          [hook],
        )) === 4,
    );
    for (let i = 0; i < 30; i++) assert.equal(await ctx.publish(hook, { n: 10 + i }), 202);
    await until('the worker claimed some of the thirty', async () => (await leased()) > 0);
    // a few more polls (every 200 ms), each of which could claim more
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(await leased(), 5, 'one in flight and four waiting, not thirty');
  } finally {
    await worker.stop({ graceMs: 0 });
  }
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

test('a busy worker claims for the webhooks it holds, and still finds the others', async () => {
  // A worker draining one webhook looks only at that webhook in most claims; every
  // SWEEP_MS one looks at them all. It hears no notifications and polls once an hour
  // here, so an event of another webhook that became due is found by a sweep alone.
  const { busy, other, events } = await busyAndOther();
  const claims = { known: 0, sweeps: 0 };
  const db = watchedDb((name) => {
    if (name === 'oms_claim_known') claims.known++;
    if (name === 'oms_claim_open') claims.sweeps++;
  }, true);
  const worker = realWorker(ctx, { db, concurrency: 8, batchSize: 16, pollIntervalMs: 3_600_000 });
  await worker.start();
  // what of the busy webhook's queue was still unclaimed when the other's event arrived
  let unclaimed: number;
  try {
    await until('the busy webhook is draining', async () => (await delivered(busy)) >= 40);
    await queueEvents(other, 1);
    await until('the other webhook has its event', async () => (await delivered(other)) === 1);
    unclaimed = await count(
      ctx.db,
      'select count(*) from hook_event_queue where webhook_id = $1 and locked_by is null',
      [busy],
    );
    await until('all delivered', async () => (await delivered(busy)) === events);
  } finally {
    await worker.stop({ graceMs: 0 });
  }
  assert.ok(unclaimed > 0, 'found while the busy webhook still had events waiting');
  assert.ok(claims.known > 0, 'claims of the held webhooks alone were made');
  assert.ok(claims.sweeps > 0, 'sweeps were made');
});

test("a publish's NOTIFY names its webhooks, and a busy worker claims for them alone", async () => {
  // No sweep is due by the clock here: the other webhook's event is found because the
  // NOTIFY of its publish named it, by a claim of the webhooks the worker knows and it.
  const { busy, other, events } = await busyAndOther();
  const tookOther: (string | undefined)[] = [];
  const db = watchedDb((name, rows) => {
    if (rows.some((r) => r.id !== null && r.webhook_id === other)) tookOther.push(name);
  });
  const worker = wokenOnlyWorker(db);
  await worker.start();
  try {
    await until('the busy webhook is draining', async () => (await delivered(busy)) >= 40);
    await queueEvents(other, 1);
    await until('the other webhook has its event', async () => (await delivered(other)) === 1);
    assert.ok((await delivered(busy)) < events, 'found while the busy webhook still drained');
    await until('all delivered', async () => (await delivered(busy)) === events);
  } finally {
    await worker.stop({ graceMs: 0 });
  }
  assert.deepEqual(tookOther, ['oms_claim_known']);
});

test('draining one webhook, the worker makes no claim it can know comes back empty', async () => {
  // With one webhook at its cap, a claim has nothing to take for it: the worker waits
  // until that webhook has made room, instead of claiming whenever attempts finish, or
  // after each recorded batch of plain deliveries.
  ctx.receiver.respond(() => ({ status: 200, body: 'ok', delayMs: 2 }));
  const hook = (await ctx.createWebhook({ target_url: ctx.receiver.url('/drain') })).id as number;
  const events = 300;
  await queueEvents(hook, events);
  // the worker's claims, and those that took nothing
  const claims = { made: 0, empty: 0 };
  const db = watchedDb((name, rows) => {
    if (name !== 'oms_claim_open' && name !== 'oms_claim_known') return;
    claims.made++;
    if (!rows.some((r) => r.id !== null)) claims.empty++;
  }, true);
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
  // Only claims near the end may come back empty: one made as the last events filled
  // the webhook's room, one once it has made room again, and the sweep after them. A
  // short claim of the known webhooks made while the last sweep's answer stands adds no
  // sweep (one more empty claim each time the drain ended that way: four, in a CI run).
  assert.ok(claims.empty <= 3, `${claims.empty} of ${claims.made} claims took nothing`);
});

test('a claim a NOTIFY wakes adds no sweep when the sweep before it found everything due', async () => {
  // events other tests left queued would be found by the first sweep: none here
  await ctx.db.query('delete from hook_event_queue');
  const hook = (await ctx.createWebhook({ target_url: ctx.receiver.url('/notified') }))
    .id as number;
  const claims: (string | undefined)[] = [];
  const db = watchedDb((name) => {
    if (name === 'oms_claim_open' || name === 'oms_claim_known') claims.push(name);
  });
  const worker = wokenOnlyWorker(db);
  await worker.start();
  try {
    // its first claim, a sweep through the gate's transaction, found everything due
    await until('the worker caught up', () => worker.handoffReport().room > 0);
    claims.length = 0;
    await queueEvents(hook, 1);
    await until('the event delivered', async () => (await delivered(hook)) === 1);
  } finally {
    await worker.stop({ graceMs: 0 });
  }
  // the claim of the webhook the NOTIFY named came back short, as the sweep had; a sweep
  // after it could find nothing either
  assert.deepEqual(claims, ['oms_claim_known']);
});
