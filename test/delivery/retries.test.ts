import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import pino from 'pino';
import { isoMicro } from '../../src/core/clock.js';
import { countdownSeconds, type RetryCountdownConfig } from '../../src/core/retry.js';
import { Sender } from '../../src/delivery/sender.js';
import { Worker } from '../../src/delivery/worker.js';
import { claimDue } from '../../src/queue/claim.js';
import { createContext, type Context } from '../helpers/context.js';
import { eventOf as eventRow } from '../helpers/rows.js';

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

/** The queue row of an event: when it is due and how long after its last attempt. */
async function queueOf(eventId: number): Promise<{ runAt: string; wait: number } | undefined> {
  const { rows } = await ctx.db.query<{ run_at: string; wait: string | number }>(
    `select oms_ts(q.run_at) as run_at,
            extract(epoch from (q.run_at - e.request_datetimes[1])) as wait
     from hook_event_queue q join hook_events e on e.id = q.hook_event_id
     where q.hook_event_id = $1`,
    [eventId],
  );
  const row = rows[0];
  return row && { runAt: row.run_at, wait: Number(row.wait) };
}

async function undelivered(uuid: string): Promise<Record<string, unknown> | undefined> {
  const res = await ctx.api({
    method: 'GET',
    url: `/api/v1/oms/settings/undelivered_webhooks/?uuid=${uuid}`,
  });
  assert.equal(res.statusCode, 200);
  const results = res.json().results as Record<string, unknown>[];
  return results.find((e) => e.uuid === uuid);
}

/**
 * Drives a webhook that always fails through all its attempts, checking after each one
 * that the next is due exactly `expectedWait(n)` seconds later and not a moment sooner.
 */
async function failThroughSchedule(
  path: string,
  retry: RetryCountdownConfig,
  maxRetries: number,
  expectedWait: (n: number, wait: number) => void,
): Promise<{ hookId: number; times: number[] }> {
  ctx.receiver.respond((r) =>
    r.path === path ? { status: 500, body: 'boom' } : { status: 200, body: 'ok' },
  );
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    retry_countdown_config: retry,
    config: { max_retries: maxRetries },
  });
  const hookId = hook.id as number;
  assert.equal(await ctx.publish(hookId), 202);
  const times: number[] = [];
  for (let n = 1; n <= maxRetries; n++) {
    assert.equal(await ctx.worker.runOnce(), 1, `attempt ${n} is made`);
    times.push(ctx.clock.now());
    assert.equal(requestsTo(path).length, n);
    const event = await eventOf(hookId);
    assert.equal(event.retry_count, n);
    assert.equal(event.delivered, false);
    assert.equal(event.response_http_status, 500);
    assert.equal(event.times[0], isoMicro(ctx.clock.now()));
    if (n === maxRetries) break;

    const queued = await queueOf(event.id);
    assert.ok(queued, `attempt ${n + 1} is scheduled`);
    expectedWait(n, queued.wait);
    assert.equal(queued.runAt, isoMicro(ctx.clock.now() + queued.wait * 1000));

    // one millisecond early: nothing is due
    ctx.clock.advance(queued.wait * 1000 - 1);
    assert.equal(await ctx.worker.runOnce(), 0, `attempt ${n + 1} is not made early`);
    assert.equal(requestsTo(path).length, n);
    ctx.clock.advance(1);
  }
  return { hookId, times };
}

