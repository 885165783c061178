import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { claimBatch, type ClaimedEvent, type QueuePosition } from '../../src/queue/claim.js';
import { ClaimCursors } from '../../src/queue/cursors.js';
import { createContext, type Context } from '../helpers/context.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const T0 = Date.parse('2026-01-15T10:00:00.000Z');

/** An event as a claim returns it, for the cursor: only id, runAt and webhook matter. */
const claimed = (id: number, webhookId: number, runAt: string) =>
  ({ id, runAt, webhook: { id: webhookId } }) as ClaimedEvent;

test('a cursor moves to the last event claimed of each webhook, in (run_at, id) order', () => {
  const cursors = new ClaimCursors({ resetMs: 2_000, marginMs: 1_000 });
  assert.equal(cursors.positions(T0).size, 0, 'the first claim reads from the head');
  const old = isoMicro(T0 - 60_000);
  const older = isoMicro(T0 - 61_000);
  cursors.advance([
    claimed(7, 1, old),
    claimed(5, 1, old),
    claimed(9, 1, older),
    claimed(3, 2, old),
  ]);
  // handed-over events carry no run_at and move nothing
  cursors.advance([{ id: 99, webhook: { id: 1 } } as ClaimedEvent]);
  assert.deepEqual(
    cursors.positions(T0 + 10),
    new Map([
      [1, { runAt: old, id: 7 }],
      [2, { runAt: old, id: 3 }],
    ]),
  );
});

test('a cursor never passes over what fell due within the margin, nor holds longer than resetMs', () => {
  const cursors = new ClaimCursors({ resetMs: 2_000, marginMs: 1_000 });
  cursors.positions(T0);
  cursors.advance([claimed(40, 1, isoMicro(T0 - 200))]);
  // a publish that chose its run_at before this event's may commit after it: the claim
  // starts a margin before its own time instead
  assert.deepEqual(cursors.positions(T0 + 100).get(1), { runAt: isoMicro(T0 - 900), id: 0 });
  // an old one is kept exactly
  cursors.advance([claimed(41, 1, isoMicro(T0 + 100))]);
  assert.deepEqual(cursors.positions(T0 + 1_500).get(1), { runAt: isoMicro(T0 + 100), id: 41 });
  // every resetMs a claim reads every queue from its head (expired and released leases)
  assert.equal(cursors.positions(T0 + 2_000).size, 0);
  cursors.advance([claimed(50, 1, isoMicro(T0 - 60_000))]);
  assert.equal(cursors.positions(T0 + 2_001).size, 1);
  cursors.reset();
  assert.equal(cursors.positions(T0 + 2_002).size, 0, 'after a reset, from the head again');
});

const claim = (after: ReadonlyMap<number, QueuePosition>, gate: boolean, limit = 3) =>
  claimBatch(ctx.db, {
    workerId: 'w-cursor',
    now: isoMicro(ctx.clock.now()),
    leaseMs: 30_000,
    limit,
    after,
    gate,
  });

test('a claim reads each webhook queue after its position, through the gate or not', async () => {
  const hook = (await ctx.createWebhook()).id as number;
  const other = (await ctx.createWebhook()).id as number;
  // the clock stands still: every event is due at the same run_at, ordered by id alone
  for (let i = 0; i < 8; i++) assert.equal(await ctx.publish(hook), 202);
  assert.equal(await ctx.publish(other), 202);
  const { rows } = await ctx.db.query<{ id: number }>(
    'select hook_event_id as id from hook_event_queue where webhook_id = $1 order by hook_event_id',
    [hook],
  );
  const ids = rows.map((r) => Number(r.id));

  const first = await claim(new Map(), false);
  const runAt = first.events[0]!.runAt!;
  assert.equal(runAt, isoMicro(ctx.clock.now()), 'the run_at as the claim read it, to the µs');
  const cursors = new ClaimCursors();
  cursors.positions(ctx.clock.now() + 60_000);
  cursors.advance(first.events);
  const at = cursors.positions(ctx.clock.now() + 60_001);
  assert.deepEqual(at.get(hook), { runAt, id: ids[2] });
  assert.equal(at.has(other), false, 'the claim took the three oldest events, all of one webhook');

  // the events before the position are handed back, due again: the next claims pass them over
  await ctx.db.query(
    'update hook_event_queue set locked_by = null, locked_until = null where hook_event_id = any($1)',
    [ids.slice(0, 3)],
  );
  const open = await claim(at, false, 4);
  assert.deepEqual(
    open.events.map((e) => e.id),
    ids.slice(3, 7),
  );
  cursors.advance(open.events);
  const gated = await claim(cursors.positions(ctx.clock.now() + 60_002), true, 10);
  const { rows: others } = await ctx.db.query<{ id: number }>(
    'select hook_event_id as id from hook_event_queue where webhook_id = $1',
    [other],
  );
  assert.deepEqual(
    gated.events.map((e) => e.id),
    [ids[7], Number(others[0]!.id)],
    'after its position only, and the webhook without one from its head',
  );
  // from the head, what was passed over is claimed
  const again = await claim(new Map(), false, 10);
  assert.deepEqual(
    again.events.map((e) => e.id),
    ids.slice(0, 3),
  );
});
