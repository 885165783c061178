import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { claimDue } from '../../src/queue/claim.js';
import { recordAttempts } from '../../src/queue/record.js';
import { createContext, type Context } from '../helpers/context.js';
import type { WorkerOptions } from '../../src/delivery/worker.js';
import { Gauge, realWorker, until } from './support.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const claim = (workerId: string, limit = 50) =>
  claimDue(ctx.db, {
    workerId,
    now: isoMicro(ctx.clock.now()),
    leaseMs: 30_000,
    limit,
  });

async function hookWith(config: Record<string, unknown>, path: string, events: number) {
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    config,
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 10 } },
  });
  for (let i = 0; i < events; i++) {
    assert.equal(await ctx.publish(hook.id as number, { n: i }), 202);
  }
  return hook.id as number;
}

/** Records a claimed event as delivered, as its worker would. */
const deliver = (workerId: string, id: number) =>
  recordAttempts(ctx.db, workerId, [
    {
      id,
      at: isoMicro(ctx.clock.now()),
      status: 200,
      content: 'ok',
      delivered: true,
      next: { kind: 'done' },
      durationMs: 1,
      error: null,
      worker: workerId,
      deactivate: false,
    },
  ]);

const clearQueue = () => ctx.db.query('delete from hook_event_queue');

test('config limits are validated', async () => {
  for (const [config, key] of [
    [{ max_concurrency: 0 }, 'max_concurrency'],
    [{ max_concurrency: 2.5 }, 'max_concurrency'],
    [{ rate_limit: 0 }, 'rate_limit'],
    [{ rate_limit: '5' }, 'rate_limit'],
    [{ ordered: 'yes' }, 'ordered'],
  ] as const) {
    const res = await ctx.api({
      method: 'POST',
      url: '/api/v1/oms/webhooks/',
      payload: { target_url: ctx.receiver.url(), event_type: 'package.created', config },
    });
    assert.equal(res.statusCode, 400, JSON.stringify(config));
    assert.ok(res.json().config[key], `${key} is named`);
  }
  const ok = await ctx.api({
    method: 'POST',
    url: '/api/v1/oms/webhooks/',
    payload: {
      target_url: ctx.receiver.url(),
      event_type: 'package.created',
      config: { max_concurrency: 3, rate_limit: 0.5, ordered: true },
    },
  });
  assert.equal(ok.statusCode, 201);
});

test('max_concurrency counts live leases of every worker', async () => {
  const hookId = await hookWith({ max_concurrency: 2 }, '/limit/conc', 5);
  const a = await claim('worker-a');
  assert.equal(a.length, 2, 'two of five');
  assert.ok(a.every((e) => e.webhook.id === hookId));
  assert.equal(
    (await claim('worker-b')).length,
    0,
    'another worker gets none while two are leased',
  );

  await deliver('worker-a', a[0]!.id);
  const b = await claim('worker-b');
  assert.equal(b.length, 1, 'one slot came free');

  // an expired lease (its worker died) no longer counts
  ctx.clock.advance(30_001);
  const c = await claim('worker-c');
  assert.equal(c.length, 2);
  await clearQueue();
});

test('rate_limit is a token bucket on the claiming clock, shared by all workers', async () => {
  await hookWith({ rate_limit: 2 }, '/limit/rate', 8);
  assert.equal((await claim('worker-a')).length, 2, 'a full bucket: one second worth');
  assert.equal((await claim('worker-b')).length, 0, 'empty for everyone');
  ctx.clock.advance(500);
  assert.equal((await claim('worker-b')).length, 1, 'half a second refills one');
  ctx.clock.advance(250);
  assert.equal((await claim('worker-a')).length, 0);
  ctx.clock.advance(10_000);
  assert.equal((await claim('worker-a')).length, 2, 'never more than one second worth');
  await clearQueue();
});

