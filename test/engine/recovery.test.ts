import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';
import { count } from './support.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const bulk = (payload: Record<string, unknown>, as: 'admin' | 'alice' | 'bob' = 'admin') =>
  ctx.api({ method: 'POST', url: '/api/v1/oms/oms_hook_events/bulk-resend/', payload, as });

interface Row {
  id: number;
  delivered: boolean;
  retry_count: number | null;
  max_attempts: number | null;
}
const rowsOf = async (hookId: number) =>
  (
    await ctx.db.query<Row>(
      `select e.id, e.delivered, e.retry_count, q.max_attempts
       from hook_events e left join hook_event_queue q on q.hook_event_id = e.id
       where e.webhook_id = $1 order by e.id`,
      [hookId],
    )
  ).rows;

/** Runs the worker until nothing is due, moving the clock past every retry. */
async function drain(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    await ctx.worker.runOnce();
    ctx.clock.advance(60_000);
  }
}

test('bulk-resend queues spent events again with a fresh budget, scoped to the owner', async () => {
  let down = true;
  ctx.receiver.respond(() => (down ? { status: 500, body: 'down' } : { status: 200, body: 'ok' }));
  const retry = { choice: 'fixed', kwargs: { seconds: 10 } };
  const alice = await ctx.createWebhook(
    {
      target_url: ctx.receiver.url('/alice'),
      event_type: 'package.*',
      config: { max_retries: 2 },
      retry_countdown_config: retry,
    },
    'alice',
  );
  const bob = await ctx.createWebhook(
    {
      target_url: ctx.receiver.url('/bob'),
      config: { max_retries: 1 },
      retry_countdown_config: retry,
    },
    'bob',
  );
  const early = ctx.clock.now();
  assert.equal(await ctx.publish(alice.id as number, {}, { event_type: 'package.created' }), 202);
  ctx.clock.advance(3600_000);
  const middle = new Date(ctx.clock.now()).toISOString();
  assert.equal(await ctx.publish(alice.id as number, {}, { event_type: 'package.updated' }), 202);
  assert.equal(await ctx.publish(alice.id as number, {}, { event_type: 'package.created' }), 202);
  assert.equal(await ctx.publish(bob.id as number), 202);
  await drain();
  for (const r of await rowsOf(alice.id as number)) {
    assert.deepEqual([r.delivered, r.retry_count, r.max_attempts], [false, 2, null], 'spent');
  }

  // bad dates are named
  const bad = await bulk({ since: '2026-02-30' }, 'alice');
  assert.equal(bad.statusCode, 400);
  assert.deepEqual(Object.keys(bad.json()), ['since']);

  // a filter for someone else's webhook matches nothing
  assert.deepEqual((await bulk({ webhook: bob.id }, 'alice')).json(), { count: 0 });

  // event_type and since together: only the later package.created
  const some = await bulk({ event_type: 'package.created', since: middle }, 'alice');
  assert.equal(some.statusCode, 202);
  assert.deepEqual(some.json(), { count: 1 });
  const [first, second, third] = await rowsOf(alice.id as number);
  assert.equal(first!.max_attempts, null);
  assert.equal(second!.max_attempts, null);
  assert.equal(third!.max_attempts, 4, 'retry_count 2 + max_retries 2');

  // until: only the early one; an already queued event is not counted again
  const untilEarly = await bulk(
    { until: new Date(early + 1000).toISOString().replace('Z', '+00:00') },
    'alice',
  );
  assert.deepEqual(untilEarly.json(), { count: 1 });
  assert.deepEqual((await bulk({}, 'alice')).json(), { count: 1 }, 'the package.updated one');
  assert.deepEqual((await bulk({}, 'alice')).json(), { count: 0 }, 'all queued already');
  assert.equal(
    await count(ctx.db, 'select count(*) from hook_event_queue where webhook_id = $1', [bob.id]),
    0,
    "bob's event is not alice's to resend",
  );

  // the target is back: the re-queued events are delivered
  down = false;
  const before = ctx.receiver.requests.length;
  assert.equal(await ctx.worker.runOnce(), 3);
  assert.equal(ctx.receiver.requests.length, before + 3);
  for (const r of await rowsOf(alice.id as number)) {
    assert.deepEqual([r.delivered, r.retry_count, r.max_attempts], [true, 3, null]);
  }

  // an admin reaches everyone's; delivered events are never re-queued
  assert.deepEqual((await bulk({})).json(), { count: 1 });
  assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal((await rowsOf(bob.id as number))[0]!.delivered, true);
});

test('a failing re-queued event gets as many attempts again as max_retries', async () => {
  ctx.receiver.respond(() => ({ status: 500 }));
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url('/budget'),
    config: { max_retries: 2 },
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 10 } },
  });
  assert.equal(await ctx.publish(hook.id as number), 202);
  await drain();
  assert.deepEqual((await bulk({ webhook: hook.id })).json(), { count: 1 });
  await drain();
  const [row] = await rowsOf(hook.id as number);
  assert.deepEqual([row!.delivered, row!.retry_count, row!.max_attempts], [false, 4, null]);
  assert.equal(ctx.receiver.requests.filter((r) => r.path === '/budget').length, 4);
});
