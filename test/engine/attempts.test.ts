import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { createContext, type Context } from '../helpers/context.js';
import { freePort } from '../helpers/ports.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

interface AttemptRow {
  hook_event_id: number;
  webhook_id: number;
  attempted_at: string;
  duration_ms: number;
  response_http_status: number | null;
  error: string | null;
  response_excerpt: string;
  worker: string;
}

const attemptRows = async (eventId: number) =>
  (
    await ctx.db.query<AttemptRow>(
      `select hook_event_id, webhook_id, oms_ts(attempted_at) as attempted_at, duration_ms,
              response_http_status, error, response_excerpt, worker
       from delivery_attempts where hook_event_id = $1 order by id`,
      [eventId],
    )
  ).rows;

const eventIdOf = async (hookId: number) =>
  (await ctx.db.query<{ id: number }>('select id from hook_events where webhook_id = $1', [hookId]))
    .rows[0]!.id;

test('every attempt is a delivery_attempts row, and the endpoint lists them oldest first', async () => {
  const path = '/attempts/flaky';
  const long = 'x'.repeat(5000);
  ctx.receiver.respond(() =>
    ctx.receiver.requests.filter((q) => q.path === path).length === 1
      ? { status: 500, body: `boom ${long}` }
      : { status: 200, body: 'fine' },
  );
  const hook = await ctx.createWebhook(
    {
      target_url: ctx.receiver.url(path),
      retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 30 } },
    },
    'alice',
  );
  assert.equal(await ctx.publish(hook.id as number), 202);
  const first = ctx.clock.now();
  assert.equal(await ctx.worker.runOnce(), 1);
  ctx.clock.advance(30_000);
  const second = ctx.clock.now();
  assert.equal(await ctx.worker.runOnce(), 1);

  const id = await eventIdOf(hook.id as number);
  const rows = await attemptRows(id);
  assert.equal(rows.length, 2);
  assert.deepEqual(
    rows.map((r) => [r.attempted_at, r.response_http_status, r.error, r.worker, r.webhook_id]),
    [
      [isoMicro(first), 500, null, 'test-worker', hook.id],
      [isoMicro(second), 200, null, 'test-worker', hook.id],
    ],
  );
  assert.equal(rows[0]!.response_excerpt, `boom ${long}`.slice(0, 1024), 'an excerpt, not all');
  assert.equal(rows[1]!.response_excerpt, 'fine');
  for (const r of rows) assert.ok(Number.isInteger(r.duration_ms) && r.duration_ms >= 0);

  const res = await ctx.api({ url: `/api/v1/oms/oms_hook_events/${id}/attempts/`, as: 'alice' });
  assert.equal(res.statusCode, 200);
  const body = res.json();
  assert.equal(body.count, 2);
  assert.equal(body.next, null);
  assert.deepEqual(
    body.results.map((a: Record<string, unknown>) => Object.keys(a)),
    Array(2).fill([
      'id',
      'attempted_at',
      'duration_ms',
      'response_http_status',
      'error',
      'response_excerpt',
    ]),
  );
  assert.deepEqual(
    body.results.map((a: Record<string, unknown>) => [a.attempted_at, a.response_http_status]),
    [
      [isoMicro(first), 500],
      [isoMicro(second), 200],
    ],
  );
  assert.ok(body.results[0].id < body.results[1].id);

  // paginated like the other lists
  const page = await ctx.api({
    url: `/api/v1/oms/oms_hook_events/${id}/attempts/?page_size=1&page=2`,
    as: 'alice',
  });
  assert.equal(page.statusCode, 200);
  assert.equal(page.json().count, 2);
  assert.equal(page.json().results[0].response_http_status, 200);
  assert.match(page.json().previous, /attempts\/\?page_size=1$/);

  // owner-scoped: another user learns nothing, an admin sees it
  const bob = await ctx.api({ url: `/api/v1/oms/oms_hook_events/${id}/attempts/`, as: 'bob' });
  assert.equal(bob.statusCode, 404);
  const admin = await ctx.api({ url: `/api/v1/oms/oms_hook_events/${id}/attempts/` });
  assert.equal(admin.json().count, 2);
  const missing = await ctx.api({ url: `/api/v1/oms/oms_hook_events/999999/attempts/` });
  assert.equal(missing.statusCode, 404);
});

test('an attempt without a response records the reason as its error', async () => {
  const hook = await ctx.createWebhook({
    target_url: `http://127.0.0.1:${await freePort()}/nobody`,
  });
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const rows = await attemptRows(await eventIdOf(hook.id as number));
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.response_http_status, null);
  assert.equal(rows[0]!.error, 'Connection refused');
  assert.equal(rows[0]!.response_excerpt, '');
});

test('a manual resend is logged too, under its own name', async () => {
  ctx.receiver.respond(() => ({ status: 200, body: 'ok' }));
  const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/attempts/resend') });
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const id = await eventIdOf(hook.id as number);
  const { rows } = await ctx.db.query<{ uuid: string }>(
    'select uuid::text as uuid from hook_events where id = $1',
    [id],
  );
  const res = await ctx.api({
    method: 'POST',
    url: '/api/v1/oms/oms_hook_events/resend-event/',
    payload: { event: rows[0]!.uuid, force: true },
  });
  assert.equal(res.statusCode, 200);
  const log = await attemptRows(id);
  assert.equal(log.length, 2);
  assert.equal(log[0]!.worker, 'test-worker');
  assert.match(log[1]!.worker, /^resend-/);
});
