import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { after, afterEach, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { isoMicro } from '../../src/core/clock.js';
import type { Db } from '../../src/store/db.js';
import { createContext, type Context } from '../helpers/context.js';
import { freePort } from '../helpers/ports.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

interface EventRow {
  id: number;
  uuid: string;
  delivered: boolean;
  retry_count: number | null;
  response_http_status: number | null;
  response_content: string | null;
  request_payload: unknown;
  times: string[];
  queued: boolean;
}

async function eventsOf(db: Db, webhookId: number): Promise<EventRow[]> {
  const { rows } = await db.query<EventRow>(
    `select e.id, e.uuid::text as uuid, e.delivered, e.retry_count, e.response_http_status,
            e.response_content, p.request_payload,
            array(select oms_ts(t) from unnest(e.request_datetimes) with ordinality as u(t, o)
                  order by o) as times,
            exists(select 1 from hook_event_queue q where q.hook_event_id = e.id) as queued
     from hook_events e join hook_event_payloads p on p.hook_event_id = e.id
     where e.webhook_id = $1 order by e.id`,
    [webhookId],
  );
  return rows;
}

async function onlyEventOf(db: Db, webhookId: number): Promise<EventRow> {
  const rows = await eventsOf(db, webhookId);
  assert.equal(rows.length, 1, `one event for webhook ${webhookId}`);
  return rows[0]!;
}

/** The headers a Webhook.verify wants, from what the receiver saw. */
function swHeaders(h: IncomingHttpHeaders): Record<string, string> {
  return {
    'webhook-id': String(h['webhook-id']),
    'webhook-timestamp': String(h['webhook-timestamp']),
    'webhook-signature': String(h['webhook-signature']),
  };
}

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());
afterEach(async () => {
  // no test leaves a due event behind for the next one
  await ctx.db.query('delete from hook_event_queue');
  ctx.receiver.respond(() => ({ status: 200, body: 'ok' }));
});

const requestsTo = (c: Context, path: string) => c.receiver.requests.filter((r) => r.path === path);

test('the receiver gets a signed POST with the payload, headers and basic auth', async () => {
  ctx.clock.set(Date.now() + 0.123); // Webhook.verify checks the timestamp against real time
  ctx.receiver.respond(() => ({ status: 201, body: 'thanks, got it' }));
  const path = '/in/delivery?tenant=acme';
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    secret_key: SECRET,
    additional_headers: { 'X-Tenant': 'acme', 'x-trace-id': 'abc-123' },
    config: { auth: { type: 'basic', username: 'hook-user', password: 'pa:ss word' } },
  });
  assert.equal(await ctx.publish(hook.id as number, { number: 'P1', total: 12.5 }), 202);
  const sentAt = ctx.clock.now();
  assert.equal(await ctx.worker.runOnce(), 1);

  const got = requestsTo(ctx, path);
  assert.equal(got.length, 1);
  const req = got[0]!;
  const row = await onlyEventOf(ctx.db, hook.id as number);

  assert.equal(req.method, 'POST');
  assert.equal(req.path, path);
  assert.equal(req.headers['content-type'], 'application/json');
  assert.equal(req.headers['x-whisperer-event'], 'package.created');
  assert.equal(req.headers['x-tenant'], 'acme');
  assert.equal(req.headers['x-trace-id'], 'abc-123');
  assert.equal(
    req.headers.authorization,
    `Basic ${Buffer.from('hook-user:pa:ss word').toString('base64')}`,
  );

  // body = request_payload
  const body = JSON.parse(req.body);
  assert.deepEqual(body, row.request_payload);
  assert.deepEqual(body, {
    event: { type: 'package.created', uuid: row.uuid.replaceAll('-', '') },
    payload: { number: 'P1', total: 12.5 },
  });
  // byte for byte as JSON.stringify writes it, the keys in the order they were published
  // (jsonb would have put "total" first)
  assert.equal(
    req.body,
    `{"event":{"type":"package.created","uuid":"${row.uuid.replaceAll('-', '')}"},` +
      '"payload":{"number":"P1","total":12.5}}',
  );

  // legacy signature over the exact bytes received
  const hex = createHmac('sha256', SECRET).update(req.body).digest('hex');
  assert.equal(req.headers['x-whisperer-signature'], `sha256=${hex}`);

  // Standard Webhooks
  assert.equal(req.headers['webhook-id'], row.uuid);
  assert.equal(req.headers['webhook-timestamp'], String(Math.floor(sentAt / 1000)));
  assert.deepEqual(new Webhook(SECRET).verify(req.body, swHeaders(req.headers)), body);
  assert.throws(() =>
    new Webhook('whsec_' + Buffer.from('another key').toString('base64')).verify(
      req.body,
      swHeaders(req.headers),
    ),
  );

  // the database row
  assert.equal(row.delivered, true);
  assert.equal(row.retry_count, 1);
  assert.equal(row.response_http_status, 201);
  assert.equal(row.response_content, 'thanks, got it');
  assert.deepEqual(row.times, [isoMicro(sentAt)]);
  assert.ok(row.times[0]!.endsWith('123Z'), row.times[0]);
  assert.equal(row.queued, false);
});

