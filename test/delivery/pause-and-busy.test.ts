import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { claimDue } from '../../src/queue/claim.js';
import { createContext, type Context } from '../helpers/context.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const queued = async () =>
  (await ctx.db.query<{ n: number }>('select count(*)::int as n from hook_event_queue')).rows[0]!.n;

test('deactivating a webhook pauses its queued events; reactivating resumes them', async () => {
  const hook = await ctx.createWebhook();
  assert.equal(await ctx.publish(hook.id as number), 202);
  const patch = (is_active: boolean) =>
    ctx.api({ method: 'PATCH', url: `/api/v1/oms/webhooks/${hook.id}/`, payload: { is_active } });
  assert.equal((await patch(false)).statusCode, 200);

  assert.equal(await ctx.worker.runOnce(), 0);
  assert.equal(ctx.receiver.requests.length, 0);
  assert.equal(await queued(), 1, 'the event stays queued while paused');
  const { rows } = await ctx.db.query<{ retry_count: number | null }>(
    'select retry_count from hook_events',
  );
  assert.equal(rows[0]!.retry_count, null, 'no attempt was recorded');

  assert.equal((await patch(true)).statusCode, 200);
  assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal(ctx.receiver.requests.length, 1);
  assert.equal(await queued(), 0);
});

test('a resend while a worker holds the event answers 409 and sends nothing', async () => {
  ctx.receiver.respond(() => ({ status: 500, body: 'down' }));
  const hook = await ctx.createWebhook({
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 60 } },
  });
  assert.equal(await ctx.publish(hook.id as number), 202);
  const before = ctx.receiver.requests.length;
  // Another worker claims the event and is, as far as anyone knows, sending it now.
  const claimed = await claimDue(ctx.db, {
    workerId: 'other-worker',
    now: isoMicro(ctx.clock.now()),
    leaseMs: 30_000,
    limit: 10,
  });
  assert.equal(claimed.length, 1);
  const res = await ctx.api({
    method: 'POST',
    url: '/api/v1/oms/oms_hook_events/resend-event/',
    payload: { event: claimed[0]!.uuid },
  });
  assert.equal(res.statusCode, 409);
  assert.match(res.json().detail, /in progress/);
  assert.equal(ctx.receiver.requests.length, before);
  const { rows } = await ctx.db.query<{ locked_by: string }>(
    'select locked_by from hook_event_queue',
  );
  assert.equal(rows[0]!.locked_by, 'other-worker', 'the worker keeps its lease');

  // Once the lease has run out, the resend goes through.
  ctx.clock.advance(30_001);
  const retry = await ctx.api({
    method: 'POST',
    url: '/api/v1/oms/oms_hook_events/resend-event/',
    payload: { event: claimed[0]!.uuid },
  });
  assert.equal(retry.statusCode, 200);
  assert.equal(ctx.receiver.requests.length, before + 1);
});