describe('each strategy schedules the next attempt countdown(n) seconds after the n-th', () => {
  const strategies: [string, RetryCountdownConfig][] = [
    ['fixed', { choice: 'fixed', kwargs: { seconds: 30 } }],
    ['linear', { choice: 'linear', kwargs: { base: 10 } }],
    ['linear with a limit', { choice: 'linear', kwargs: { base: 10, limit: 25 } }],
    ['exponential', { choice: 'exponential', kwargs: { base: 2 } }],
    [
      'exponential with factor and limit',
      { choice: 'exponential', kwargs: { base: 3, factor: 2, limit: 100 } },
    ],
  ];
  for (const [name, retry] of strategies) {
    test(name, async () => {
      const path = `/retry/${name.replaceAll(' ', '-')}`;
      const seen: number[] = [];
      await failThroughSchedule(path, retry, 5, (n, wait) => {
        seen.push(wait);
        assert.equal(wait, countdownSeconds(retry, n), `wait after attempt ${n}`);
      });
      assert.equal(seen.length, 4);
    });
  }

  test('the expected numbers, spelled out', async () => {
    const waits: number[] = [];
    await failThroughSchedule(
      '/retry/spelled-out',
      { choice: 'exponential', kwargs: { base: 3, factor: 2, limit: 100 } },
      5,
      (_n, wait) => waits.push(wait),
    );
    assert.deepEqual(waits, [6, 18, 54, 100]);
  });

  test('random waits a whole number of seconds within its bounds', async () => {
    const waits: number[] = [];
    await failThroughSchedule(
      '/retry/random',
      { choice: 'random', kwargs: { min_value: 5, max_value: 9 } },
      5,
      (_n, wait) => {
        assert.ok(Number.isInteger(wait) && wait >= 5 && wait <= 9, `wait ${wait}`);
        waits.push(wait);
      },
    );
    assert.equal(waits.length, 4);
  });
});

test('max_retries 3 makes exactly three attempts, then the event is listed as undelivered', async () => {
  const path = '/retry/three';
  const { hookId, times } = await failThroughSchedule(
    path,
    { choice: 'fixed', kwargs: { seconds: 60 } },
    3,
    (_n, wait) => assert.equal(wait, 60),
  );
  const event = await eventOf(hookId);
  assert.equal(await queueOf(event.id), undefined, 'the queue row is gone');

  // however long we wait, no fourth attempt
  ctx.clock.advance(30 * 24 * 3600 * 1000);
  assert.equal(await ctx.worker.runOnce(), 0);
  assert.equal(requestsTo(path).length, 3);

  const listed = await undelivered(event.uuid);
  assert.ok(listed, 'listed as undelivered');
  assert.equal(listed.retry_count, 3);
  assert.equal(listed.delivered, false);
  assert.equal(listed.response_http_status, 500);
  assert.deepEqual(
    listed.request_datetimes,
    [...times].reverse().map((t) => isoMicro(t)),
    'three request times, newest first',
  );
});

test('success on the second attempt: delivered, retry_count 2, no queue row', async () => {
  const path = '/retry/second-time-lucky';
  ctx.receiver.respond((r) =>
    r.path === path && requestsTo(path).length === 1
      ? { status: 500, body: 'boom' }
      : { status: 200, body: 'fine now' },
  );
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 5 } },
  });
  assert.equal(await ctx.publish(hook.id as number), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  const first = await eventOf(hook.id as number);
  assert.equal(first.delivered, false);
  assert.ok(await queueOf(first.id));
  assert.equal(await undelivered(first.uuid).then((e) => e?.retry_count), 1);

  ctx.clock.advance(5_000);
  assert.equal(await ctx.worker.runOnce(), 1);
  const event = await eventOf(hook.id as number);
  assert.equal(event.delivered, true);
  assert.equal(event.retry_count, 2);
  assert.equal(event.response_http_status, 200);
  assert.equal(event.times.length, 2);
  assert.equal(await queueOf(event.id), undefined);
  assert.equal(await undelivered(event.uuid), undefined);

  ctx.clock.advance(3600_000);
  assert.equal(await ctx.worker.runOnce(), 0);
  assert.equal(requestsTo(path).length, 2);
});

