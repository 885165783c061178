import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildApp } from '../../src/api/app.js';
import { isoMicro, systemClock } from '../../src/core/clock.js';
import type { ClaimedEvent } from '../../src/queue/claim.js';
import { enqueueCommitted, type NewHookEvent } from '../../src/queue/enqueue.js';
import { HandoffCredit, type HandoffReport } from '../../src/queue/handoff.js';
import { dueChannel, MAX_NOTIFIED_WEBHOOKS, webhookChangedChannel } from '../../src/queue/wake.js';
import { count, realWorker, until } from '../engine/support.js';
import { createContext, type Context } from '../helpers/context.js';
import { insertOtherWebhooks, newHookEvent, storedBodies } from '../helpers/rows.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

// keys out of jsonb's order and no spaces: the stored text differs from JSON.stringify
const event = (webhookId: number, n: number) =>
  newHookEvent(webhookId, n, { number: n, a: [1, 2] });

/** Leases held in the queue for the given events, by worker ('' when none). */
async function leases(ids: number[]): Promise<Map<number, { by: string; until: string | null }>> {
  const { rows } = await ctx.db.query<{ id: number; by: string | null; until: string | null }>(
    `select hook_event_id as id, locked_by as by, oms_ts(locked_until) as until
     from hook_event_queue where hook_event_id = any($1::bigint[])`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, { by: r.by ?? '', until: r.until }]));
}

const idsOf = async (events: NewHookEvent[]) =>
  (
    await ctx.db.query<{ id: number }>(
      'select id from hook_events where uuid = any($1::uuid[]) order by id',
      [events.map((e) => e.uuid)],
    )
  ).rows.map((r) => r.id);

