import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { Worker, type WorkerOptions } from '../../src/delivery/worker.js';
import type { Db, Queryable } from '../../src/store/db.js';
import { createContext, type Context } from '../helpers/context.js';
import { count, until } from './support.js';

// The worker claims ahead of its slots and keeps what it claimed in memory. These tests
// pin down what that must never cost: a request going out on a lease that could run out
// before it ends, or a lease left behind by a shutdown.

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const delivered = (hook: number) =>
  count(ctx.db, 'select count(*) from hook_events where webhook_id = $1 and delivered', [hook]);

/** A target that holds every request until the test lets it go, noting each arrival. */
async function holdingTarget(onArrival: (eventId: string) => Promise<void> | void) {
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      void Promise.resolve(onArrival(String(req.headers['webhook-id']))).then(() => held.push(res));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/held`,
    held,
    releaseAll() {
      for (const res of held.splice(0)) res.end('ok');
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A holding target that notes, as each request arrives, how much of its event's lease
 * the database still holds by the worker's clock.
 */
async function leaseNotingTarget() {
  const leaseLeftAtArrival: number[] = [];
  const target = await holdingTarget(async (uuid) => {
    const { rows } = await ctx.db.query<{ left_ms: number }>(
      `select (extract(epoch from q.locked_until) * 1000 - $2::float8)::float8 as left_ms
       from hook_event_queue q join hook_events e on e.id = q.hook_event_id
       where e.uuid = $1`,
      [uuid, ctx.clock.now()],
    );
    leaseLeftAtArrival.push(rows[0]!.left_ms);
  });
  return { ...target, leaseLeftAtArrival };
}

/**
 * Each of `events` requests arrived once, with its lease outlasting the request: else a
 * second worker could take the event over while the first is still sending it.
 */
function assertSentOnceOnLease(leaseLeft: number[], events: number, requestTimeoutMs: number) {
  assert.equal(leaseLeft.length, events, 'each event was sent once');
  for (const left of leaseLeft) {
    assert.ok(left >= requestTimeoutMs, `a request arrived with ${left} ms of lease left`);
  }
}

/**
 * Lets `events` requests through `target` one at a time, each once it is held there (the
 * worker has one slot), then waits until all of `hook`'s events are recorded delivered.
 */
async function deliverInTurn(
  target: { held: unknown[]; releaseAll(): void },
  hook: number,
  events: number,
) {
  for (let i = 1; i <= events; i++) {
    await until(`request ${i} of ${events} is held`, () => target.held.length === 1);
    target.releaseAll();
  }
  await until(`all ${events} are delivered`, async () => (await delivered(hook)) === events);
}

const worker = (options: Partial<WorkerOptions> & { leaseMs: number; requestTimeoutMs: number }) =>
  new Worker({
    db: ctx.db,
    clock: ctx.clock,
    sender: ctx.sender,
    logger: pino({ level: 'silent' }),
    batchSize: 10,
    concurrency: 1,
    prefetch: 10,
    pollIntervalMs: 50,
    ...options,
  });

test('a buffered event whose lease ran short is claimed again before it is sent', async () => {
  // Every request must arrive while its event's lease still outlasts the request: else a
  // second worker could take the event over while the first is still sending it.
  const leaseMs = 10_000;
  const requestTimeoutMs = 2_000;
  const target = await leaseNotingTarget();
  const hook = (await ctx.createWebhook({ target_url: target.url })).id as number;
  for (let i = 0; i < 3; i++) assert.equal(await ctx.publish(hook, { n: i }), 202);
  const w = worker({ leaseMs, requestTimeoutMs });
  await w.start();
  try {
    // one slot: the first event is sent, the other two wait in the buffer under the
    // same lease
    await until('the first request is held', () => target.held.length === 1);
    assert.equal(
      await count(ctx.db, 'select count(*) from hook_event_queue where locked_by = $1', [w.id]),
      3,
      'all three were claimed at once',
    );
    // time passes on the worker's clock until the buffered leases could not cover a request
    ctx.clock.advance(leaseMs - requestTimeoutMs + 500);
    await deliverInTurn(target, hook, 3);
  } finally {
    await w.stop({ graceMs: 0 });
    await target.close();
  }
  assertSentOnceOnLease(target.leaseLeftAtArrival, 3, requestTimeoutMs);
});

test('a claim that runs long does not make its leases look longer than they are', async () => {
  // The lease a claim writes starts at the time the claim was made, not at the time its
  // answer came back: here the worker's clock moves on while the claim runs, so the
  // events come back with less lease left than a request needs. None may go out on it.
  const leaseMs = 10_000;
  const requestTimeoutMs = 2_000;
  const target = await leaseNotingTarget();
  const hook = (await ctx.createWebhook({ target_url: target.url })).id as number;
  for (let i = 0; i < 2; i++) assert.equal(await ctx.publish(hook, { n: i }), 202);
  // the first claim that takes events answers as the clock has moved on past most of
  // the lease it wrote
  let slowClaims = 1;
  const slow = (q: Queryable): Queryable => ({
    async query<R>(sql: string, params?: readonly unknown[], name?: string) {
      const result = await q.query<R>(sql, params, name);
      if (name?.startsWith('oms_claim') && result.rows.length > 0 && slowClaims-- > 0)
        ctx.clock.advance(leaseMs - requestTimeoutMs + 500);
      return result;
    },
  });
  const db: Db = {
    ...ctx.db,
    query: slow(ctx.db).query,
    transaction: (fn) => ctx.db.transaction((tx) => fn(slow(tx))),
  };
  const w = worker({ leaseMs, requestTimeoutMs, db });
  await w.start();
  try {
    await deliverInTurn(target, hook, 2);
  } finally {
    await w.stop({ graceMs: 0 });
    await target.close();
  }
  assertSentOnceOnLease(target.leaseLeftAtArrival, 2, requestTimeoutMs);
});

test('a webhook whose own timeout is as long as the lease still has its events sent', async () => {
  // config.timeout may exceed LEASE_MS (only REQUEST_TIMEOUT_MS is checked against it):
  // the short-lease check must not give such an event back forever.
  const target = await holdingTarget(() => {});
  const hook = (await ctx.createWebhook({ target_url: target.url, config: { timeout: 5 } }))
    .id as number;
  assert.equal(await ctx.publish(hook, { n: 1 }), 202);
  const w = worker({ leaseMs: 3_000, requestTimeoutMs: 1_000 });
  await w.start();
  try {
    await deliverInTurn(target, hook, 1);
  } finally {
    await w.stop({ graceMs: 0 });
    await target.close();
  }
});

test('stop gives back the leases of buffered events as well as in-flight ones', async () => {
  const target = await holdingTarget(() => {});
  const hook = (await ctx.createWebhook({ target_url: target.url })).id as number;
  for (let i = 0; i < 4; i++) assert.equal(await ctx.publish(hook, { n: i }), 202);
  const w = worker({ leaseMs: 60_000, requestTimeoutMs: 2_000 });
  await w.start();
  try {
    await until('the first request is held', () => target.held.length === 1);
    assert.equal(
      await count(ctx.db, 'select count(*) from hook_event_queue where locked_by = $1', [w.id]),
      4,
    );
  } finally {
    await w.stop({ graceMs: 0 });
    await target.close();
  }
  assert.equal(
    await count(ctx.db, 'select count(*) from hook_event_queue where locked_by is not null'),
    0,
    'nothing stays leased to a stopped worker',
  );
  assert.equal(
    await count(ctx.db, 'select count(*) from hook_event_queue where webhook_id = $1', [hook]),
    4,
    'and all four are still queued',
  );
});

test('events waiting in the buffer of a webhook that changes go out with its new target', async () => {
  // The buffer holds claimed events with the settings their webhook had at the claim: a
  // new target, secret or pause must reach them too, not only events claimed later.
  const first = await holdingTarget(() => {});
  const hook = (await ctx.createWebhook({ target_url: first.url })).id as number;
  for (let i = 0; i < 3; i++) assert.equal(await ctx.publish(hook, { n: i }), 202);
  // its claims start where they got to and stay there for the whole test: the events it
  // gives back must still be claimed again at once, though they stand before that place
  const w = worker({
    leaseMs: 60_000,
    requestTimeoutMs: 2_000,
    claimCursors: { resetMs: 3_600_000, marginMs: 1_000 },
  });
  await w.start();
  const path = '/moved';
  const before = ctx.receiver.requests.filter((r) => r.path === path).length;
  try {
    // one slot: the first event is on the wire, two wait in the buffer
    await until('the first request is held', () => first.held.length === 1);
    const { rows } = await ctx.db.query<{ until: string }>(
      'select max(locked_until)::text as until from hook_event_queue where webhook_id = $1',
      [hook],
    );
    // so that a fresh claim's lease ends later than the first, and these events are due
    // longer ago than a claim's margin (ClaimCursors)
    ctx.clock.advance(5_000);
    const moved = await ctx.api({
      method: 'PATCH',
      url: `/api/v1/oms/webhooks/${hook}/`,
      payload: { target_url: ctx.receiver.url(path) },
    });
    assert.equal(moved.statusCode, 200);
    await until('the two buffered events were given back and claimed afresh', async () => {
      const fresh = await count(
        ctx.db,
        `select count(*) from hook_event_queue
         where webhook_id = $1 and (locked_until is null or locked_until > $2::timestamptz)`,
        [hook, rows[0]!.until],
      );
      return fresh === 2;
    });
    first.releaseAll();
    await until('all three are delivered', async () => (await delivered(hook)) === 3);
  } finally {
    await w.stop({ graceMs: 0 });
    await first.close();
  }
  assert.equal(first.held.length, 0, 'the old target got only the request already on the wire');
  assert.equal(ctx.receiver.requests.filter((r) => r.path === path).length - before, 2);
});