test('ordered: one at a time in creation order, the next only after the previous ends', async () => {
  const path = '/limit/ordered';
  let failFirst = true;
  ctx.receiver.respond((r) => {
    if (r.path === path && failFirst) {
      failFirst = false;
      return { status: 500, body: 'not yet' };
    }
    return { status: 200, body: 'ok' };
  });
  const hookId = await hookWith({ ordered: true }, path, 3);
  const other = await hookWith({}, '/limit/unordered', 2);
  const before = ctx.receiver.requests.length;

  assert.equal(await ctx.worker.runOnce(), 3, 'the oldest of the ordered one, both others');
  assert.equal(await ctx.worker.runOnce(), 0, 'the oldest failed: the others wait for it');
  ctx.clock.advance(10_000);
  for (let i = 0; i < 3; i++) assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal(await ctx.worker.runOnce(), 0);

  const got = ctx.receiver.requests
    .slice(before)
    .filter((r) => r.path === path)
    .map((r) => JSON.parse(r.body).payload.n);
  assert.deepEqual(got, [0, 0, 1, 2]);
  const { rows } = await ctx.db.query<{ n: number }>(
    'select count(*)::int as n from hook_events where webhook_id = any($1) and delivered',
    [[hookId, other]],
  );
  assert.equal(rows[0]!.n, 5);
});

test('ordered: an event that spent its attempts lets the next one go', async () => {
  const path = '/limit/ordered-spent';
  ctx.receiver.respond((r) => (r.path === path ? { status: 500 } : { status: 200 }));
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    config: { ordered: true, max_retries: 1 },
  });
  for (let i = 0; i < 2; i++) assert.equal(await ctx.publish(hook.id as number, { n: i }), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal(await ctx.worker.runOnce(), 1, 'the first is spent; the second goes');
  const got = ctx.receiver.requests
    .filter((r) => r.path === path)
    .map((r) => JSON.parse(r.body).payload.n);
  assert.deepEqual(got, [0, 1]);
});

/**
 * `events` published to a webhook with max_concurrency 2 at a real receiver that answers
 * after `delayMs`, delivered by a running worker with `options`, waited for until every
 * one is recorded as delivered: how many requests arrived, and most at once.
 */
async function deliverLimited(
  path: string,
  events: number,
  delayMs: number,
  options: Partial<WorkerOptions>,
): Promise<{ arrived: number; most: number }> {
  const gauge = await Gauge.start(delayMs);
  const worker = realWorker(ctx, options);
  try {
    const hook = await ctx.createWebhook({
      target_url: gauge.url(path),
      config: { max_concurrency: 2 },
    });
    for (let i = 0; i < events; i++) {
      assert.equal(await ctx.publish(hook.id as number, { n: i }), 202);
    }
    await worker.start();
    await until(`all ${events} delivered and recorded`, async () => {
      const { rows } = await ctx.db.query<{ n: number }>(
        'select count(*)::int as n from hook_events where webhook_id = $1 and delivered',
        [hook.id],
      );
      return rows[0]!.n === events;
    });
    return { arrived: gauge.count(path), most: gauge.max.get(path) ?? 0 };
  } finally {
    await worker.stop();
    await gauge.close();
  }
}

test('a running worker never has more than max_concurrency requests at the target', async () => {
  const { arrived, most } = await deliverLimited('/limited', 10, 60, { concurrency: 10 });
  assert.equal(arrived, 10);
  assert.ok(most <= 2, `at most 2 at once, saw ${most}`);
});

test('a worker records the attempts of a webhook with max_concurrency at once, not at its tick', async () => {
  // a tick far longer than the test may wait: only a record made at once frees the slots
  const { arrived, most } = await deliverLimited('/limited-prompt', 6, 0, {
    concurrency: 10,
    flushIntervalMs: 600_000,
  });
  assert.equal(arrived, 6);
  assert.ok(most <= 2, `at most 2 at once, saw ${most}`);
});