test('a publish leases up to the offered room to the worker and returns the events as a claim would', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const events = [event(hook, 1), event(hook, 2), event(hook, 3)];
  const runAt = Date.parse('2026-01-15T10:00:00.000Z');
  const offer = { workerId: 'w-handoff', room: 2, full: [] };
  const handed = await enqueueCommitted(ctx.db, events, isoMicro(runAt), {
    offer,
    leaseMs: 30_000,
  });

  const ids = await idsOf(events);
  assert.deepEqual(
    handed.map((e) => e.id),
    ids.slice(0, 2),
    'the first two by id',
  );
  const held = await leases(ids);
  assert.deepEqual(
    ids.map((id) => held.get(id)),
    [
      { by: 'w-handoff', until: '2026-01-15T10:00:30.000000Z' },
      { by: 'w-handoff', until: '2026-01-15T10:00:30.000000Z' },
      { by: '', until: null },
    ],
  );
  const bodyOf = await storedBodies(ctx.db, ids);
  for (const [i, e] of handed.entries()) {
    assert.equal(e.body, bodyOf.get(e.id), 'the body is the stored text, byte for byte');
    // as published: "number" before "a", where jsonb would have put the shorter key first
    assert.equal(e.body, events[i]!.requestPayload);
    assert.match(e.body, /^\{"event":\{"type":"package\.created"\},"payload":\{"number":/);
    assert.equal(e.retryCount, 0);
    assert.equal(e.maxAttempts, 3);
    assert.equal(e.webhook.id, hook);
    assert.equal(e.webhook.targetUrl, ctx.receiver.url());
    assert.match(e.webhook.secretKey, /^whsec_/);
  }
});

test('events of several webhooks handed at once each carry their own webhook, one object per webhook', async () => {
  const first = (await ctx.createWebhook({ target_url: ctx.receiver.url('/first') })).id as number;
  const second = (
    await ctx.createWebhook({
      target_url: ctx.receiver.url('/second'),
      additional_headers: { 'X-Which': 'second' },
    })
  ).id as number;
  const events = [event(first, 1), event(second, 2), event(first, 3), event(second, 4)];
  const handed = await enqueueCommitted(ctx.db, events, isoMicro(Date.now()), {
    offer: { workerId: 'w-two', room: 10, full: [] },
    leaseMs: 30_000,
  });
  assert.deepEqual(
    handed.map((e) => [e.webhook.id, e.webhook.targetUrl, e.body]),
    events.map((e) => [
      e.webhookId,
      ctx.receiver.url(e.webhookId === first ? '/first' : '/second'),
      e.requestPayload,
    ]),
  );
  const { rows } = await ctx.db.query<{ id: number; headers: Record<string, string> }>(
    'select id, additional_headers as headers from webhooks where id = any($1::int[])',
    [[first, second]],
  );
  assert.deepEqual(rows.find((r) => r.id === second)!.headers, { 'X-Which': 'second' });
  for (const e of handed) {
    assert.deepEqual(e.webhook.additionalHeaders, rows.find((r) => r.id === e.webhook.id)!.headers);
    assert.equal(e.webhook.isActive, true);
    assert.match(e.webhook.secretKey, /^whsec_/);
  }
  assert.equal(handed[0]!.webhook, handed[2]!.webhook, 'the first webhook, shared');
  assert.equal(handed[1]!.webhook, handed[3]!.webhook, 'the second webhook, shared');
});

test('events of a limited, paused or full webhook are never handed; they wait for a claim', async () => {
  const limited = (await ctx.createWebhook({ config: { max_concurrency: 5 } })).id as number;
  const ordered = (await ctx.createWebhook({ config: { ordered: true } })).id as number;
  const paused = (await ctx.createWebhook({ is_active: false })).id as number;
  const full = (await ctx.createWebhook()).id as number;
  const events = [event(limited, 1), event(ordered, 2), event(paused, 3), event(full, 4)];
  const handed = await enqueueCommitted(ctx.db, events, isoMicro(Date.now()), {
    offer: { workerId: 'w-handoff', room: 100, full: [full] },
    leaseMs: 30_000,
  });
  assert.deepEqual(handed, []);
  const held = await leases(await idsOf(events));
  assert.equal(held.size, 4, 'all four are queued');
  assert.deepEqual(
    [...held.values()].map((l) => l.by),
    ['', '', '', ''],
  );
});

test('the NOTIFY names the webhooks of the events left, up to a limit, then none', async () => {
  const { rows: users } = await ctx.db.query<{ id: number }>('select id from users limit 1');
  await insertOtherWebhooks(ctx.db, users[0]!.id, { count: MAX_NOTIFIED_WEBHOOKS + 1 });
  const { rows } = await ctx.db.query<{ id: number }>(
    'select id from webhooks order by id desc limit $1',
    [MAX_NOTIFIED_WEBHOOKS + 1],
  );
  const hooks = rows.map((r) => r.id).reverse();
  const heard: string[] = [];
  const due = await dueChannel(ctx.db);
  const unlisten = await ctx.db.listen(due, (payload) => heard.push(payload));
  try {
    const now = isoMicro(Date.now());
    const some = hooks.slice(0, MAX_NOTIFIED_WEBHOOKS);
    // two events of each webhook: each named once
    await enqueueCommitted(
      ctx.db,
      [...some, ...some].map((h, n) => event(h, n)),
      now,
    );
    await enqueueCommitted(
      ctx.db,
      hooks.map((h, n) => event(h, n)),
      now,
    );
    await until('both NOTIFYs arrive', () => heard.length === 2);
    assert.deepEqual(
      heard[0]!
        .split(',')
        .map(Number)
        .sort((a, b) => a - b),
      some,
    );
    assert.equal(heard[1], '');
  } finally {
    await unlisten();
    // their events, queued for a port where nobody listens, go with them
    await ctx.db.query('delete from webhooks where id = any($1::int[])', [hooks]);
  }
});

test('the NOTIFY that wakes workers goes out only when an event was left for them', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const heard: string[] = [];
  const due = await dueChannel(ctx.db);
  const unlisten = await ctx.db.listen(due, (payload) => heard.push(payload));
  try {
    const offer = (room: number) => ({
      offer: { workerId: 'w-n', room, full: [] },
      leaseMs: 30_000,
    });
    const now = isoMicro(Date.now());
    // all handed: nobody is woken; then a marker, delivered after anything sent before it
    assert.equal((await enqueueCommitted(ctx.db, [event(hook, 1)], now, offer(5))).length, 1);
    await ctx.db.query(`select pg_notify($1, 'marker-1')`, [due]);
    await until('the first marker arrives', () => heard.includes('marker-1'));
    assert.deepEqual(heard, ['marker-1']);
    // one of two handed: the other is left for a claim, so the workers are woken and
    // told whose it is
    assert.equal(
      (await enqueueCommitted(ctx.db, [event(hook, 2), event(hook, 3)], now, offer(1))).length,
      1,
    );
    await ctx.db.query(`select pg_notify($1, 'marker-2')`, [due]);
    await until('the second marker arrives', () => heard.includes('marker-2'));
    assert.deepEqual(heard, ['marker-1', String(hook), 'marker-2']);
  } finally {
    await unlisten();
  }
});

