import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import {
  GROUP_COMMIT_DEFAULTS,
  GroupCommit,
  PublishBufferFull,
  type GroupCommitOptions,
} from '../../src/queue/group-commit.js';
import { HandoffCredit, type HandoffReport } from '../../src/queue/handoff.js';
import type { Db } from '../../src/store/db.js';
import { createContext, type Context } from '../helpers/context.js';
import { newHookEvent } from '../helpers/rows.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const event = (webhookId: number, n: number) => newHookEvent(webhookId, n);

test('concurrent publishes through the API share transactions, and every one is stored and queued', async () => {
  const hook = await ctx.createWebhook();
  const statuses = await Promise.all(
    Array.from({ length: 60 }, (_, i) => ctx.publish(hook.id as number, { n: i })),
  );
  assert.deepEqual(new Set(statuses), new Set([202]));
  // xmin is the id of the transaction that wrote a row: fewer transactions than events.
  const { rows } = await ctx.db.query<{ events: number; queued: number; transactions: number }>(
    `select count(*)::int as events,
            (select count(*)::int from hook_event_queue) as queued,
            count(distinct xmin::text)::int as transactions
     from hook_events where webhook_id = $1`,
    [hook.id],
  );
  assert.equal(rows[0]!.events, 60);
  assert.equal(rows[0]!.queued, 60);
  assert.ok(rows[0]!.transactions < 60, `${rows[0]!.transactions} transactions for 60 events`);
});

test('one bad event gathered with good ones fails alone', async () => {
  const hook = await ctx.createWebhook();
  const commits = new GroupCommit(ctx.db, new ManualClock());
  const good = Array.from({ length: 5 }, (_, i) => event(hook.id as number, i));
  const bad = event(987_654, 99); // no such webhook: a foreign-key violation
  const results = await Promise.allSettled([
    ...good.map((e) => commits.enqueue([e])),
    commits.enqueue([bad]),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'rejected'],
  );
  const { rows } = await ctx.db.query<{ uuid: string }>(
    'select uuid::text as uuid from hook_events where webhook_id = $1',
    [hook.id],
  );
  assert.deepEqual(new Set(rows.map((r) => r.uuid)), new Set(good.map((e) => e.uuid)));
});

test('two writes in flight both hand their events to the worker beside them, within its room', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const report: HandoffReport = { workerId: 'worker-beside', room: 10, full: [], accepted: 0 };
  const sent: number[] = [];
  const credit = new HandoffCredit(
    () => report,
    (events) => sent.push(events.length),
  );
  // the first write is held in the database until the second one has been sent
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let writes = 0;
  const db: Db = {
    ...ctx.db,
    query: async (sql, params, name) => {
      if (name === 'oms_enqueue' && ++writes === 1) await held;
      else if (name === 'oms_enqueue') release();
      return ctx.db.query(sql, params, name);
    },
  };
  const twoInFlight = { ...GROUP_COMMIT_DEFAULTS, maxFlushes: 2 };
  const commits = new GroupCommit(db, new ManualClock(), twoInFlight, {
    to: credit,
    leaseMs: 60_000,
  });
  const first = commits.enqueue([event(hook, 1), event(hook, 2), event(hook, 3)]);
  await new Promise((resolve) => setImmediate(resolve)); // the first write is on its way
  const second = commits.enqueue([event(hook, 4), event(hook, 5)]);
  await Promise.all([first, second]);
  assert.equal(writes, 2);
  // the first took room for its three, not all ten; the second found room for its two.
  // On PostgreSQL the two writes run on two connections and either may commit first.
  assert.deepEqual(
    [...sent].sort((a, b) => a - b),
    [2, 3],
  );
  const { rows } = await ctx.db.query<{ leased: number }>(
    `select count(*)::int as leased from hook_event_queue
     where webhook_id = $1 and locked_by = 'worker-beside'`,
    [hook],
  );
  assert.equal(rows[0]!.leased, 5);
});

/**
 * A GroupCommit (PostgreSQL's options unless `options` says otherwise) whose first write
 * is held in the database until `release`, with the writes counted as they start.
 */
function heldFirstWrite(options: Partial<GroupCommitOptions> = {}) {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const state = { writes: 0, release: () => release() };
  const db: Db = {
    ...ctx.db,
    query: async (sql, params, name) => {
      if (name === 'oms_enqueue' && ++state.writes === 1) await held;
      return ctx.db.query(sql, params, name);
    },
  };
  const commits = new GroupCommit(db, new ManualClock(), {
    ...GROUP_COMMIT_DEFAULTS,
    ...options,
  });
  return { commits, state };
}