test('the same row is shown by the API', async () => {
  ctx.receiver.respond(() => ({ status: 200, body: '{"ok":true}' }));
  const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/in/api-view') });
  assert.equal(await ctx.publish(hook.id as number, { number: 'P2' }), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const row = await onlyEventOf(ctx.db, hook.id as number);
  const res = await ctx.api({ method: 'GET', url: `/api/v1/oms/oms_hook_events/${row.id}/` });
  assert.equal(res.statusCode, 200);
  const event = res.json();
  assert.equal(event.uuid, row.uuid);
  assert.equal(event.delivered, true);
  assert.equal(event.retry_count, 1);
  assert.equal(event.response_http_status, 200);
  assert.equal(event.response_content, '{"ok":true}');
  assert.deepEqual(event.request_datetimes, row.times);
});

test('an auto-generated secret and a plain secret both verify', async () => {
  ctx.clock.set(Date.now());
  const generated = await ctx.createWebhook({ target_url: ctx.receiver.url('/in/generated') });
  const plain = await ctx.createWebhook({
    target_url: ctx.receiver.url('/in/plain'),
    secret_key: 'not-a-whsec-secret',
  });
  assert.equal(await ctx.publish(generated.id as number), 202);
  assert.equal(await ctx.publish(plain.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 2);

  const g = requestsTo(ctx, '/in/generated')[0]!;
  assert.match(String(generated.secret_key), /^whsec_/);
  assert.ok(new Webhook(String(generated.secret_key)).verify(g.body, swHeaders(g.headers)));
  assert.equal(
    g.headers['x-whisperer-signature'],
    `sha256=${createHmac('sha256', String(generated.secret_key)).update(g.body).digest('hex')}`,
  );

  const p = requestsTo(ctx, '/in/plain')[0]!;
  const raw = new Webhook(Buffer.from('not-a-whsec-secret', 'utf8'), { format: 'raw' });
  assert.ok(raw.verify(p.body, swHeaders(p.headers)));
  assert.equal(
    p.headers['x-whisperer-signature'],
    `sha256=${createHmac('sha256', 'not-a-whsec-secret').update(p.body).digest('hex')}`,
  );
});

test('webhook-id stays the same across a failed attempt and its retry; the timestamp follows the clock', async () => {
  ctx.clock.set(Date.now());
  const path = '/in/retry-ids';
  ctx.receiver.respond((r) =>
    r.path === path && requestsTo(ctx, path).length === 1
      ? { status: 503, body: 'busy' }
      : { status: 200, body: 'ok' },
  );
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    secret_key: SECRET,
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 90 } },
  });
  assert.equal(await ctx.publish(hook.id as number), 202);
  const first = ctx.clock.now();
  assert.equal(await ctx.worker.runOnce(), 1);
  let row = await onlyEventOf(ctx.db, hook.id as number);
  assert.equal(row.delivered, false);
  assert.equal(row.response_http_status, 503);
  assert.equal(row.response_content, 'busy');

  ctx.clock.advance(90_000);
  const second = ctx.clock.now();
  assert.equal(await ctx.worker.runOnce(), 1);

  const [a, b] = requestsTo(ctx, path);
  assert.ok(a && b);
  assert.equal(a.headers['webhook-id'], row.uuid);
  assert.equal(b.headers['webhook-id'], row.uuid);
  assert.equal(a.headers['webhook-timestamp'], String(Math.floor(first / 1000)));
  assert.equal(b.headers['webhook-timestamp'], String(Math.floor(second / 1000)));
  assert.notEqual(a.headers['webhook-signature'], b.headers['webhook-signature']);
  assert.equal(a.body, b.body);
  assert.equal(a.headers['x-whisperer-signature'], b.headers['x-whisperer-signature']);
  const wh = new Webhook(SECRET);
  assert.ok(wh.verify(a.body, swHeaders(a.headers)));
  assert.ok(wh.verify(b.body, swHeaders(b.headers)));

  row = await onlyEventOf(ctx.db, hook.id as number);
  assert.equal(row.delivered, true);
  assert.equal(row.retry_count, 2);
  assert.deepEqual(row.times, [isoMicro(second), isoMicro(first)]);
});