test('published events reach a worker beside the API without a claim, and arrive as stored', async () => {
  const hook = (await ctx.createWebhook({ target_url: ctx.receiver.url('/handed') })).id as number;
  const worker = realWorker(ctx);
  const handoff = new HandoffCredit(
    () => worker.handoffReport(),
    (events, leasedUntil) => worker.accept(events, leasedUntil),
  );
  const app = buildApp({ ...ctx, clock: systemClock, handoff });
  assert.equal(worker.handoffReport().room, 0, 'a worker takes nothing before it has claimed');
  await worker.start();
  try {
    await until('the worker has claimed everything due', () => worker.handoffReport().room > 0);
    const statuses = await Promise.all(
      Array.from({ length: 20 }, (_, n) =>
        app.inject({
          method: 'POST',
          url: '/api/v1/oms/oms_hook_events/publish-event/',
          headers: { authorization: `Token ${ctx.tokens.admin}` },
          payload: { hook, instance: { pk: n, model: 'package', data: { n, b: 'x' } } },
        }),
      ),
    );
    assert.deepEqual(new Set(statuses.map((s) => s.statusCode)), new Set([202]));
    await until(
      'all twenty are recorded as delivered',
      async () =>
        (await count(
          ctx.db,
          'select count(*) from hook_events where webhook_id = $1 and delivered',
          [hook],
        )) === 20,
    );
    assert.equal(worker.handoffReport().accepted, 20, 'every one was handed over');
    const arrived = ctx.receiver.requests.filter((r) => r.path === '/handed');
    assert.equal(arrived.length, 20);
    const { rows } = await ctx.db.query<{ uuid: string; body: string; worker: string }>(
      `select e.uuid::text as uuid, p.request_payload::text as body, a.worker
       from hook_events e join delivery_attempts a on a.hook_event_id = e.id
       join hook_event_payloads p on p.hook_event_id = e.id
       where e.webhook_id = $1`,
      [hook],
    );
    const stored = new Map(rows.map((r) => [r.uuid.replaceAll('-', ''), r]));
    for (const r of arrived) {
      const row = stored.get(String(r.headers['webhook-id']).replaceAll('-', ''));
      assert.ok(row, 'the delivery names a stored event');
      assert.equal(r.body, row.body);
      assert.equal(row.worker, worker.id);
    }
    assert.equal(
      await count(ctx.db, 'select count(*) from hook_event_queue where webhook_id = $1', [hook]),
      0,
    );
  } finally {
    await worker.stop({ graceMs: 1_000 });
    await app.close();
  }
});

test('a worker that has stopped gives handed events back at once', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const worker = realWorker(ctx);
  const events = [event(hook, 1)];
  const handed = await enqueueCommitted(ctx.db, events, isoMicro(Date.now()), {
    offer: { workerId: worker.id, room: 1, full: [] },
    leaseMs: 30_000,
  });
  const [id] = await idsOf(events);
  assert.equal((await leases([id!])).get(id!)?.by, worker.id);
  worker.accept(handed, { readAt: Date.now(), until: Date.now() + 30_000 });
  await until('its lease is given back', async () => (await leases([id!])).get(id!)?.by === '');
});