/** A few turns of the event loop: time enough for a write that was scheduled to start. */
async function turns(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** How many of a webhook's events each transaction wrote, fewest first. */
async function eventsPerTransaction(webhookId: number): Promise<number[]> {
  const { rows } = await ctx.db.query<{ n: number }>(
    `select count(*)::int as n from hook_events where webhook_id = $1
     group by xmin::text order by n`,
    [webhookId],
  );
  return rows.map((r) => r.n);
}

const events = (webhookId: number, from: number, n: number) =>
  Array.from({ length: n }, (_, i) => event(webhookId, from + i));

test('by default one write at a time: what arrives meanwhile waits, then goes in one statement', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const { commits, state } = heldFirstWrite();
  const first = commits.enqueue([event(hook, 0)]);
  await turns();
  assert.equal(state.writes, 1);
  const later = [1, 2, 3].map((i) => commits.enqueue([event(hook, i)]));
  await turns();
  assert.equal(state.writes, 1, 'a second write started beside the first');
  state.release();
  await Promise.all([first, ...later]);
  assert.equal(state.writes, 2);
  assert.deepEqual(await eventsPerTransaction(hook), [1, 3]);
});

test('beside a large write in flight, a second one starts only with as many events', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const { commits, state } = heldFirstWrite({ maxFlushes: 2, minBeside: 4 });
  const first = commits.enqueue(events(hook, 0, 4));
  await turns();
  assert.equal(state.writes, 1);
  const small = [10, 11, 12].map((i) => commits.enqueue([event(hook, i)]));
  await turns();
  assert.equal(state.writes, 1, 'three events waiting started a second write');
  const fourth = commits.enqueue([event(hook, 13)]);
  await turns();
  assert.equal(state.writes, 2, 'four events waiting did not start a second write');
  state.release();
  await Promise.all([first, ...small, fourth]);
  assert.equal(state.writes, 2);
  assert.deepEqual(await eventsPerTransaction(hook), [4, 4]);
});

test('events too few to start beside a large write are written as soon as it ends', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const { commits, state } = heldFirstWrite({ maxFlushes: 2, minBeside: 4 });
  const first = commits.enqueue(events(hook, 0, 4));
  await turns();
  const small = [10, 11].map((i) => commits.enqueue([event(hook, i)]));
  await turns();
  assert.equal(state.writes, 1);
  state.release();
  await Promise.all([first, ...small]);
  assert.equal(state.writes, 2);
  assert.deepEqual(await eventsPerTransaction(hook), [2, 4]);
});

test('beside a small write in flight, the next one starts at once', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const { commits, state } = heldFirstWrite({ maxFlushes: 2, minBeside: 4 });
  const first = commits.enqueue([event(hook, 0)]);
  await turns();
  const second = commits.enqueue([event(hook, 1)]);
  await turns();
  assert.equal(state.writes, 2, 'the second write waited for the first');
  state.release();
  await Promise.all([first, second]);
  assert.deepEqual(await eventsPerTransaction(hook), [1, 1]);
});

/** The uuids of a webhook's stored events. */
async function storedUuids(webhookId: number): Promise<Set<string>> {
  const { rows } = await ctx.db.query<{ uuid: string }>(
    'select uuid::text as uuid from hook_events where webhook_id = $1',
    [webhookId],
  );
  return new Set(rows.map((r) => r.uuid));
}

test('past the byte limit a request is refused at once; one alone is taken whatever its size', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const [e1, e2, e3] = events(hook, 0, 3);
  // a limit below one event's payload: only an empty buffer takes anything
  const { commits, state } = heldFirstWrite({ heldBytesLimit: 10 });
  const first = commits.enqueue([e1!]);
  await turns();
  assert.equal(state.writes, 1);
  await assert.rejects(commits.enqueue([e2!]), (error: unknown) => {
    assert.ok(error instanceof PublishBufferFull);
    assert.equal(error.heldBytes, e1!.requestPayload.length);
    assert.equal(error.limit, 10);
    return true;
  });
  assert.equal(state.writes, 1, 'the refused request started a write');
  state.release();
  await first;
  await commits.enqueue([e3!]);
  assert.deepEqual(await storedUuids(hook), new Set([e1!.uuid, e3!.uuid]));
});

test('a request that fails lets go of its bytes too', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const commits = new GroupCommit(ctx.db, new ManualClock(), {
    ...GROUP_COMMIT_DEFAULTS,
    heldBytesLimit: 10,
  });
  // no such webhook: a foreign-key violation, not a refusal
  await assert.rejects(commits.enqueue([event(987_654, 1)]), { code: '23503' });
  const good = event(hook, 2);
  await commits.enqueue([good]);
  assert.deepEqual(await storedUuids(hook), new Set([good.uuid]));
});
