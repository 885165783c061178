import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { createContext, type Context } from '../helpers/context.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

interface State {
  retry_count: number | null;
  delivered: boolean;
  response_http_status: number | null;
  run_at: string | null;
  is_active: boolean;
}

const stateOf = async (hookId: number, n = 0): Promise<State> =>
  (
    await ctx.db.query<State>(
      `select e.retry_count, e.delivered, e.response_http_status, oms_ts(q.run_at) as run_at,
              w.is_active
       from hook_events e join webhooks w on w.id = e.webhook_id
       left join hook_event_queue q on q.hook_event_id = e.id
       where e.webhook_id = $1 order by e.id offset $2 limit 1`,
      [hookId, n],
    )
  ).rows[0]!;

/** A webhook at its own path, answered by `reply`, retrying every `seconds`. */
async function hookAnswering(
  path: string,
  reply: { status: number; headers?: Record<string, string> },
  seconds = 10,
): Promise<number> {
  ctx.receiver.respond((r) =>
    r.path === path ? { ...reply, body: 'nope' } : { status: 200, body: 'ok' },
  );
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds } },
  });
  return hook.id as number;
}

test('410 Gone deactivates the webhook and ends the event; its other events wait', async () => {
  const hookId = await hookAnswering('/gone', { status: 410 });
  assert.equal(await ctx.publish(hookId), 202);
  assert.equal(await ctx.publish(hookId), 202);
  // both were claimed in one batch, before the first answer came back
  assert.equal(await ctx.worker.runOnce(), 2);
  for (const n of [0, 1]) {
    const s = await stateOf(hookId, n);
    assert.equal(s.response_http_status, 410);
    assert.equal(s.retry_count, 1);
    assert.equal(s.run_at, null, 'no retry is scheduled');
    assert.equal(s.is_active, false, 'the webhook is deactivated');
  }
  const api = await ctx.api({ url: `/api/v1/oms/webhooks/${hookId}/` });
  assert.equal(api.json().is_active, false);

  // a later event is kept queued (paused) and never sent while the webhook is inactive
  const before = ctx.receiver.requests.length;
  await ctx.db.query(
    `insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
     select id, webhook_id, $2::timestamptz, 5 from hook_events where webhook_id = $1`,
    [hookId, isoMicro(ctx.clock.now())],
  );
  ctx.clock.advance(3600_000);
  assert.equal(await ctx.worker.runOnce(), 0);
  assert.equal(ctx.receiver.requests.length, before);
  await ctx.db.query('delete from hook_event_queue where webhook_id = $1', [hookId]);
});

test('429 with Retry-After longer than the countdown waits for Retry-After', async () => {
  const hookId = await hookAnswering('/busy', { status: 429, headers: { 'retry-after': '120' } });
  assert.equal(await ctx.publish(hookId), 202);
  const sentAt = ctx.clock.now();
  assert.equal(await ctx.worker.runOnce(), 1);
  const s = await stateOf(hookId);
  assert.equal(s.response_http_status, 429);
  assert.equal(s.run_at, isoMicro(sentAt + 120_000));
  assert.equal(s.is_active, true);

  ctx.clock.advance(119_000);
  assert.equal(await ctx.worker.runOnce(), 0, 'not before Retry-After');
  ctx.clock.advance(1_000);
  assert.equal(await ctx.worker.runOnce(), 1);
  await ctx.db.query('delete from hook_event_queue where webhook_id = $1', [hookId]);
});

test('503 with a Retry-After shorter than the countdown keeps the countdown', async () => {
  const hookId = await hookAnswering('/down', { status: 503, headers: { 'retry-after': '5' } }, 60);
  assert.equal(await ctx.publish(hookId), 202);
  const sentAt = ctx.clock.now();
  assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal((await stateOf(hookId)).run_at, isoMicro(sentAt + 60_000));
  await ctx.db.query('delete from hook_event_queue where webhook_id = $1', [hookId]);
});

test('Retry-After is capped at one hour', async () => {
  const hookId = await hookAnswering('/very-busy', {
    status: 503,
    headers: { 'retry-after': String(7 * 24 * 3600) },
  });
  assert.equal(await ctx.publish(hookId), 202);
  const sentAt = ctx.clock.now();
  assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal((await stateOf(hookId)).run_at, isoMicro(sentAt + 3600_000));
  await ctx.db.query('delete from hook_event_queue where webhook_id = $1', [hookId]);
});

test('Retry-After on other statuses is ignored', async () => {
  const hookId = await hookAnswering('/err', { status: 500, headers: { 'retry-after': '600' } });
  assert.equal(await ctx.publish(hookId), 202);
  const sentAt = ctx.clock.now();
  assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal((await stateOf(hookId)).run_at, isoMicro(sentAt + 10_000));
  await ctx.db.query('delete from hook_event_queue where webhook_id = $1', [hookId]);
});