test('an event read before its webhook changed is not sent with the old settings', async () => {
  ctx.receiver.respond(() => ({ status: 200, body: 'ok' }));
  const hook = (await ctx.createWebhook({ target_url: ctx.receiver.url('/before') })).id as number;
  const worker = realWorker(ctx);
  await worker.start();
  try {
    await until('the worker has claimed everything due', () => worker.handoffReport().room > 0);
    const readAt = Date.now();
    const handed = await enqueueCommitted(ctx.db, [event(hook, 1)], isoMicro(readAt), {
      offer: { workerId: worker.id, room: 1, full: [] },
      leaseMs: 30_000,
    });
    assert.equal(handed[0]!.webhook.targetUrl, ctx.receiver.url('/before'));
    // the change commits, and its NOTIFY reaches the worker before the hand-off does.
    // On PostgreSQL the worker listens on a connection of its own, which can hear it
    // after the test's listener does: wait for the worker's own record of the change.
    const heard: string[] = [];
    const unlisten = await ctx.db.listen(await webhookChangedChannel(ctx.db), (id) =>
      heard.push(id),
    );
    await ctx.db.query('update webhooks set target_url = $1 where id = $2', [
      ctx.receiver.url('/after'),
      hook,
    ]);
    await until('the change is heard', () => heard.includes(String(hook)));
    await unlisten();
    const changes = (worker as unknown as { lastChange: Map<number, unknown> }).lastChange;
    await until('the worker has heard the change', () => changes.has(hook));
    worker.accept(handed, { readAt, until: readAt + 30_000 });
    await until(
      'the event is delivered',
      async () =>
        (await count(
          ctx.db,
          'select count(*) from hook_events where webhook_id = $1 and delivered',
          [hook],
        )) === 1,
    );
    assert.deepEqual(
      ctx.receiver.requests
        .filter((r) => ['/before', '/after'].includes(r.path))
        .map((r) => r.path),
      ['/after'],
      'claimed again, it went to the new target only',
    );
  } finally {
    await worker.stop({ graceMs: 1_000 });
  }
});

test('the publishing side never hands a worker more than the room it reported', () => {
  let report: HandoffReport | undefined;
  const sent: number[] = [];
  const credit = new HandoffCredit(
    () => report,
    (events) => sent.push(events.length),
  );
  const some = (n: number) => Array.from({ length: n }, () => ({}) as ClaimedEvent);
  assert.equal(credit.offer(50), undefined, 'nothing before a report');
  report = { workerId: 'w', room: 10, full: [7], accepted: 0 };
  const first = credit.offer(50);
  assert.deepEqual(first, { workerId: 'w', room: 10, full: [7] });
  assert.equal(credit.offer(50), undefined, 'an offer in flight holds the room it was given');
  credit.settle(first!, some(4), { readAt: 0, until: 0 });
  assert.deepEqual(sent, [4]);
  // the report has not counted those four yet
  assert.equal(credit.available(), 6);
  report = { workerId: 'w', room: 6, full: [], accepted: 4 };
  assert.equal(credit.available(), 6);
  const failed = credit.offer(50)!;
  credit.settle(failed, [], { readAt: 0, until: 0 });
  assert.deepEqual(sent, [4], 'a failed statement sends nothing');
  assert.equal(credit.available(), 6);
});

test('writes in flight side by side share the room: each is offered no more than it needs', () => {
  const report: HandoffReport = { workerId: 'w', room: 10, full: [], accepted: 0 };
  const credit = new HandoffCredit(
    () => report,
    () => {},
  );
  // a statement of 3 events takes room for 3, and leaves the rest to the next one, which
  // would otherwise find none and leave its events to a claim
  const first = credit.offer(3)!;
  assert.equal(first.room, 3);
  const second = credit.offer(50)!;
  assert.equal(second.room, 7);
  assert.equal(credit.offer(1), undefined);
  credit.settle(first, [], { readAt: 0, until: 0 });
  assert.equal(credit.offer(5)!.room, 3, 'what a settled offer did not use is room again');
});
