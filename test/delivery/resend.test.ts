import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { createContext, type Context } from '../helpers/context.js';
import { eventOf as eventRow, type EventState } from '../helpers/rows.js';

const RESEND = '/api/v1/oms/oms_hook_events/resend-event/';
const UNDELIVERED = '/api/v1/oms/settings/undelivered_webhooks/';

let ctx: Context;
const eventOf = (webhookId: number) => eventRow(ctx.db, webhookId);
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());
afterEach(async () => {
  await ctx.db.query('delete from hook_event_queue');
  ctx.receiver.respond(() => ({ status: 200, body: 'ok' }));
});

const requestsTo = (path: string) => ctx.receiver.requests.filter((r) => r.path === path);

const resend = (body: Record<string, unknown>) =>
  ctx.api({ method: 'POST', url: RESEND, payload: body });

async function isUndelivered(uuid: string): Promise<boolean> {
  const res = await ctx.api({ method: 'GET', url: `${UNDELIVERED}?uuid=${uuid}` });
  assert.equal(res.statusCode, 200);
  return (res.json().results as { uuid: string }[]).some((e) => e.uuid === uuid);
}

/** A webhook whose single attempt failed: an undelivered event with no retry left. */
async function undeliveredEvent(path: string): Promise<{ hookId: number; event: EventState }> {
  ctx.receiver.respond((r) => (r.path === path ? { status: 500, body: 'down' } : { status: 200 }));
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    config: { max_retries: 1 },
  });
  const hookId = hook.id as number;
  assert.equal(await ctx.publish(hookId), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const event = await eventOf(hookId);
  assert.equal(event.delivered, false);
  assert.equal(event.retry_count, 1);
  assert.equal(await isUndelivered(event.uuid), true);
  return { hookId, event };
}

test('resend of an undelivered event makes one attempt now and records it', async () => {
  const path = '/resend/undelivered';
  const { hookId, event } = await undeliveredEvent(path);

  ctx.clock.advance(3_600_000.5);
  const res = await resend({ event: event.uuid });
  assert.equal(res.statusCode, 200);
  assert.equal(res.body, '');
  assert.equal(requestsTo(path).length, 2, 'exactly one more request');
  const after1 = await eventOf(hookId);
  assert.equal(after1.retry_count, 2);
  assert.equal(after1.delivered, false);
  assert.equal(after1.response_http_status, 500);
  assert.deepEqual(after1.times, [isoMicro(ctx.clock.now()), ...event.times]);
  assert.equal(await isUndelivered(event.uuid), true);

  // the resent request is the same event, freshly stamped
  const [first, second] = requestsTo(path);
  assert.equal(second!.body, first!.body);
  assert.equal(second!.headers['webhook-id'], event.uuid);
  assert.equal(second!.headers['webhook-timestamp'], String(Math.floor(ctx.clock.now() / 1000)));

  // the receiver is back
  ctx.receiver.respond(() => ({ status: 200, body: 'welcome back' }));
  ctx.clock.advance(1_000);
  const res2 = await resend({ event: event.uuid });
  assert.equal(res2.statusCode, 200);
  assert.equal(res2.body, '');
  assert.equal(requestsTo(path).length, 3);
  const after2 = await eventOf(hookId);
  assert.equal(after2.delivered, true);
  assert.equal(after2.retry_count, 3);
  assert.equal(after2.response_http_status, 200);
  assert.equal(after2.response_content, 'welcome back');
  assert.deepEqual(after2.times, [isoMicro(ctx.clock.now()), ...after1.times]);
  assert.equal(await isUndelivered(event.uuid), false);

  // nothing was queued by the resends
  ctx.clock.advance(7 * 24 * 3_600_000);
  assert.equal(await ctx.worker.runOnce(), 0);
  assert.equal(requestsTo(path).length, 3);
});