test('without config.max_retries an event gets 18 attempts', async () => {
  assert.equal(ctx.config.defaultMaxRetries, 18);
  const path = '/retry/default';
  ctx.receiver.respond((r) => (r.path === path ? { status: 500 } : { status: 200 }));
  const hook = await ctx.createWebhook({
    target_url: ctx.receiver.url(path),
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 1 } },
  });
  assert.equal(await ctx.publish(hook.id as number), 202);
  let attempts = 0;
  for (let i = 0; i < 30; i++) {
    const n = await ctx.worker.runOnce();
    if (n === 0) break;
    attempts += n;
    ctx.clock.advance(1_000);
  }
  assert.equal(attempts, 18);
  assert.equal(requestsTo(path).length, 18);
  const event = await eventOf(hook.id as number);
  assert.equal(event.retry_count, 18);
  assert.equal(event.times.length, 18);
  assert.equal(await queueOf(event.id), undefined);
});

describe('events survive a restart', () => {
  const freshWorker = (workerId: string) => {
    const sender = new Sender({
      responseCapBytes: ctx.config.responseCapBytes,
      allowPrivateTargets: true,
    });
    const worker = new Worker({
      db: ctx.db,
      clock: ctx.clock,
      sender,
      logger: pino({ level: 'silent' }),
      batchSize: 10,
      concurrency: 2,
      leaseMs: ctx.config.leaseMs,
      pollIntervalMs: 1_000,
      requestTimeoutMs: ctx.config.requestTimeoutMs,
      workerId,
    });
    return { worker, sender };
  };

  test('an event published before the restart is delivered by a new worker', async () => {
    const path = '/restart/new';
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url(path) });
    assert.equal(await ctx.publish(hook.id as number, { number: 'R1' }), 202);
    const { worker, sender } = freshWorker('after-restart');
    try {
      assert.equal(await worker.runOnce(), 1);
    } finally {
      await sender.close();
    }
    assert.equal(requestsTo(path).length, 1);
    assert.deepEqual(JSON.parse(requestsTo(path)[0]!.body).payload, { number: 'R1' });
    const event = await eventOf(hook.id as number);
    assert.equal(event.delivered, true);
    assert.equal(event.retry_count, 1);
  });

  test('a scheduled retry is made by a new worker when it is due', async () => {
    const path = '/restart/retry';
    ctx.receiver.respond((r) =>
      r.path === path && requestsTo(path).length === 1 ? { status: 500 } : { status: 200 },
    );
    const hook = await ctx.createWebhook({
      target_url: ctx.receiver.url(path),
      retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 20 } },
    });
    assert.equal(await ctx.publish(hook.id as number), 202);
    assert.equal(await ctx.worker.runOnce(), 1);
    const { worker, sender } = freshWorker('after-restart-2');
    try {
      assert.equal(await worker.runOnce(), 0);
      ctx.clock.advance(20_000);
      assert.equal(await worker.runOnce(), 1);
    } finally {
      await sender.close();
    }
    const event = await eventOf(hook.id as number);
    assert.equal(event.delivered, true);
    assert.equal(event.retry_count, 2);
  });

  test('an event claimed by a worker that died is delivered once its lease expires', async () => {
    const path = '/restart/lease';
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url(path) });
    assert.equal(await ctx.publish(hook.id as number), 202);
    const claimed = await claimDue(ctx.db, {
      workerId: 'dead-worker',
      now: isoMicro(ctx.clock.now()),
      leaseMs: ctx.config.leaseMs,
      limit: 10,
    });
    assert.equal(claimed.length, 1);
    const { worker, sender } = freshWorker('survivor');
    try {
      assert.equal(await worker.runOnce(), 0, 'still leased');
      ctx.clock.advance(ctx.config.leaseMs);
      assert.equal(await worker.runOnce(), 1);
    } finally {
      await sender.close();
    }
    assert.equal(requestsTo(path).length, 1);
    const event = await eventOf(hook.id as number);
    assert.equal(event.delivered, true);
    assert.equal(event.retry_count, 1);
    assert.equal(await queueOf(event.id), undefined);
  });
});
