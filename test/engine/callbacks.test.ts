import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { createContext, type Context } from '../helpers/context.js';
import { count, until } from './support.js';
import { freePort } from '../helpers/ports.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const to = (path: string) => ctx.receiver.requests.filter((r) => r.path === path);

test('the callback gets a signed POST with the outcome after every attempt', async () => {
  ctx.clock.set(Date.now()); // Webhook.verify checks the timestamp against real time
  const target = '/cb/target';
  ctx.receiver.respond((r) =>
    r.path === target && to(target).length === 1 ? { status: 500, body: 'boom' } : { status: 200 },
  );
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(target),
    callback: ctx.receiver.url('/cb/callback'),
    secret_key: SECRET,
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 5 } },
  });
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  await until('the first callback', () => to('/cb/callback').length === 1);
  ctx.clock.advance(5_000);
  assert.equal(await ctx.worker.runOnce(), 1);
  await until('the second callback', () => to('/cb/callback').length === 2);

  const { rows } = await ctx.db.query<{ uuid: string }>(
    'select uuid::text as uuid from hook_events where webhook_id = $1',
    [hook.id],
  );
  const uuid = rows[0]!.uuid;
  const bodies = to('/cb/callback').map((r) => {
    const headers = {
      'webhook-id': String(r.headers['webhook-id']),
      'webhook-timestamp': String(r.headers['webhook-timestamp']),
      'webhook-signature': String(r.headers['webhook-signature']),
    };
    assert.equal(r.method, 'POST');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.notEqual(headers['webhook-id'], uuid, 'a message of its own, not the delivery');
    return new Webhook(SECRET).verify(r.body, headers);
  });
  // sorted: the two callbacks race nothing, but order over HTTP is not what is tested
  const byCount = bodies.sort(
    (a, b) =>
      (a as { retry_count: number }).retry_count - (b as { retry_count: number }).retry_count,
  );
  assert.deepEqual(byCount, [
    { event: uuid, webhook: hook.id, status: 500, delivered: false, retry_count: 1 },
    { event: uuid, webhook: hook.id, status: 200, delivered: true, retry_count: 2 },
  ]);
  assert.throws(() =>
    new Webhook('whsec_' + Buffer.from('another secret').toString('base64')).verify(
      to('/cb/callback')[0]!.body,
      {
        'webhook-id': String(to('/cb/callback')[0]!.headers['webhook-id']),
        'webhook-timestamp': String(to('/cb/callback')[0]!.headers['webhook-timestamp']),
        'webhook-signature': String(to('/cb/callback')[0]!.headers['webhook-signature']),
      },
    ),
  );
});

test('a failing callback changes nothing about the event', async () => {
  ctx.receiver.respond((r) =>
    r.path === '/cb/broken' ? { status: 500, body: 'callback down' } : { status: 200, body: 'ok' },
  );
  const refused = await ctx.createWebhook({
    target_url: ctx.receiver.url('/cb/delivered-1'),
    callback: `http://127.0.0.1:${await freePort()}/nobody`,
  });
  const erroring = await ctx.createWebhook({
    target_url: ctx.receiver.url('/cb/delivered-2'),
    callback: ctx.receiver.url('/cb/broken'),
  });
  for (const hook of [refused, erroring]) assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 2);
  await until('the broken callback was called', () => to('/cb/broken').length === 1);
  for (const hook of [refused, erroring]) {
    const { rows } = await ctx.db.query<{ delivered: boolean; retry_count: number }>(
      'select delivered, retry_count from hook_events where webhook_id = $1',
      [hook.id],
    );
    assert.deepEqual(rows, [{ delivered: true, retry_count: 1 }]);
    assert.equal(
      await count(
        ctx.db,
        'select count(*) from delivery_attempts a join hook_events e on e.id = a.hook_event_id where e.webhook_id = $1',
        [hook.id],
      ),
      1,
    );
  }
  assert.equal(await count(ctx.db, 'select count(*) from hook_event_queue'), 0);
  assert.equal(await ctx.worker.runOnce(), 0);
});