test('resend of a delivered event needs force', async () => {
  const path = '/resend/delivered';
  const hook = await ctx.createWebhook({ target_url: ctx.receiver.url(path) });
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const event = await eventOf(hook.id as number);
  assert.equal(event.delivered, true);

  const refused = await resend({ event: event.uuid });
  assert.equal(refused.statusCode, 400);
  const body = refused.json();
  assert.deepEqual(Object.keys(body), ['event']);
  assert.ok(Array.isArray(body.event) && body.event.length > 0);
  assert.equal(requestsTo(path).length, 1, 'no request without force');
  assert.equal((await eventOf(hook.id as number)).retry_count, 1);

  const refusedToo = await resend({ event: event.uuid, force: false });
  assert.equal(refusedToo.statusCode, 400);
  assert.equal(requestsTo(path).length, 1);

  ctx.clock.advance(10_000);
  const forced = await resend({ event: event.uuid, force: true });
  assert.equal(forced.statusCode, 200);
  assert.equal(forced.body, '');
  assert.equal(requestsTo(path).length, 2, 'the receiver gets it again');
  const after = await eventOf(hook.id as number);
  assert.equal(after.delivered, true);
  assert.equal(after.retry_count, 2);
  assert.equal(after.times.length, 2);
  assert.equal(after.times[0], isoMicro(ctx.clock.now()));
});

test('resend accepts a uuid without dashes, in any case', async () => {
  const path = '/resend/hex';
  const { hookId, event } = await undeliveredEvent(path);
  const hex = event.uuid.replaceAll('-', '').toUpperCase();
  const res = await resend({ event: hex });
  assert.equal(res.statusCode, 200);
  assert.equal(requestsTo(path).length, 2);
  assert.equal((await eventOf(hookId)).retry_count, 2);
});

test('resend of an unknown uuid is 404 and sends nothing', async () => {
  const before = ctx.receiver.requests.length;
  const res = await resend({ event: '6f1c0c3e-0000-4000-8000-000000000000' });
  assert.equal(res.statusCode, 404);
  assert.equal(typeof res.json().detail, 'string');
  assert.equal(ctx.receiver.requests.length, before);
});

test('resend of something that is not a uuid is 400 on the event field', async () => {
  for (const bad of ['garbage', '1234', '6f1c0c3e-0000-4000-8000-00000000000z']) {
    const res = await resend({ event: bad });
    assert.equal(res.statusCode, 400, bad);
    assert.ok(Array.isArray(res.json().event), res.body);
  }
  const missing = await resend({});
  assert.equal(missing.statusCode, 400);
});

test('resend of an event still waiting for a retry makes one attempt and keeps the schedule', async () => {
  const path = '/resend/queued';
  ctx.receiver.respond((r) => (r.path === path ? { status: 500 } : { status: 200 }));
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 600 } },
    config: { max_retries: 5 },
  });
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const event = await eventOf(hook.id as number);
  const due = await ctx.db.query<{ run_at: string }>(
    'select oms_ts(run_at) as run_at from hook_event_queue where hook_event_id = $1',
    [event.id],
  );
  assert.equal(due.rows.length, 1);

  ctx.clock.advance(60_000);
  assert.equal((await resend({ event: event.uuid })).statusCode, 200);
  assert.equal(requestsTo(path).length, 2);
  assert.equal((await eventOf(hook.id as number)).retry_count, 2);
  const still = await ctx.db.query<{ run_at: string; locked_by: string | null }>(
    'select oms_ts(run_at) as run_at, locked_by from hook_event_queue where hook_event_id = $1',
    [event.id],
  );
  assert.deepEqual(still.rows, [{ run_at: due.rows[0]!.run_at, locked_by: null }]);

  // the scheduled retry still happens at its time
  ctx.clock.advance(540_000);
  assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal(requestsTo(path).length, 3);
});

test('an ordinary user can resend only their own events', async () => {
  const path = '/resend/owned';
  ctx.receiver.respond((r) => (r.path === path ? { status: 500 } : { status: 200 }));
  const hook = await ctx.createWebhook(
    { target_url: ctx.receiver.url(path), config: { max_retries: 1 } },
    'alice',
  );
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const event = await eventOf(hook.id as number);
  const bob = await ctx.api({
    method: 'POST',
    url: RESEND,
    payload: { event: event.uuid },
    as: 'bob',
  });
  assert.equal(bob.statusCode, 404);
  assert.equal(requestsTo(path).length, 1);
  const alice = await ctx.api({
    method: 'POST',
    url: RESEND,
    payload: { event: event.uuid },
    as: 'alice',
  });
  assert.equal(alice.statusCode, 200);
  assert.equal(requestsTo(path).length, 2);
});