test('a 302 is a failed attempt and its Location is not followed', async () => {
  const path = '/in/moved';
  ctx.receiver.respond((r) =>
    r.path === path
      ? { status: 302, headers: { location: ctx.receiver.url('/landing') }, body: 'moved' }
      : { status: 200, body: 'ok' },
  );
  const hook = await ctx.createWebhook({ target_url: ctx.receiver.url(path) });
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal(requestsTo(ctx, path).length, 1);
  assert.equal(requestsTo(ctx, '/landing').length, 0);
  const row = await onlyEventOf(ctx.db, hook.id as number);
  assert.equal(row.delivered, false);
  assert.equal(row.retry_count, 1);
  assert.equal(row.response_http_status, 302);
  assert.equal(row.response_content, 'moved');
  assert.equal(row.queued, true, 'a retry is scheduled');
});

test('a refused connection is a failed attempt with no status and a readable reason', async () => {
  const port = await freePort();
  const hook = await ctx.createWebhook({ target_url: `http://127.0.0.1:${port}/hook` });
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const row = await onlyEventOf(ctx.db, hook.id as number);
  assert.equal(row.delivered, false);
  assert.equal(row.retry_count, 1);
  assert.equal(row.response_http_status, null);
  assert.match(row.response_content ?? '', /refused/i);
  assert.equal(row.times.length, 1);
  assert.equal(row.queued, true, 'a retry is scheduled');
});

test('a 4xx is a failed attempt with its body stored', async () => {
  const path = '/in/gone';
  ctx.receiver.respond((r) =>
    r.path === path ? { status: 410, body: 'no such hook' } : { status: 200 },
  );
  const hook = await ctx.createWebhook({ target_url: ctx.receiver.url(path) });
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const row = await onlyEventOf(ctx.db, hook.id as number);
  assert.equal(row.delivered, false);
  assert.equal(row.response_http_status, 410);
  assert.equal(row.response_content, 'no such hook');
});

describe('with a 1024-byte response cap', () => {
  let capped: Context;
  before(async () => {
    capped = await createContext({ RESPONSE_CAP_BYTES: '1024' });
  });
  after(() => capped.close());

  test('a 200 KB response body is stored capped', async () => {
    const big = 'abcdefghij'.repeat(20 * 1024);
    capped.receiver.respond(() => ({ status: 200, body: big }));
    const hook = await capped.createWebhook();
    assert.equal(await capped.publish(hook.id as number), 202);
    assert.equal(await capped.worker.runOnce(), 1);
    const row = await onlyEventOf(capped.db, hook.id as number);
    assert.equal(row.delivered, true);
    assert.equal(row.response_http_status, 200);
    assert.equal(row.response_content, big.slice(0, 1024));
  });
});

describe('with a 300 ms request timeout', () => {
  let slow: Context;
  before(async () => {
    slow = await createContext({ REQUEST_TIMEOUT_MS: '300', LEASE_MS: '30000' });
  });
  after(() => slow.close());

  test('a receiver slower than the timeout is a failed attempt mentioning the timeout', async () => {
    slow.receiver.respond(() => ({ status: 200, body: 'too late', delayMs: 1500 }));
    const hook = await slow.createWebhook();
    assert.equal(await slow.publish(hook.id as number), 202);
    assert.equal(await slow.worker.runOnce(), 1);
    assert.equal(slow.receiver.requests.length, 1);
    const row = await onlyEventOf(slow.db, hook.id as number);
    assert.equal(row.delivered, false);
    assert.equal(row.retry_count, 1);
    assert.equal(row.response_http_status, null);
    assert.match(row.response_content ?? '', /time/i);
    assert.equal(row.queued, true, 'a retry is scheduled');
  });
});
